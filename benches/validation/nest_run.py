#!/usr/bin/env python3
"""Runs a Myelin scene in NEST 3.x, side by side with Myelin.

    myelin check SCENE.ron --json > scene.json
    python nest_run.py scene.json OUT_DIR [--threads 4] [--duration MS] [--seed S] [--hpc]

The scene's JSON (exactly what Myelin validated) is translated to PyNEST: populations
(iaf_psc_exp, iaf_psc_alpha, iaf_psc_delta), projections (every Myelin rule, with
autapses/multapses), weight/delay/initial-state distributions (NormalRedraw becomes
nest.math.redraw), poisson/dc/spike generators, spike recorders, learning rules and weight
recorders. The spikes are written to OUT_DIR/recordings.h5 in Myelin's layout, so
`myelin analyze OUT_DIR` treats both alike, and OUT_DIR/summary.json holds NEST's build and
simulation times (wall and CPU) and peak memory.

Plastic projections become NEST synapse models: stdp -> stdp_synapse, stdp_nn_symm ->
stdp_nn_symm_synapse, stdp_nn_pre_centered -> stdp_nn_pre_centered_synapse, stdp_nn_restr
-> stdp_nn_restr_synapse, stdp_pl -> stdp_pl_synapse_hom (with Wmax only when infinite);
tau_minus goes to the target population's neurons (as NEST has it). With --hpc the "_hpc"
variants are used (static_synapse_hpc, stdp_pl_synapse_hom_hpc: NEST's hpc_benchmark.py's
choice, same dynamics, smaller synapses). Weights(...) recorders write the weights at the
end of the run (one sample) to /weights/<label> in Myelin's layout; hpc_compare.py compares
such runs of both simulators.

Needs: pip install nest-simulator h5py (in a virtual environment outside the repository).
The full microcircuit needs 4 NEST threads (NEST caps connections per thread).
"""
import argparse
import json
import os
import resource
import sys
import time

import h5py
import nest
import numpy as np


def dist(d, what):
    """A Myelin distribution as a NEST parameter (or a number)."""
    (kind, v), = d.items() if isinstance(d, dict) else ((d, None),)
    if kind == "Constant":
        return float(v)
    if kind == "Uniform":
        return nest.random.uniform(min=v["low"], max=v["high"])
    if kind == "Normal":
        return nest.random.normal(mean=v["mean"], std=v["std"])
    if kind == "NormalRedraw":
        lo = -np.inf if v.get("min") is None else v["min"]
        hi = np.inf if v.get("max") is None else v["max"]
        return nest.math.redraw(nest.random.normal(mean=v["mean"], std=v["std"]), min=lo, max=hi)
    raise SystemExit(f"unsupported distribution for {what}: {d}")


RULES = {
    "all_to_all": lambda p: {"rule": "all_to_all"},
    "one_to_one": lambda p: {"rule": "one_to_one"},
    "pairwise_bernoulli": lambda p: {"rule": "pairwise_bernoulli", "p": p["p"]},
    "fixed_indegree": lambda p: {"rule": "fixed_indegree", "indegree": int(p["indegree"])},
    "fixed_outdegree": lambda p: {"rule": "fixed_outdegree", "outdegree": int(p["outdegree"])},
    "fixed_total_number": lambda p: {"rule": "fixed_total_number", "N": int(p["N"])},
}


RULES_PLASTIC = {
    "stdp": ("stdp_synapse", False),
    "stdp_nn_symm": ("stdp_nn_symm_synapse", False),
    "stdp_nn_pre_centered": ("stdp_nn_pre_centered_synapse", False),
    "stdp_nn_restr": ("stdp_nn_restr_synapse", False),
    "stdp_pl": ("stdp_pl_synapse_hom", True),
}
DEFAULT_TAU_MINUS = 20.0


TAU_MINUS = {}  # target population -> tau_minus set on its neurons


