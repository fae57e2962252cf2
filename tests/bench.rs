//! `myelin bench`: a tiny suite runs and records every field; `compare` exits 1 on an
//! injected regression and 0 for two samples of one distribution; `plot` writes images;
//! unusable peers and bad suites fail clearly.

mod common;

use std::path::{Path, PathBuf};

use common::{run, stderr};
use myelin::bench::Record;

/// A scene of 250 neurons: a run takes milliseconds.
const TINY: &str = r#"Scene(
    name: "tiny", dt: 0.1, duration: 1000.0, seed: 5,
    populations: [
        Population(name: "E", size: 200, model: "iaf_psc_exp"),
        Population(name: "I", size: 50, model: "iaf_psc_exp"),
    ],
    projections: [
        Projection(source: "E", target: "I", rule: "pairwise_bernoulli", rule_params: { "p": 0.2 },
                   weight: Constant(50.0), delay: Constant(1.0)),
    ],
    inputs: [ Input(model: "poisson_generator", target: "E", params: { "rate": 30000.0, "weight": 87.8 }) ],
    recorders: [ Spikes(population: "E"), Spikes(population: "I") ],
)
"#;

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

/// A suite of the tiny scene, 5 ms simulated, with one thread count and two scales.
fn suite(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("tiny.ron"), TINY).unwrap();
    let f = dir.join("tiny-suite.ron");
    std::fs::write(
        &f,
        r#"Suite(name: "tiny", repeats: 2, cases: [
            Case(name: "tiny", scene: "tiny.ron", duration: 5.0, threads: [1], scales: [1.0, 0.5]),
        ])"#,
    )
    .unwrap();
    f
}

fn records(file: &Path) -> Vec<Record> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| Record::from_line(l).unwrap())
        .collect()
}

