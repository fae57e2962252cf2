//! Plasticity keeps Myelin's promises: the same spikes and weights with 1 and 2 threads; a
//! run resumed from a checkpoint continues bit-identically (weights, per-synapse and
//! per-source variables, post-spike histories and traces are in the checkpoint), also with
//! catch-ups between and around the checkpoint; weight recorders write the documented
//! layout; scene errors in plasticity are located.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{run, same_recordings, stderr};
use myelin::MyelinPlugins;
use myelin::engine::{NetworkSpec, Simulation};
use myelin::io::checkpoint::{RunInfo, read_checkpoint, write_checkpoint};
use myelin::io::{RecorderPositions, parse_scene};
use myelin::systems::plasticity::PlasticitySettings;
use myelin_components::{Connectivity, PlasticityState, Spikes, StableId};

/// A small balanced network (HPC-benchmark neurons) with three plastic projections: E->E
/// power-law STDP with variable delays, E->I pre-centred nearest-neighbour STDP (a
/// per-synapse variable), I->I inhibitory STDP (negative weights and Wmax), one static
/// projection, and weight recorders.
const SCENE: &str = r#"
Scene(
    name: "plastic",
    dt: 0.1, duration: 200.0, seed: 99,
    populations: [
        Population(name: "E", size: 800, model: "iaf_psc_alpha",
                   params: { "E_L": 0.0, "V_reset": 0.0, "V_th": 20.0, "t_ref": 0.5, "tau_m": 10.0,
                             "tau_syn_ex": 0.32582722403722841, "tau_syn_in": 0.32582722403722841 },
                   initial: { "V_m": Normal(mean: 5.7, std: 7.2) }),
        Population(name: "I", size: 200, model: "iaf_psc_alpha",
                   params: { "E_L": 0.0, "V_reset": 0.0, "V_th": 20.0, "t_ref": 0.5, "tau_m": 10.0,
                             "tau_syn_ex": 0.32582722403722841, "tau_syn_in": 0.32582722403722841 },
                   initial: { "V_m": Normal(mean: 5.7, std: 7.2) }),
    ],
    projections: [
        Projection(source: "E", target: "E", rule: "fixed_indegree", rule_params: { "indegree": 80 },
                   autapses: false, weight: NormalRedraw(mean: 45.6, std: 5.0, min: 0.0, max: 200.0),
                   delay: Uniform(low: 1.0, high: 2.5),
                   plasticity: Plasticity(model: "stdp_pl", params: { "tau_plus": 15.0, "tau_minus": 30.0,
                               "lambda": 0.1, "alpha": 0.0513, "mu": 0.4 })),
        Projection(source: "E", target: "I", rule: "fixed_indegree", rule_params: { "indegree": 80 },
                   weight: Constant(45.6), delay: Constant(1.5),
                   plasticity: Plasticity(model: "stdp_nn_pre_centered", params: { "Wmax": 100.0, "lambda": 0.05 })),
        Projection(source: "I", target: "E", rule: "fixed_indegree", rule_params: { "indegree": 20 },
                   weight: Constant(-228.0), delay: Constant(1.5)),
        Projection(name: "inh", source: "I", target: "I", rule: "fixed_indegree", rule_params: { "indegree": 20 },
                   autapses: false, weight: Constant(-228.0), delay: Constant(0.8),
                   plasticity: Plasticity(model: "stdp", params: { "Wmax": -400.0, "lambda": 0.02, "mu_plus": 0.0 })),
    ],
    inputs: [
        Input(model: "poisson_generator", target: "E", params: { "rate": 21000.0, "weight": 45.6, "delay": 1.5 }),
        Input(model: "poisson_generator", target: "I", params: { "rate": 21000.0, "weight": 45.6, "delay": 1.5 }),
    ],
    recorders: [
        Spikes(population: "E"),
        Spikes(population: "I"),
        Weights(projection: "E->E", interval: 10.0, targets: First(30)),
        Weights(projection: "E->I", interval: 25.0, label: "ei"),
        Weights(projection: "inh", interval: 50.0),
    ],
)
"#;

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "myelin {args:?} failed:\n{}",
        stderr(&o)
    );
    o
}

fn scene_file(dir: &Path) -> PathBuf {
    let p = dir.join("plastic.ron");
    std::fs::write(&p, SCENE).unwrap();
    p
}

/// Reads `/weights/LABEL/values` as `[samples][synapses]`.
fn weights(file: &Path, label: &str) -> Vec<Vec<f32>> {
    let f = hdf5::File::open(file).unwrap();
    let v = f.dataset(&format!("weights/{label}/values")).unwrap();
    let shape = v.shape();
    let flat = v.read_raw::<f32>().unwrap();
    flat.chunks(shape[1]).map(<[f32]>::to_vec).collect()
}

