#!/usr/bin/env python3
"""Reference weight trajectories of NEST's STDP synapses, for tests/plasticity_nest.rs, and a
network-scale replay check.

    $PYTHON benches/validation/nest_stdp_reference.py [OUT.json]
    $PYTHON benches/validation/nest_stdp_reference.py replay SCENE.json RUN_DIR [LABEL]

(default OUT: tests/data/stdp_nest_reference.json; PYTHON: an interpreter with NEST 3.x,
e.g. /work/venv-nest/bin/python.)

Two neurons: a presynaptic and a postsynaptic iaf_psc_delta, each made to spike at given
times by a spike_generator (a 50 mV kick through 0.1 ms), joined by one plastic synapse
(weight in mV, far below threshold). For every rule and delay the script records the
neurons' spike times and, with a weight_recorder, the synapse's weight after every
presynaptic spike (NEST updates the weight when it transmits a spike). The Rust test builds
the same network in Myelin and compares spike for spike and weight for weight.

Rules: stdp_synapse (multiplicative and additive), stdp_nn_symm_synapse,
stdp_nn_pre_centered_synapse, stdp_nn_restr_synapse, stdp_pl_synapse_hom (the HPC
benchmark's parameters).

`replay` checks a whole Myelin run: it takes the spikes Myelin recorded for the source and
target populations of a plastic projection and the synapses of a Weights recorder (sources,
targets; the projection's weight and delay must be constants), replays exactly these spike
trains in NEST through parrot neurons (the plastic synapses on the parrots' receptor 1, so
they do not make spikes) and compares NEST's final weights with Myelin's last sample, synapse
by synapse. SCENE.json is `myelin check SCENE --json`; the spike recorders must be labelled
with the population names and record every neuron.
"""
import json
import os
import sys

import nest
import numpy as np

DT = 0.1  # ms
T_SIM = 3000.0  # ms
NEURON = {"E_L": 0.0, "V_reset": 0.0, "V_th": 20.0, "tau_m": 10.0, "t_ref": 2.0, "C_m": 250.0, "V_m": 0.0}
KICK = {"weight": 50.0, "delay": 0.1}  # mV, ms: makes the neuron spike in the step it arrives

# (case name, Myelin rule, NEST model, Myelin parameters (NEST names except tau_minus,
# which NEST sets on the postsynaptic neuron), initial weight [mV]).
BOUNDED = {"tau_plus": 16.8, "tau_minus": 33.7, "lambda": 0.05, "alpha": 1.1, "Wmax": 3.0}
CASES = [
    ("stdp_mult", "stdp", "stdp_synapse", {**BOUNDED, "mu_plus": 1.0, "mu_minus": 1.0}, 1.0),
    ("stdp_add", "stdp", "stdp_synapse", {**BOUNDED, "alpha": 0.45, "mu_plus": 0.0, "mu_minus": 0.0}, 1.0),
    ("stdp_gutig", "stdp", "stdp_synapse", {**BOUNDED, "mu_plus": 0.4, "mu_minus": 0.4}, 1.0),
    ("stdp_nn_symm", "stdp_nn_symm", "stdp_nn_symm_synapse", {**BOUNDED, "mu_plus": 1.0, "mu_minus": 1.0}, 1.0),
    ("stdp_nn_pre_centered", "stdp_nn_pre_centered", "stdp_nn_pre_centered_synapse", {**BOUNDED, "mu_plus": 1.0, "mu_minus": 1.0}, 1.0),
    ("stdp_nn_restr", "stdp_nn_restr", "stdp_nn_restr_synapse", {**BOUNDED, "mu_plus": 1.0, "mu_minus": 1.0}, 1.0),
    ("stdp_pl", "stdp_pl", "stdp_pl_synapse_hom", {"tau_plus": 15.0, "tau_minus": 30.0, "lambda": 0.1, "alpha": 0.0513, "mu": 0.4}, 1.0),
]
DELAYS = [0.1, 1.5, 3.7]  # ms: one step, the HPC benchmark's, an odd one


