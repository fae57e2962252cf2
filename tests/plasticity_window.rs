//! The STDP window of every rule from a pairing protocol: one presynaptic and one
//! postsynaptic spike `delta_t` apart at the synapse, then (1 s later) a presynaptic spike
//! that reads out the pending facilitation. The weight change over `delta_t` equals the
//! analytical curve of each rule.
//!
//! Timing at the synapse follows NEST (the whole delay `d` is dendritic): a presynaptic
//! spike at `t_pre` and a postsynaptic one at `t_post` are `delta_t = t_post + d - t_pre`
//! apart. For one pair the pairing schemes (all-to-all, nearest neighbour) agree:
//!
//! - `stdp`, `stdp_nn_*` (NEST's weight dependence, normalised by `Wmax`):
//!   `delta_t > 0`: `w = Wmax min(1, w0/Wmax + lambda (1 - w0/Wmax)^mu_plus exp(-delta_t/tau_plus))`;
//!   `delta_t < 0`: `w = Wmax max(0, w0/Wmax - alpha lambda (w0/Wmax)^mu_minus exp(delta_t/tau_minus))`;
//! - `stdp_pl`: `delta_t > 0`: `w = w0 + lambda w0^mu exp(-delta_t/tau_plus)`;
//!   `delta_t < 0`: `w = w0 - lambda alpha w0 exp(delta_t/tau_minus)`;
//! - `delta_t = 0`: no change (NEST pairs a postsynaptic spike arriving exactly with a
//!   presynaptic spike with the *earlier* presynaptic spikes only, and depresses with
//!   postsynaptic spikes strictly before it).

use std::collections::BTreeMap;

use myelin::engine::{
    Dist, InputSpec, NetworkSpec, ParamValue, PlasticitySpec, PopulationSpec, ProjectionSpec,
    Selection,
};
use myelin::{MyelinPlugins, Simulation};
use myelin_components::{Connectivity, StableId};

/// Tolerance on a weight [mV]: the weight is stored as `f32` after each presynaptic spike
/// (two updates here, each rounded to half an ulp of a weight below 2 mV, `f32::EPSILON`),
/// and the readout spike's own depression by the trace of a postsynaptic spike 1 s earlier
/// changes it by `lambda alpha w exp(-1000/tau_minus)`, below `1e-13` for these time
/// constants.
const WINDOW_TOL: f64 = 4.0 * f32::EPSILON as f64;

const DT: f64 = 0.1;
/// Time of the first presynaptic spike [ms]; late enough that NEST's implicit presynaptic
/// spike at time 0 of the nearest-neighbour rules is forgotten (`exp(-1000/tau_plus)`).
const T0: f64 = 1000.0;
/// Time from the pairing to the readout spike [ms].
const READOUT: f64 = 1000.0;
/// Delay of the plastic synapse [ms].
const DELAY: f64 = 1.5;
/// Delay of the spike generators' kicks [ms] (the neurons spike when a kick arrives).
const KICK_DELAY: f64 = 0.1;
/// Initial weight [mV].
const W0: f64 = 1.0;

struct Rule {
    name: &'static str,
    params: &'static [(&'static str, f64)],
}

const RULES: [Rule; 6] = [
    Rule {
        name: "stdp",
        params: &[
            ("tau_plus", 16.8),
            ("tau_minus", 33.7),
            ("lambda", 0.05),
            ("alpha", 1.1),
            ("mu_plus", 1.0),
            ("mu_minus", 1.0),
            ("Wmax", 3.0),
        ],
    },
    Rule {
        name: "stdp",
        params: &[
            ("tau_plus", 20.0),
            ("tau_minus", 20.0),
            ("lambda", 0.05),
            ("alpha", 0.9),
            ("mu_plus", 0.0),
            ("mu_minus", 0.0),
            ("Wmax", 3.0),
        ],
    },
    Rule {
        name: "stdp_nn_symm",
        params: &[
            ("tau_plus", 16.8),
            ("tau_minus", 33.7),
            ("lambda", 0.05),
            ("alpha", 1.1),
            ("mu_plus", 0.4),
            ("mu_minus", 0.7),
            ("Wmax", 3.0),
        ],
    },
    Rule {
        name: "stdp_nn_pre_centered",
        params: &[
            ("tau_plus", 16.8),
            ("tau_minus", 33.7),
            ("lambda", 0.05),
            ("alpha", 1.1),
            ("Wmax", 3.0),
        ],
    },
    Rule {
        name: "stdp_nn_restr",
        params: &[
            ("tau_plus", 16.8),
            ("tau_minus", 33.7),
            ("lambda", 0.05),
            ("alpha", 1.1),
            ("Wmax", 3.0),
        ],
    },
    Rule {
        name: "stdp_pl",
        params: &[
            ("tau_plus", 15.0),
            ("tau_minus", 30.0),
            ("lambda", 0.1),
            ("alpha", 0.0513),
            ("mu", 0.4),
        ],
    },
];

fn param(r: &Rule, name: &str, default: f64) -> f64 {
    r.params
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(default, |p| p.1)
}