#[test]
fn same_spikes_and_weights_with_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = scene_file(tmp.path());
    let (a, b) = (tmp.path().join("t1"), tmp.path().join("t2"));
    for (out, t) in [(&a, "1"), (&b, "2")] {
        ok(&["run", s(&sc), "--quiet", "--threads", t, "--out", s(out)]);
    }
    same_recordings(&a, &b);
    let f = a.join("recordings.h5");
    let ee = weights(&f, "E->E_weights");
    assert_eq!(ee.len(), 20, "200 ms sampled every 10 ms");
    let changed = ee[0].iter().zip(&ee[19]).filter(|(x, y)| x != y).count();
    assert!(
        changed > ee[0].len() / 2,
        "E->E weights must change for the comparison to mean something ({changed} of {} changed)",
        ee[0].len()
    );
    assert!(ee[19].iter().all(|&w| w >= 0.0));
    let inh = weights(&f, "inh_weights");
    assert!(inh[3].iter().all(|&w| (-400.0..=0.0).contains(&w)));
    assert!(inh[0] != inh[3], "inhibitory weights change");
    let (e_spikes, _) = common::read_spikes(&f, "E");
    assert!(e_spikes.len() > 800, "E must spike: {}", e_spikes.len());
    // The documented layout: sources and targets per column, times, attributes.
    let h = hdf5::File::open(&f).unwrap();
    let g = h.group("weights/E->E_weights").unwrap();
    let targets = g.dataset("targets").unwrap().read_raw::<u32>().unwrap();
    let sources = g.dataset("sources").unwrap().read_raw::<u32>().unwrap();
    assert_eq!(targets.len(), 30 * 80, "30 targets with in-degree 80");
    assert_eq!(sources.len(), targets.len());
    assert!(targets.iter().all(|&t| t < 30));
    assert!(
        sources.iter().zip(&targets).all(|(s, t)| s != t),
        "no autapses"
    );
    let times = g.dataset("times").unwrap().read_raw::<f64>().unwrap();
    assert_eq!(times[0], 10.0);
    let proj: hdf5::types::VarLenUnicode = g.attr("projection").unwrap().read_scalar().unwrap();
    assert_eq!(proj.as_str(), "E->E");

    // `myelin analyze` reports the weight distribution of every sample and the first and
    // last samples' histograms, computed from the same data.
    let o = ok(&["analyze", s(&a), "--from", "50", "--no-plots"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("weights E->E_weights (projection E->E, 2400 synapses)"),
        "the table names the recorder"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("analysis.json")).unwrap()).unwrap();
    let w = report["weights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["label"] == "E->E_weights")
        .expect("E->E_weights in analysis.json");
    let samples = w["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 20);
    let last = &ee[19];
    let mean = last.iter().map(|&x| f64::from(x)).sum::<f64>() / last.len() as f64;
    let (min, max) = last
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let s19 = &samples[19];
    assert!((s19["mean"].as_f64().unwrap() - mean).abs() <= 1e-9 * mean.abs());
    assert_eq!(s19["min"].as_f64().unwrap(), f64::from(min));
    assert_eq!(s19["max"].as_f64().unwrap(), f64::from(max));
    assert_eq!(s19["t_ms"].as_f64().unwrap(), 200.0);
    let h = &w["histogram"];
    for k in ["first", "last"] {
        let n: u64 = h[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(n, 2400, "every synapse in the {k} histogram");
    }
}

#[test]
fn resumed_runs_continue_bit_identically_with_plasticity() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = scene_file(tmp.path());
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    ok(&[
        "run",
        s(&sc),
        "--quiet",
        "--threads",
        "2",
        "--out",
        s(&straight),
    ]);
    ok(&[
        "run",
        s(&sc),
        "--quiet",
        "--threads",
        "1",
        "--out",
        s(&split),
        "--duration",
        "105",
        "--checkpoint-every",
        "35",
    ]);
    let ckpt = split.join("checkpoints").join("checkpoint-000000001050.h5");
    let c = read_checkpoint(&ckpt).unwrap();
    let ee = c.projections[0].plasticity.as_ref().expect("E->E learns");
    assert_eq!(ee.rule, "stdp_pl");
    let names: Vec<&str> = ee.pre.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Kplus"]);
    assert!(ee.post.history.iter().any(|h| !h.is_empty()));
    let ei = c.projections[1].plasticity.as_ref().expect("E->I learns");
    assert_eq!(
        ei.synapse[0].name, "Kplus",
        "per-synapse trace of pre-centred STDP"
    );
    assert!(c.projections[2].plasticity.is_none(), "I->E is static");
    ok(&[
        "resume",
        s(&split.join("checkpoints")),
        "--quiet",
        "--threads",
        "2",
    ]);
    same_recordings(&straight, &split);
}

/// Builds `spec` with catch-ups every `catch_up_ms`, taking connectivity and state from
/// `from` when given.
fn simulation(spec: &NetworkSpec, catch_up_ms: f64, from: Option<&Path>) -> Simulation {
    let mut sim = Simulation::new(spec.dt);
    sim.add_plugins(MyelinPlugins);
    sim.world_mut()
        .insert_resource(PlasticitySettings { catch_up_ms });
    let ckpt = from.map(|p| {
        let mut c = read_checkpoint(p).unwrap();
        sim.world_mut().insert_resource(c.take_connectivity());
        c
    });
    sim.build(spec).unwrap();
    if let Some(c) = ckpt {
        c.restore(sim.world_mut()).unwrap();
    }
    sim
}

/// Everything the plasticity touches, by projection and population id.
type Snapshot = (
    BTreeMap<u32, (Connectivity, Option<PlasticityState>)>,
    BTreeMap<u32, u64>,
);

fn snapshot(sim: &mut Simulation) -> Snapshot {
    let w = sim.world_mut();
    let mut q = w.query::<(&StableId, &Connectivity, Option<&PlasticityState>)>();
    let proj = q
        .iter(w)
        .map(|(id, c, p)| (id.0, (c.clone(), p.cloned())))
        .collect();
    let mut q = w.query::<(&StableId, &Spikes)>();
    let spikes = q.iter(w).map(|(id, s)| (id.0, s.total)).collect();
    (proj, spikes)
}

/// Library-level restart with catch-ups every 3 ms (so sources are caught up before and
/// after the checkpoint, and histories are pruned): the restored world continues to the
/// same weights, plasticity state and spike counts as the uninterrupted one, with each
/// projection in the layout its kind is stored in.
#[test]
fn restart_with_catch_ups_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = parse_scene(Path::new("plastic.ron"), SCENE).unwrap();
    let mut spec = scene.network();
    spec.recorders.clear();
    let steps = 800;
    let mut straight = simulation(&spec, 3.0, None);
    straight.run_steps(steps);
    let want = snapshot(&mut straight);

    let mut first = simulation(&spec, 3.0, None);
    first.run_steps(steps / 2);
    let ckpt = tmp.path().join("c.h5");
    let run = RunInfo {
        scene_name: "plastic".into(),
        scene_file: "plastic.ron".into(),
        scene_source: SCENE.into(),
        scene_hash: myelin::io::sha256_hex(SCENE),
        end_step: steps,
        out_dir: s(tmp.path()).into(),
        checkpoint_every_steps: 0,
        checkpoint_dir: s(tmp.path()).into(),
        keep: 1,
        myelin_version: "test".into(),
    };
    write_checkpoint(&ckpt, first.world(), &run, &RecorderPositions::default()).unwrap();
    let mut second = simulation(&spec, 3.0, Some(&ckpt));
    assert_eq!(second.clock().step, steps / 2);
    second.run_steps(steps / 2);
    let got = snapshot(&mut second);
    assert_eq!(got.1, want.1, "spike counts");
    // The static projection is stored source after source, built or restored; the plastic
    // ones keep their blocks.
    for (id, (conn, pl)) in want.0.iter().chain(&got.0) {
        assert_eq!(
            conn.by_source().is_some(),
            pl.is_none(),
            "projection {id}: layout"
        );
    }
    assert!(want.0.values().any(|(c, _)| c.by_source().is_some()));
    for (id, (conn, pl)) in &want.0 {
        let (c2, p2) = &got.0[id];
        assert!(conn == c2, "projection {id}: weights differ");
        assert!(pl == p2, "projection {id}: plasticity state differs");
    }
    let ee = want.0[&0].1.as_ref().unwrap();
    let span = ee
        .post
        .history
        .iter()
        .filter_map(|h| Some(h.last()? - h.first()?))
        .max()
        .unwrap();
    assert!(
        span <= 2 * 30 + 25,
        "histories are pruned to two catch-up periods and the longest delay: {span} steps"
    );
}