def trains(seed, delay):
    """Spike-generator times (grid, ms) of the pre and post neuron: irregular trains at
    about 25 Hz with gaps of at least 3 ms (beyond the refractory period), plus post spikes
    placed so that t_post + d equals t_pre exactly, or one step off, for some pre spikes."""
    rng = np.random.default_rng(seed)

    def train(rate):
        t, out = 5.0, []
        while True:
            t += 3.0 + rng.exponential(1000.0 / rate)
            t = round(t / DT) * DT
            if t > T_SIM - 50.0:
                return out
            out.append(round(t, 1))

    pre, post = train(25.0), train(25.0)
    # Boundary cases: t_post + d == t_pre (+- one step) at the synapse.
    for k, off in zip(range(3, len(pre), 9), [0.0, DT, -DT] * 100):
        t = round(pre[k] - delay + off, 1)
        if t > 1.0 and all(abs(t - x) >= 3.0 for x in post):
            post.append(t)
    return pre, sorted(post)


def run_case(name, rule, model, params, w0, delay, seed):
    nest.ResetKernel()
    nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus({"resolution": DT, "local_num_threads": 1, "print_time": False})
    pre_t, post_t = trains(seed, delay)
    pre = nest.Create("iaf_psc_delta", params=NEURON)
    post = nest.Create("iaf_psc_delta", params={**NEURON, "tau_minus": params["tau_minus"]})
    g_pre = nest.Create("spike_generator", params={"spike_times": pre_t})
    g_post = nest.Create("spike_generator", params={"spike_times": post_t})
    nest.Connect(g_pre, pre, syn_spec=KICK)
    nest.Connect(g_post, post, syn_spec=KICK)
    wr = nest.Create("weight_recorder")
    syn = {k: v for k, v in params.items() if k != "tau_minus"}
    if model == "stdp_pl_synapse_hom":
        nest.CopyModel(model, "plastic", {**syn, "weight_recorder": wr})
        nest.Connect(pre, post, syn_spec={"synapse_model": "plastic", "weight": w0, "delay": delay})
    else:
        nest.CopyModel(model, "plastic", {"weight_recorder": wr})
        nest.Connect(pre, post, syn_spec={"synapse_model": "plastic", "weight": w0, "delay": delay, **syn})
    rec_pre, rec_post = nest.Create("spike_recorder"), nest.Create("spike_recorder")
    nest.Connect(pre, rec_pre)
    nest.Connect(post, rec_post)
    nest.Simulate(T_SIM)
    ev = wr.get("events")
    return {
        "name": f"{name}_d{delay}",
        "rule": rule,
        "nest_model": model,
        "params": params,
        "weight": w0,
        "delay": delay,
        "dt": DT,
        "duration": T_SIM,
        "neuron": NEURON,
        "kick": KICK,
        "pre_generator": pre_t,
        "post_generator": post_t,
        "pre_spikes": [float(x) for x in rec_pre.get("events")["times"]],
        "post_spikes": [float(x) for x in rec_post.get("events")["times"]],
        "weight_times": [float(x) for x in ev["times"]],
        "weights": [float(x) for x in ev["weights"]],
    }


NEST_MODEL = {"stdp": "stdp_synapse", "stdp_nn_symm": "stdp_nn_symm_synapse",
              "stdp_nn_pre_centered": "stdp_nn_pre_centered_synapse",
              "stdp_nn_restr": "stdp_nn_restr_synapse", "stdp_pl": "stdp_pl_synapse_hom"}


