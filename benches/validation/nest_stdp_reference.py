#!/usr/bin/env python3
"""Reference weight trajectories of NEST's STDP synapses, for tests/plasticity_nest.rs.

    $PYTHON benches/validation/nest_stdp_reference.py [OUT.json]

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


def main():
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