#[test]
fn plasticity_errors_are_located() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = SCENE
        .replace("\"mu\": 0.4 }", "\"mu\": -0.4 }")
        .replace("model: \"stdp_nn_pre_centered\"", "model: \"stdp_nnn\"")
        .replace(
            "weight: Constant(-228.0), delay: Constant(0.8)",
            "weight: Constant(-500.0), delay: Constant(0.8)",
        )
        .replace(
            "Weights(projection: \"E->I\"",
            "Weights(projection: \"E->X\"",
        );
    let p = tmp.path().join("bad.ron");
    std::fs::write(&p, &bad).unwrap();
    let o = run(&["check", s(&p)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (path, needle, what) in [
        (
            "projections[0].plasticity.params.\"mu\"",
            "\"mu\": -0.4",
            "outside its valid range",
        ),
        (
            "projections[1].plasticity.model",
            "stdp_nnn",
            "unknown plasticity rule \"stdp_nnn\"; known: stdp, stdp_nn_pre_centered",
        ),
        (
            "projections[3].weight",
            "Constant(-500.0)",
            "weights must lie in [-400, 0]",
        ),
        (
            "recorders[3].projection",
            "E->X",
            "unknown projection \"E->X\"; known: E->E, E->I, I->E, inh",
        ),
    ] {
        let line = line_of(needle);
        let found = e
            .lines()
            .find(|l| l.contains(path))
            .unwrap_or_else(|| panic!("no error at {path}:\n{e}"));
        assert!(
            found.contains(&format!("bad.ron:{line}:")),
            "{found} (expected line {line})"
        );
        assert!(found.contains(what), "{found}");
    }
}