def replay(scene_json, run_dir, label=None):
    import h5py
    scene = json.load(open(scene_json))
    dt = scene["dt"]
    with h5py.File(os.path.join(run_dir, "recordings.h5")) as f:
        label = label or list(f["weights"].keys())[0]
        g = f["weights"][label]
        proj = g.attrs["projection"]
        proj = proj.decode() if isinstance(proj, bytes) else proj
        sources, targets = g["sources"][:], g["targets"][:]
        t_end = float(g["times"][-1])
        w_myelin = g["values"][-1].astype(np.float64)
        j = next(p for p in scene["projections"] if (p.get("name") or f"{p['source']}->{p['target']}") == proj)
        spikes = {}
        for pop in {j["source"], j["target"]}:
            s = f["spikes"][pop]
            assert int(s.attrs["recorded_neurons"]) == int(s.attrs["n_neurons"]), f"record all of {pop}"
            spikes[pop] = (s["times"][:], s["senders"][:], int(s.attrs["n_neurons"]))
    pl = j["plasticity"]
    params = dict(pl.get("params", {}))
    tau_minus = params.pop("tau_minus", 20.0)
    if pl["model"] == "stdp_pl":
        params.pop("Wmax", None)
    (w0,), (delay,) = j["weight"].values(), j["delay"].values()
    shift, kick = 10.0, dt  # NEST's spike generators cannot emit at t <= 0: shift all by 10 ms

    nest.ResetKernel()
    nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus({"resolution": dt, "local_num_threads": 2, "print_time": False})
    n_src = spikes[j["source"]][2]
    tgt_ids = np.unique(targets)
    pre = nest.Create("parrot_neuron", n_src)
    post = nest.Create("parrot_neuron", len(tgt_ids), params={"tau_minus": tau_minus})

    def drive(pop, nodes, index):
        t, s, _ = spikes[pop]
        keep = t <= t_end + 1e-9
        t, s = t[keep], s[keep]
        gens = nest.Create("spike_generator", len(index))
        for k, i in enumerate(index):
            times = np.round((t[s == i] + shift - kick) / dt) * dt
            gens[k].spike_times = [float(x) for x in times]
        nest.Connect(gens, nodes, "one_to_one", {"delay": kick})

    drive(j["source"], pre, range(n_src))
    drive(j["target"], post, tgt_ids)
    nest.CopyModel(NEST_MODEL[pl["model"]], "replayed", params if pl["model"] == "stdp_pl" else {})
    syn = {"synapse_model": "replayed", "weight": np.full(len(sources), w0), "delay": np.full(len(sources), delay),
           "receptor_type": 1}
    if pl["model"] != "stdp_pl":
        syn.update({k: np.full(len(sources), v) for k, v in params.items()})
    pos = np.searchsorted(tgt_ids, targets)
    nest.Connect(np.asarray(pre.tolist())[sources], np.asarray(post.tolist())[pos], "one_to_one", syn)
    nest.Simulate(t_end + shift + 2 * delay + 1.0)
    c = nest.GetConnections(source=pre, target=post).get(["source", "target", "weight"])
    src = np.asarray(c["source"]) - pre[0].global_id
    tgt = tgt_ids[np.asarray(c["target"]) - post[0].global_id]
    w_nest = np.asarray(c["weight"])
    a = np.lexsort((w_myelin, targets, sources))
    b = np.lexsort((w_nest, tgt, src))
    assert np.array_equal(sources[a], src[b]) and np.array_equal(targets[a], tgt[b]), "same synapses"
    wm, wn = w_myelin[a], w_nest[b]
    rel = np.abs(wm - wn) / np.abs(wn)
    n_pre = int(np.sum(spikes[j["source"]][0] <= t_end + 1e-9))
    print(f"{run_dir}: {proj}, {len(wm)} synapses onto {len(tgt_ids)} targets, {n_pre} presynaptic spikes up to {t_end} ms")
    print(f"  weights: Myelin mean {wm.mean():.6f} std {wm.std():.6f}, NEST mean {wn.mean():.6f} std {wn.std():.6f} [pA]")
    print(f"  |Myelin - NEST| / NEST: max {rel.max():.3e}, 99.9 % {np.quantile(rel, 0.999):.3e}, median {np.median(rel):.3e}"
          f" (f32 epsilon {np.finfo(np.float32).eps:.3e}); changed from the initial weight: {np.mean(wn != w0) * 100:.1f} %")
    return rel.max()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "replay":
        replay(*sys.argv[2:])
        return
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "data", "stdp_nest_reference.json")
    cases = []
    for k, (name, rule, model, params, w0) in enumerate(CASES):
        for j, d in enumerate(DELAYS):
            c = run_case(name, rule, model, params, w0, d, seed=1000 + 10 * k + j)
            print(f"{c['name']:<28} {len(c['pre_spikes'])} pre, {len(c['post_spikes'])} post spikes, "
                  f"w {c['weights'][0]:.6f} .. {c['weights'][-1]:.6f}", file=sys.stderr)
            cases.append(c)
    doc = {
        "generator": "benches/validation/nest_stdp_reference.py",
        "simulator": f"NEST {nest.__version__}",
        "note": "weights after every presynaptic spike, from NEST's weight_recorder (times: the spike's time stamp)",
        "cases": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