def plastic_model(pl, target_name, target, hpc, k):
    """A NEST synapse model for a Myelin plasticity spec (a copy with the rule's parameters);
    sets tau_minus on the target neurons."""
    model, hom = RULES_PLASTIC[pl["model"]]
    params = dict(pl.get("params", {}))
    tau_minus = params.pop("tau_minus", DEFAULT_TAU_MINUS)
    if TAU_MINUS.setdefault(target_name, tau_minus) != tau_minus:
        raise SystemExit(f"two plastic projections onto {target_name} with tau_minus {TAU_MINUS[target_name]} and {tau_minus}")
    target.set(tau_minus=tau_minus)
    if hom and params.get("Wmax", float("inf")) not in (None, float("inf")):
        raise SystemExit("stdp_pl with a finite Wmax has no NEST counterpart")
    params.pop("Wmax", None) if hom else None
    name = f"myelin_plastic_{k}"
    nest.CopyModel(model + hpc, name, params)
    return name


def selection(nodes, sel):
    if sel == "All":
        return nodes
    (kind, v), = sel.items()
    if kind == "First":
        return nodes[: v]
    if kind == "Range":
        return nodes[v[0] : v[1]]
    if kind == "List":
        return nodes[sorted(set(v))]
    raise SystemExit(f"unsupported selection {sel}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene_json")
    ap.add_argument("out_dir")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--hpc", action="store_true", help="the _hpc variants of the synapse models (static_synapse_hpc, ...), as NEST's hpc_benchmark.py")
    a = ap.parse_args()
    hpc = "_hpc" if a.hpc else ""
    scene = json.load(open(a.scene_json))
    duration = a.duration or scene["duration"]
    seed = a.seed if a.seed is not None else scene["seed"]
    os.makedirs(a.out_dir, exist_ok=True)

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.time(), cpu()
    nest.ResetKernel()
    nest.set_verbosity("M_WARNING")
    nest.SetKernelStatus({"resolution": scene["dt"], "local_num_threads": a.threads, "rng_seed": seed % (2**31 - 1) + 1, "print_time": False})
    pops = {}
    for p in scene["populations"]:
        params = {k: float(v) for k, v in p["params"].items()}
        nodes = nest.Create(p["model"], p["size"], params=params)
        for var, d in p.get("initial", {}).items():
            nodes.set({var: dist(d, f"{p['name']}.initial.{var}")})
        pops[p["name"]] = nodes
    t_create = time.time()
    plastic = []  # synapse model of each projection (None: static)
    for j in scene.get("projections", []):
        conn = RULES[j["rule"]](j.get("rule_params", {}))
        conn["allow_autapses"] = j.get("autapses", True)
        conn["allow_multapses"] = j.get("multapses", True)
        if j["rule"] in ("all_to_all", "one_to_one", "pairwise_bernoulli"):
            conn.pop("allow_multapses")
        syn = {"synapse_model": "static_synapse" + hpc, "weight": dist(j["weight"], "weight"), "delay": dist(j["delay"], "delay")}
        pl = j.get("plasticity")
        if pl:
            syn["synapse_model"] = plastic_model(pl, j["target"], pops[j["target"]], hpc, len(plastic))
        plastic.append(syn["synapse_model"] if pl else None)
        nest.Connect(pops[j["source"]], pops[j["target"]], conn, syn)
    for inp in scene.get("inputs", []):
        prm = {k: v for k, v in inp.get("params", {}).items()}
        targets = selection(pops[inp["target"]], inp.get("neurons", "All"))
        if inp["model"] == "poisson_generator":
            g = nest.Create("poisson_generator", params={"rate": prm["rate"], "start": prm.get("start", 0.0), **({"stop": prm["stop"]} if prm.get("stop") is not None else {})})
            nest.Connect(g, targets, "all_to_all", {"weight": prm["weight"], "delay": prm.get("delay", 1.0)})
        elif inp["model"] == "dc_generator":
            g = nest.Create("dc_generator", params={"amplitude": prm["amplitude"], "start": prm.get("start", 0.0), **({"stop": prm["stop"]} if prm.get("stop") is not None else {})})
            nest.Connect(g, targets)
        elif inp["model"] == "spike_generator":
            g = nest.Create("spike_generator", params={"spike_times": prm["spike_times"]})
            nest.Connect(g, targets, "all_to_all", {"weight": prm["weight"], "delay": prm.get("delay", 1.0)})
        else:
            raise SystemExit(f"unsupported input {inp['model']}")
    recs = {}
    for r in scene.get("recorders", []):
        if "Spikes" in r:
            s = r["Spikes"]
            label = s.get("label") or s["population"]
            rec = nest.Create("spike_recorder")
            nest.Connect(selection(pops[s["population"]], s.get("neurons", "All")), rec)
            recs[label] = (s["population"], rec, len(selection(pops[s["population"]], s.get("neurons", "All"))))
    weight_recs = [r["Weights"] for r in scene.get("recorders", []) if "Weights" in r]
    nest.Prepare()
    t_build, c_build = time.time(), cpu()
    nest.Run(duration)
    nest.Cleanup()
    t_sim, c_sim = time.time(), cpu()
    load = os.getloadavg()

    n_syn = nest.GetKernelStatus("num_connections")
    weights = {}
    names = [j.get("name") or f"{j['source']}->{j['target']}" for j in scene.get("projections", [])]
    for w in weight_recs:
        k = names.index(w["projection"])
        j = scene["projections"][k]
        tgt = selection(pops[j["target"]], w.get("targets", "All"))
        c = nest.GetConnections(source=pops[j["source"]], target=tgt, synapse_model=plastic[k] or ("static_synapse" + hpc))
        st = c.get(["source", "target", "weight"])
        label = w.get("label") or f"{w['projection']}_weights"
        order = np.lexsort((np.asarray(st["source"]), np.asarray(st["target"])))
        weights[label] = (w["projection"], j["source"], j["target"],
                          (np.asarray(st["source"]) - pops[j["source"]][0].global_id)[order],
                          (np.asarray(st["target"]) - pops[j["target"]][0].global_id)[order],
                          np.asarray(st["weight"], dtype=np.float32)[order])
    with h5py.File(os.path.join(a.out_dir, "recordings.h5.partial"), "w") as f:
        f.attrs["dt"] = scene["dt"]
        f.attrs["seed"] = seed
        f.attrs["scene_name"] = scene.get("name") or "scene"
        f.attrs["simulator"] = f"NEST {nest.__version__}"
        g = f.create_group("spikes")
        for label, (pop, rec, n) in recs.items():
            ev = rec.get("events")
            first = pops[pop][0].global_id
            order = np.lexsort((ev["senders"], ev["times"]))
            s = g.create_group(label)
            s.attrs["population"] = pop
            s.attrs["n_neurons"] = np.uint64(len(pops[pop]))
            s.attrs["first_id"] = np.uint64(first)
            s.attrs["recorded_neurons"] = np.uint64(n)
            s.create_dataset("times", data=np.asarray(ev["times"], dtype=np.float64)[order]).attrs["unit"] = "ms"
            s.create_dataset("senders", data=(np.asarray(ev["senders"]) - first).astype(np.uint32)[order])
        if weights:
            g = f.create_group("weights")
            for label, (proj, src, tgt, sources, targets, w) in weights.items():
                s = g.create_group(label)
                s.attrs["projection"], s.attrs["source"], s.attrs["target"] = proj, src, tgt
                s.attrs["n_synapses"] = np.uint64(len(w))
                s.attrs["note"] = "NEST: one sample at the end of the run"
                s.create_dataset("times", data=np.array([duration], dtype=np.float64)).attrs["unit"] = "ms"
                s.create_dataset("values", data=w[None, :])
                s.create_dataset("sources", data=sources.astype(np.uint32))
                s.create_dataset("targets", data=targets.astype(np.uint32))
    os.replace(os.path.join(a.out_dir, "recordings.h5.partial"), os.path.join(a.out_dir, "recordings.h5"))
    summary = {
        "simulator": f"NEST {nest.__version__}",
        "scene": scene.get("name"),
        "synapse_models": sorted({m for m in plastic if m} | {"static_synapse" + hpc}),
        "threads": a.threads,
        "seed": seed,
        "dt_ms": scene["dt"],
        "duration_ms": duration,
        "neurons": sum(len(p) for p in pops.values()),
        "synapses": n_syn,
        "create_s": t_create - t0,
        "construction_s": t_build - t0,
        "simulation_s": t_sim - t_build,
        "real_time_factor": (t_sim - t_build) / (duration / 1000.0),
        "construction_cpu_s": c_build - c0,
        "simulation_cpu_s": c_sim - c_build,
        "load_average_after": load,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    json.dump(summary, open(os.path.join(a.out_dir, "summary.json"), "w"), indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
