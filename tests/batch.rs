//! Batch runs: a batch whose process group is killed with SIGKILL at a random moment and
//! started again completes every job with outputs identical to an uninterrupted batch; a
//! finished batch is skipped; bad sweeps fail clearly.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{datasets, myelin, run, scene, stderr};

/// Four jobs (two values of E's membrane time constant, two seeds) of 60 ms of mixed.ron,
/// checkpointed every 15 ms.
fn sweep(dir: &Path) -> PathBuf {
    let text = format!(
        r#"// A sweep for the batch tests.
Sweep(
    scene: "{}",
    grid: [
        Param(path: "populations[\"E\"].params[\"tau_m\"]", values: [10.0, 14.0]),
        Param(path: "duration", values: [60.0]),
        Param(path: "inputs[0].params[\"rate\"]", values: [15000.0]),
    ],
    seeds: [1, 2],
    checkpoint_every: 15.0,
    threads: 1,
)
"#,
        scene("mixed.ron").display()
    );
    let path = dir.join("sweep.ron");
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

fn batch(sweep: &Path, out: &Path) -> Output {
    let o = run(&["batch", s(sweep), "--out", s(out), "--jobs", "2"]);
    assert!(o.status.success(), "batch failed:\n{}", stderr(&o));
    o
}

/// Every dataset of a recording as bytes, by path and shape.
fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

/// Asserts that two batch folders hold the same jobs with identical recordings and spike
/// counts.
fn same_batches(a: &Path, b: &Path) {
    let (ma, mb) = (manifest(a), manifest(b));
    let jobs = ma["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 4);
    for (ja, jb) in jobs.iter().zip(mb["jobs"].as_array().unwrap()) {
        assert_eq!(ja["state"], "done");
        assert_eq!(jb["state"], "done");
        assert_eq!(
            ja["populations"], jb["populations"],
            "spike counts of {}",
            ja["name"]
        );
        let name = ja["name"].as_str().unwrap();
        let (ra, rb) = (
            datasets(&a.join(name).join("recordings.h5")),
            datasets(&b.join(name).join("recordings.h5")),
        );
        assert_eq!(ra.len(), rb.len());
        for ((ka, va), (kb, vb)) in ra.iter().zip(&rb) {
            assert_eq!(ka, kb);
            assert!(va == vb, "{name}: dataset {ka} differs");
        }
    }
}

/// A pseudo-random duration in `[lo, hi)` from the clock (printed, to reproduce a failure).
fn random_between(lo: Duration, hi: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u128;
    let span = (hi - lo).as_nanos();
    let d = lo + Duration::from_nanos((nanos * 7919 % span) as u64);
    println!("killing after {d:?}");
    d
}

#[test]
fn a_batch_killed_at_a_random_moment_completes_identically_when_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let sw = sweep(tmp.path());
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let t0 = Instant::now();
    let o = batch(&sw, &whole);
    let wall = t0.elapsed();
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 of 4 jobs done"));

    // The batch leads its own process group; SIGKILL to the group takes its job
    // processes down with it.
    let mut child = myelin()
        .args([
            "batch",
            s(&sw),
            "--out",
            s(&killed),
            "--jobs",
            "2",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(random_between(wall / 5, wall * 4 / 5));
    let group = format!("-{}", child.id());
    let k = Command::new("kill")
        .args(["-9", "--", &group])
        .status()
        .unwrap();
    assert!(k.success(), "kill -9 {group} failed");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the batch was killed before it finished");

    let o = batch(&sw, &killed);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("4 of 4 jobs done"), "{table}");
    same_batches(&whole, &killed);

    // Run again: nothing left to do, no job process is started.
    let before = manifest(&killed);
    let o = batch(&sw, &killed);
    assert!(
        stderr(&o).contains("4 of 4 jobs already done"),
        "{}",
        stderr(&o)
    );
    let after = manifest(&killed);
    for (a, b) in before["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["jobs"].as_array().unwrap())
    {
        assert_eq!(a["attempts"], b["attempts"], "finished jobs are skipped");
    }
}

#[test]
fn bad_sweeps_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let sw = sweep(tmp.path());
    let text = std::fs::read_to_string(&sw).unwrap();
    let cases = [
        (
            "populations[\\\"E\\\"].params[\\\"tau_m\\\"]",
            "populations[\\\"X\\\"].params[\\\"tau_m\\\"]",
            "no population named \"X\"; known: E, I, D",
        ),
        ("inputs[0]", "inputs[9]", "input index 9 is out of range"),
        (
            "values: [60.0]",
            "values: [-5.0]",
            "duration -5 ms must be positive",
        ),
        ("[10.0, 14.0]", "[10.0, -1.0]", "job-0002"),
    ];
    for (from, to, expect) in cases {
        assert!(text.contains(from), "pattern {from} not in the sweep");
        let bad = tmp.path().join("bad.ron");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let o = run(&["batch", s(&bad), "--out", s(&tmp.path().join("out"))]);
        let e = stderr(&o);
        assert!(
            !o.status.success() && e.contains("bad.ron") && e.contains(expect),
            "{e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
    // `myelin check` validates a sweep and every job scene; `myelin run` points to batch.
    let o = run(&["check", s(&sw)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["run", s(&sw), "--out", s(&tmp.path().join("r"))]);
    assert!(
        stderr(&o).contains("is a sweep file; run it with `myelin batch"),
        "{}",
        stderr(&o)
    );
}