/// The analytical weight after a pair `delta_t` apart at the synapse.
fn analytical(r: &Rule, delta_t: f64) -> f64 {
    let (tp, tm) = (param(r, "tau_plus", 20.0), param(r, "tau_minus", 20.0));
    let (lambda, alpha) = (param(r, "lambda", 0.0), param(r, "alpha", 1.0));
    if delta_t == 0.0 {
        return W0;
    }
    if r.name == "stdp_pl" {
        let mu = param(r, "mu", 0.4);
        return if delta_t > 0.0 {
            W0 + lambda * W0.powf(mu) * (-delta_t / tp).exp()
        } else {
            W0 - lambda * alpha * W0 * (delta_t / tm).exp()
        };
    }
    let (mp, mm, wmax) = (
        param(r, "mu_plus", 1.0),
        param(r, "mu_minus", 1.0),
        param(r, "Wmax", 100.0),
    );
    let x = W0 / wmax;
    if delta_t > 0.0 {
        wmax * (x + lambda * (1.0 - x).powf(mp) * (-delta_t / tp).exp()).min(1.0)
    } else {
        wmax * (x - alpha * lambda * x.powf(mm) * (delta_t / tm).exp()).max(0.0)
    }
}

/// Offsets `delta_t` [ms] of the protocol: every step near zero, coarser further out.
fn offsets() -> Vec<f64> {
    let mut v: Vec<f64> = (-30..=30).map(|k| k as f64 * DT).collect();
    v.extend((4..=100).map(|k| k as f64 * 1.3).flat_map(|x| [x, -x]));
    v.iter().map(|x| (x / DT).round() * DT).collect()
}

/// One network: per rule, `n` pre and `n` post neurons (iaf_psc_delta, kicked to spike by
/// spike generators at the protocol's times), joined one to one by plastic synapses.
fn network(deltas: &[f64]) -> NetworkSpec {
    let n = deltas.len();
    let neuron: BTreeMap<String, ParamValue> = [
        ("E_L", 0.0),
        ("V_reset", 0.0),
        ("V_th", 20.0),
        ("tau_m", 10.0),
        ("t_ref", 2.0),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), ParamValue::Number(*v)))
    .collect();
    let mut net = NetworkSpec {
        dt: DT,
        seed: 7,
        ..NetworkSpec::default()
    };
    for (k, r) in RULES.iter().enumerate() {
        let (pre, post) = (format!("pre{k}"), format!("post{k}"));
        for name in [&pre, &post] {
            net.populations.push(PopulationSpec {
                name: name.clone(),
                size: n,
                model: "iaf_psc_delta".into(),
                params: neuron.clone(),
                initial: BTreeMap::new(),
            });
        }
        net.projections.push(ProjectionSpec {
            name: None,
            source: pre.clone(),
            target: post.clone(),
            rule: "one_to_one".into(),
            rule_params: BTreeMap::new(),
            autapses: true,
            multapses: true,
            weight: Dist::Constant(W0),
            delay: Dist::Constant(DELAY),
            warm_start: None,
            plasticity: Some(PlasticitySpec {
                model: r.name.into(),
                params: r
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), ParamValue::Number(*v)))
                    .collect(),
            }),
        });
        let kick = |target: &str, j: usize, times: Vec<f64>| InputSpec {
            model: "spike_generator".into(),
            target: target.into(),
            params: BTreeMap::from([
                ("spike_times".into(), ParamValue::List(times)),
                ("weight".into(), ParamValue::Number(50.0)),
                ("delay".into(), ParamValue::Number(KICK_DELAY)),
            ]),
            neurons: Selection::List(vec![j as u32]),
        };
        for (j, &dlt) in deltas.iter().enumerate() {
            // Neuron spikes happen KICK_DELAY after the generator's times; at the synapse,
            // delta_t = t_post + DELAY - t_pre.
            let t_pre = T0;
            let t_post = t_pre + dlt - DELAY;
            let g = |t: f64| ((t - KICK_DELAY) / DT).round() * DT;
            net.inputs
                .push(kick(&pre, j, vec![g(t_pre), g(t_pre + READOUT)]));
            net.inputs.push(kick(&post, j, vec![g(t_post)]));
        }
    }
    net
}

#[test]
fn stdp_windows_match_the_analytical_curves() {
    let deltas = offsets();
    let mut sim = Simulation::new(DT);
    sim.add_plugins(MyelinPlugins);
    sim.build(&network(&deltas)).expect("valid network");
    sim.run_steps(((T0 + READOUT + 5.0) / DT).round() as u64);
    let world = sim.world_mut();
    let mut q = world.query::<(&StableId, &Connectivity)>();
    let mut worst = 0.0f64;
    let mut checked = 0;
    for (id, conn) in q.iter(world) {
        let r = &RULES[id.0 as usize];
        let syn = conn.synapses(myelin_components::DELIVERY_BLOCK);
        assert_eq!(syn.len(), deltas.len());
        let mut potentiated = (0, 0);
        for &(i, j, w, _) in &syn {
            assert_eq!(i, j, "one to one");
            let dlt = deltas[j as usize];
            let want = analytical(r, dlt);
            let err = (f64::from(w) - want).abs();
            worst = worst.max(err);
            assert!(
                err <= WINDOW_TOL,
                "{} {:?}: delta_t = {dlt} ms: weight {w}, analytical {want} (difference {err:e})",
                r.name,
                r.params
            );
            if dlt > 0.0 {
                potentiated.0 += usize::from(f64::from(w) > W0);
            } else if dlt < 0.0 {
                potentiated.1 += usize::from(f64::from(w) < W0);
            }
            checked += 1;
        }
        let n_pos = deltas.iter().filter(|&&d| d > 0.0).count();
        assert_eq!(
            potentiated,
            (n_pos, n_pos),
            "{}: causal pairs potentiate, anti-causal ones depress",
            r.name
        );
    }
    assert_eq!(checked, RULES.len() * deltas.len());
    eprintln!(
        "{checked} pairings, largest deviation from the analytical windows {worst:e} mV (tolerance {WINDOW_TOL:e})"
    );
}