#[test]
fn a_suite_runs_each_repeat_in_a_process_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path());
    let store = tmp.path().join("store");
    let o = run(&["bench", s(&suite), "--out", s(&store)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = store.join("tiny.jsonl");
    let recs = records(&file);
    assert_eq!(recs.len(), 4, "2 scales x 2 repeats");
    let r = &recs[0];
    assert_eq!(r.schema_version, myelin::bench::SCHEMA_VERSION);
    assert_eq!((r.simulator.as_str(), r.case.as_str()), ("myelin", "tiny"));
    assert_eq!((r.repeat, r.repeats), (0, 2));
    assert_eq!(r.results.neurons, 250);
    assert!(r.results.synapses > 0 && r.results.spikes > 0);
    assert_eq!(r.params.duration_ms, 5.0);
    assert_eq!((r.params.threads, r.params.ranks), (1, 1));
    assert_eq!(r.params.backend, "cpu");
    assert_eq!(r.params.seed, 5);
    assert_eq!(r.params.scene_hash.len(), 64);
    assert!(r.results.peak_rss_bytes.is_some_and(|b| b > 1 << 20));
    assert!(r.timers.wall_s >= r.timers.simulation_s && r.timers.simulation_s > 0.0);
    assert!(r.timers.create_s.is_some() && r.timers.integrate_s.is_some());
    assert!(r.results.real_time_factor > 0.0);
    assert!(!r.meta.hostname.is_empty() && r.meta.cpus >= 1 && r.meta.memory_bytes > 0);
    assert_eq!(r.meta.crate_version, env!("CARGO_PKG_VERSION"));
    assert!(r.meta.date.ends_with('Z'));
    let half = &recs[2];
    assert_eq!(half.params.scale, 0.5);
    assert_eq!(half.results.neurons, 125);
    assert_ne!(half.params.scene_hash, r.params.scene_hash);
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("tiny [myelin, 5 ms, scale 1, 1 thread"),
        "{report}"
    );
    assert!(report.contains("previous: none"), "{report}");

    // A second run is compared with the first.
    let o = run(&[
        "bench",
        s(&suite),
        "--out",
        s(&store),
        "--repeats",
        "1",
        "--case",
        "tiny",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(records(&file).len(), 6);
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("previous: run"), "{report}");

    // The store plots, and compares with itself (its last two runs; one repeat: no verdict).
    let plots = tmp.path().join("plots");
    let o = run(&["bench", "plot", s(&store), "--out", s(&plots)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(plots.join("phases.png")).unwrap().len() > 0);
    let o = run(&["bench", "compare", s(&store), s(&store)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("too few"));
}

/// A record of `case` with simulation time `t` in run `run`.
fn synthetic(run_id: &str, date: &str, repeat: usize, t: f64) -> String {
    serde_json::json!({
        "schema_version": myelin::bench::SCHEMA_VERSION, "run_id": run_id, "suite": "s",
        "case": "brunel", "simulator": "myelin", "simulator_version": "0.1.0",
        "repeat": repeat, "repeats": 5,
        "params": { "scene": "brunel.ron", "scene_hash": "00", "seed": 1, "scale": 1.0,
                    "threads": 2, "ranks": 1, "backend": "cpu", "dt_ms": 0.1, "duration_ms": 1000.0 },
        "timers": { "wall_s": t + 1.0, "construction_s": 1.0, "create_s": 0.1, "connect_s": 0.8,
                    "prepare_s": 0.1, "simulation_s": t, "inputs_s": 0.1 * t, "integrate_s": 0.3 * t,
                    "exchange_s": 0.0, "deliver_s": 0.5 * t, "plasticity_s": 0.0, "record_s": 0.1 * t,
                    "checkpoint_s": 0.0 },
        "results": { "real_time_factor": t, "peak_rss_bytes": 1_000_000_000u64, "neurons": 12500,
                     "synapses": 15_625_000u64, "spikes": 100_000, "cpu_s": 2.0 * t },
        "meta": { "date": date, "git_commit": "abc", "git_dirty": false, "crate_version": "0.1.0",
                  "rustc": null, "profile": "release", "features": [], "cpu_model": "cpu",
                  "cpus": 2, "available_cpus": 2, "memory_bytes": 1u64 << 34, "os": "linux",
                  "kernel": "6", "hostname": "h", "load_avg": [0.0, 0.0, 0.0], "foreign_load": 0.0 }
    })
    .to_string()
}

/// Five timings of 10 s with about 2 % spread, times `factor`.
fn sample_file(
    dir: &Path,
    name: &str,
    run_id: &str,
    date: &str,
    factor: f64,
    shuffle: usize,
) -> PathBuf {
    const SPREAD: [f64; 5] = [0.98, 1.0, 1.02, 0.99, 1.01];
    let lines: Vec<String> = (0..5)
        .map(|i| synthetic(run_id, date, i, 10.0 * factor * SPREAD[(i + shuffle) % 5]))
        .collect();
    let f = dir.join(name);
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    f
}

#[test]
fn compare_exits_1_on_an_injected_regression_only() {
    let tmp = tempfile::tempdir().unwrap();
    let base = sample_file(
        tmp.path(),
        "base.jsonl",
        "r1",
        "2026-01-01T00:00:00Z",
        1.0,
        0,
    );
    let same = sample_file(
        tmp.path(),
        "same.jsonl",
        "r2",
        "2026-01-02T00:00:00Z",
        1.0,
        2,
    );
    let slow = sample_file(
        tmp.path(),
        "slow.jsonl",
        "r3",
        "2026-01-03T00:00:00Z",
        1.2,
        1,
    );

    let o = run(&["bench", "compare", s(&base), s(&slow)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("REGRESSION") && out.contains("1 regression(s)"),
        "{out}"
    );

    let o = run(&["bench", "compare", s(&base), s(&same)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unchanged"));

    // A 20 % slowdown under a 25 % threshold is not called.
    let o = run(&["bench", "compare", s(&base), s(&slow), "--threshold", "25"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // JSON output names the verdict.
    let o = run(&[
        "bench",
        "compare",
        s(&base),
        s(&slow),
        "--json",
        "--metric",
        "simulation",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cases"][0]["verdict"], "regression");
    assert_eq!(v["metric"], "simulation");
}

#[test]
fn plot_writes_non_empty_png_and_svg_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir(&store).unwrap();
    sample_file(&store, "a.jsonl", "r1", "2026-01-01T00:00:00Z", 1.0, 0);
    sample_file(&store, "b.jsonl", "r2", "2026-01-02T00:00:00Z", 0.8, 0);
    let out = tmp.path().join("plots");
    let o = run(&["bench", "plot", s(&store), "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["rtf_history", "phases", "scaling_threads"] {
        for ext in ["png", "svg"] {
            let f = out.join(format!("{name}.{ext}"));
            assert!(
                std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0) > 1000,
                "{f:?}"
            );
        }
    }
}

#[test]
fn unusable_peers_bad_suites_and_bad_stores_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path());
    let store = tmp.path().join("store");
    let o = run(&[
        "bench",
        s(&suite),
        "--out",
        s(&store),
        "--peers",
        "nest",
        "--python",
        "/nonexistent/python3",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("peer nest") && e.contains("MYELIN_NEST_PYTHON"),
        "{e}"
    );
    assert!(!store.exists(), "nothing ran");

    let o = run(&["bench", s(&suite), "--peers", "brian2"]);
    assert!(stderr(&o).contains("no adapter"), "{}", stderr(&o));

    let o = run(&["bench", s(&suite), "--case", "nope", "--out", s(&store)]);
    assert!(
        stderr(&o).contains("no case named \"nope\"; known: tiny"),
        "{}",
        stderr(&o)
    );

    let o = run(&["bench", "no-such-suite"]);
    assert!(
        stderr(&o).contains("no suite \"no-such-suite\""),
        "{}",
        stderr(&o)
    );

    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"schema_version\": 99}\n").unwrap();
    let o = run(&["bench", "compare", s(&bad), s(&bad)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad.jsonl:1: record of schema_version 99"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_shipped_suites_load() {
    for name in ["smoke", "standard"] {
        let o = run(&["bench", name, "--list", "--peers", "nest"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("/myelin/") && out.contains("/nest/"), "{out}");
    }
}
