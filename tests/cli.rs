//! The command-line tool: outputs, the summary, refusal to clobber a previous run, and clear
//! errors with non-zero exit for bad scenes.

mod common;

use std::path::Path;

use common::{run, scene, stderr};

const SMALL: &str = r#"Scene(
    dt: 0.1, duration: 50.0, seed: 5,
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

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn run_writes_outputs_and_prints_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "small.ron", SMALL);
    let out = tmp.path().join("out");
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "neurons",
        "synapses",
        "construction",
        "real-time factor",
        "rate [Hz]",
        "E  ",
        "I  ",
    ] {
        assert!(table.contains(needle), "summary lacks {needle:?}:\n{table}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["neurons"], 250);
    assert_eq!(summary["threads"], 2);
    let pops = summary["populations"].as_array().unwrap();
    assert!(
        pops[0]["spikes"].as_u64().unwrap() > 0,
        "driven population E must spike"
    );
    assert!(out.join("recordings.h5").exists() && out.join("scene.ron").exists());
    assert!(
        !out.join("recordings.h5.partial").exists(),
        "no partial file is left behind"
    );
}

#[test]
fn a_previous_run_is_not_clobbered_without_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "small.ron", SMALL);
    let out = tmp.path().join("out");
    let args = [
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    assert!(run(&args).status.success());
    let before = std::fs::read(out.join("recordings.h5")).unwrap();
    let summary_before = std::fs::read(out.join("summary.json")).unwrap();
    let o = run(&[&args[..], &["--seed", "6"]].concat());
    assert!(
        !o.status.success(),
        "a second run into the same folder must fail"
    );
    let e = stderr(&o);
    assert!(
        e.contains("already holds results") && e.contains("--overwrite"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(out.join("recordings.h5")).unwrap(),
        before,
        "recordings must be untouched"
    );
    assert_eq!(
        std::fs::read(out.join("summary.json")).unwrap(),
        summary_before,
        "summary must be untouched"
    );
    let o = run(&[&args[..], &["--seed", "6", "--overwrite"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(
        std::fs::read(out.join("summary.json")).unwrap(),
        summary_before,
        "--overwrite replaces the results"
    );
}

/// Each bad input: the binary exits non-zero, names the file, line and column and the
/// offending value, and leaves an earlier run's results in the output folder untouched.
#[test]
fn bad_scenes_fail_clearly_and_touch_nothing() {
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "unknown model",
            r#"model: "iaf_psc_exp"),
        Population(name: "I", size: 50, model: "iaf_psc_exp"),"#,
            r#"model: "iaf_psc_exp"),
        Population(name: "I", size: 50, model: "iaf_cond_magic"),"#,
            "5:48: populations[1].model: unknown neuron model \"iaf_cond_magic\"",
        ),
        (
            "unknown population",
            r#"source: "E", target: "I""#,
            r#"source: "E", target: "L9E""#,
            "target: unknown population \"L9E\"",
        ),
        (
            "wrong type",
            "size: 200",
            "size: \"ten\"",
            "4:37: populations[0].size: expected integer, found \"ten\"",
        ),
        (
            "negative delay",
            "delay: Constant(1.0)",
            "delay: Constant(-1.0)",
            "delay distribution allows a delay of -1 ms",
        ),
        (
            "zero delay",
            "delay: Constant(1.0)",
            "delay: Constant(0.0)",
            "allows a delay of 0 ms",
        ),
        (
            "probability",
            r#"{ "p": 0.2 }"#,
            r#"{ "p": 1.5 }"#,
            "\"p\" = 1.5 is outside its valid range [0, 1]",
        ),
        (
            "missing field",
            r#"Population(name: "I", size: 50, model: "iaf_psc_exp")"#,
            r#"Population(name: "I", model: "iaf_psc_exp")"#,
            "missing field `size`",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let good = write(tmp.path(), "good.ron", SMALL);
    let out = tmp.path().join("out");
    assert!(
        run(&[
            "run",
            good.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );
    let before = std::fs::read(out.join("recordings.h5")).unwrap();
    for (what, from, to, expect) in cases {
        assert!(
            SMALL.contains(from),
            "case {what}: pattern not in the scene"
        );
        let bad = write(tmp.path(), "bad.ron", &SMALL.replacen(from, to, 1));
        for cmd in ["check", "run"] {
            let o = run(&[
                cmd,
                bad.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--overwrite",
            ][..if cmd == "check" { 2 } else { 5 }]);
            assert!(!o.status.success(), "{what}: `myelin {cmd}` must fail");
            let e = stderr(&o);
            assert!(
                e.contains("bad.ron:") && e.contains(expect),
                "{what}: `myelin {cmd}` said:\n{e}\nexpected to contain {expect:?}"
            );
            assert!(!e.contains("panicked"), "{what}: no panic: {e}");
        }
        assert_eq!(
            std::fs::read(out.join("recordings.h5")).unwrap(),
            before,
            "{what}: earlier results must be untouched"
        );
    }
}

#[test]
fn check_accepts_every_shipped_scene() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scenes = vec![root.join("scenes/brunel.ron"), scene("mixed.ron")];
    for e in std::fs::read_dir(root.join("scenes/examples")).unwrap() {
        scenes.push(e.unwrap().path());
    }
    for s in scenes {
        let o = run(&["check", s.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", s.display(), stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("valid scene"));
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_backend_is_a_clear_error_without_the_feature() {
    let o = run(&[
        "run",
        scene("mixed.ron").to_str().unwrap(),
        "--backend",
        "cuda",
        "--quiet",
        "--out",
        "/nonexistent/never-created",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("built without the `cuda` feature") && !e.contains("panicked"),
        "{e}"
    );
}

/// With the feature but without a driver (CI machines have no GPU), selecting the CUDA
/// backend names the missing driver library; it never panics, and writes nothing.
#[cfg(feature = "cuda")]
#[test]
fn cuda_backend_without_a_driver_names_what_is_missing() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let o = run(&[
        "run",
        scene("mixed.ron").to_str().unwrap(),
        "--backend",
        "cuda",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    if myelin::engine::cuda::probe().is_err() {
        assert!(
            e.contains("needs the NVIDIA driver") && e.contains("libcuda.so"),
            "{e}"
        );
    }
    assert!(
        !dir.exists(),
        "nothing is written before the backend is checked"
    );
}
