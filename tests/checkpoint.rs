//! Checkpoint and restart (DESIGN.md): a run resumed from a checkpoint continues
//! bit-identically, with every neuron model and input kind of `tests/scenes/mixed.ron`
//! active across the checkpoint; damaged checkpoints are rejected clearly while the one
//! before them still resumes; h5py and h5dump read the documented layout; warm starts reuse
//! a checkpoint's connectivity and check its sizes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{myelin, run, same_recordings, scene, stderr};
use myelin::io::checkpoint::{checkpoint_file_name, list_checkpoints, read_checkpoint};

/// Runs `myelin ARGS`, asserting success.
fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "myelin {args:?} failed:\n{}",
        stderr(&o)
    );
    o
}

/// Runs `myelin ARGS`, asserting failure without a panic; returns standard error.
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let o = run(args);
    let e = stderr(&o);
    assert!(!o.status.success(), "myelin {args:?} must fail");
    assert!(!e.contains("panicked"), "no panic: {e}");
    (o.status.code(), e)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

/// Runs mixed.ron from the start into `out` with extra arguments.
fn run_mixed(out: &Path, extra: &[&str]) {
    let sc = scene("mixed.ron");
    let mut args = vec!["run", s(&sc), "--out", s(out), "--quiet", "--threads", "2"];
    args.extend_from_slice(extra);
    ok(&args);
}

/// Asserts that two run folders hold bit-identical recordings and the same spike counts.
fn same_outputs(a: &Path, b: &Path) {
    let da = same_recordings(a, b);
    let spikes = |d: &Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap();
        (v["populations"].clone(), v["duration_ms"].clone())
    };
    assert_eq!(spikes(a), spikes(b));
    for pop in ["E", "I", "D"] {
        assert!(
            !da.keys()
                .filter(|k| k.starts_with(&format!("/spikes/{pop}/times")))
                .all(|k| da[k].is_empty()),
            "population {pop} must spike for the comparison to mean something"
        );
    }
}

fn checkpoint(dir: &Path, step: u64) -> PathBuf {
    dir.join("checkpoints").join(checkpoint_file_name(step))
}

#[test]
fn resume_continues_bit_identically_with_every_model_and_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    run_mixed(&straight, &[]);

    // 0 -> 120 ms, checkpoints at 60 and 120 ms. At 120 ms the DC input (100..200 ms) is on,
    // the spike generator has emitted 2 of its 3 spikes (50, 50.1; 150 is still to come)
    // and the Poisson inputs run throughout.
    run_mixed(&split, &["--duration", "120", "--checkpoint-every", "60"]);
    let c = read_checkpoint(&checkpoint(&split, 1200)).unwrap();
    assert_eq!(c.step, 1200);
    let generator = c
        .inputs
        .iter()
        .find(|i| i.model == "spike_generator")
        .unwrap();
    assert_eq!(generator.cursor, Some(2));
    let models: Vec<&str> = c.populations.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(models, ["iaf_psc_exp", "iaf_psc_alpha", "iaf_psc_delta"]);

    // 120 -> 150 ms: the spike at 150 ms is emitted in the last step and is in flight (in
    // the ring buffers) at the checkpoint.
    ok(&[
        "resume",
        s(&split.join("checkpoints")),
        "--duration",
        "30",
        "--quiet",
        "--threads",
        "1",
    ]);
    let c = read_checkpoint(&checkpoint(&split, 1500)).unwrap();
    assert_eq!(
        c.inputs
            .iter()
            .find(|i| i.model == "spike_generator")
            .unwrap()
            .cursor,
        Some(3)
    );

    // 150 -> 300 ms: without --duration a finished run continues to the scene's end.
    let o = ok(&["resume", s(&split.join("checkpoints")), "--quiet"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("resumed        from the checkpoint at 150 ms")
    );
    same_outputs(&straight, &split);
}

#[test]
fn a_killed_run_resumes_to_the_same_recordings() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, killed) = (tmp.path().join("straight"), tmp.path().join("killed"));
    run_mixed(&straight, &[]);
    let sc = scene("mixed.ron");
    let mut child = myelin()
        .args([
            "run",
            s(&sc),
            "--out",
            s(&killed),
            "--quiet",
            "--threads",
            "1",
            "--checkpoint-every",
            "30",
        ])
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while list_checkpoints(&killed.join("checkpoints"))
        .unwrap()
        .is_empty()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(still_running, "the run must be killed before it ends");
    assert!(!killed.join("recordings.h5").exists());
    ok(&["resume", s(&killed.join("checkpoints")), "--quiet"]);
    same_outputs(&straight, &killed);
}

#[test]
fn truncated_and_bit_flipped_checkpoints_are_rejected_and_the_previous_one_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, out) = (tmp.path().join("straight"), tmp.path().join("out"));
    run_mixed(&straight, &["--duration", "100"]);
    run_mixed(&out, &["--duration", "100", "--checkpoint-every", "50"]);
    let (older, newer) = (checkpoint(&out, 500), checkpoint(&out, 1000));
    let good = std::fs::read(&newer).unwrap();

    // Truncated.
    std::fs::write(&newer, &good[..good.len() / 3]).unwrap();
    let (code, e) = fails(&["resume", s(&newer), "--quiet"]);
    assert_eq!(code, Some(3), "exit status 3: nothing could be resumed");
    assert!(
        e.contains("truncated or damaged") && e.contains(s(&newer)),
        "{e}"
    );
    assert!(
        e.contains("an earlier checkpoint is") && e.contains(s(&older)),
        "{e}"
    );

    // One bit flipped inside a projection's weights.
    let offset = hdf5::File::open(&older)
        .unwrap()
        .dataset("projections/0/blocks/1/weights")
        .unwrap()
        .offset()
        .unwrap() as usize;
    let mut flipped = good.clone();
    flipped[offset + 4 * 1000 + 2] ^= 0x20;
    std::fs::write(&newer, &flipped).unwrap();
    let (_, e) = fails(&["resume", s(&newer), "--quiet"]);
    assert!(
        e.contains("integrity check failed") && e.contains("/projections/0/blocks/1/weights"),
        "{e}"
    );

    // Not a checkpoint at all.
    let (_, e) = fails(&["resume", s(&straight.join("recordings.h5")), "--quiet"]);
    assert!(e.contains("not a Myelin checkpoint"), "{e}");

    // Given the folder, the newest usable checkpoint (the older one) is taken.
    let o = ok(&["resume", s(&out.join("checkpoints")), "--quiet"]);
    let warn = stderr(&o);
    assert!(
        warn.contains("skipped an unusable checkpoint") && warn.contains("integrity"),
        "{warn}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("from the checkpoint at 50 ms"));
    same_outputs(&straight, &out);
}

/// A Python interpreter that can import h5py and numpy.
fn python_with_h5py() -> Option<String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .map(String::from)
        .find(|py| {
            std::process::Command::new(py)
                .args(["-c", "import h5py, numpy"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The layout check of `docs/checkpoints.md`, in Python: every documented group, dataset
/// and attribute, and the content digest recomputed from the documented recipe.
const H5PY_CHECK: &str = r#"
import sys, hashlib, h5py, numpy as np
path, scene_file = sys.argv[1], sys.argv[2]
s = lambda v: v.decode() if isinstance(v, bytes) else str(v)
with h5py.File(path, "r") as f:
    a = f.attrs
    assert s(a["format"]) == "myelin-checkpoint" and int(a["version"]) == 2
    assert int(a["step"]) == 200 and abs(float(a["time_ms"]) - 20.0) < 1e-9
    assert float(a["dt"]) == 0.1 and int(a["seed"]) == 4242 and int(a["block_size"]) == 1024
    assert bytes(f["scene/source"][:]).decode() == open(scene_file).read()
    assert s(f["scene"].attrs["hash"]) == s(a["scene_hash"])
    assert int(f["run"].attrs["end_step"]) == 200 and int(f["rng"].attrs["next_step"]) == 200
    pops = {s(g.attrs["name"]): g for g in f["populations"].values()}
    assert sorted(pops) == ["D", "E", "I"], pops
    e = pops["E"]
    assert int(e.attrs["size"]) == 1600 and s(e.attrs["model"]) == "iaf_psc_exp"
    v = e["state/V_m"]
    assert v.dtype == np.float32 and v.shape == (1600,) and s(v.attrs["unit"]) == "mV"
    assert e["state/refractory"].dtype == np.uint32 and s(e["state/refractory"].attrs["kind"]) == "int"
    ring = e["ring"]
    assert ring.shape[0] == 2 and ring.shape[2] == 2 and ring.shape[3] == 1024
    assert ring.shape[1] == int(ring.attrs["slots"])
    assert "plasticity" in e
    total = 0
    for p in f["projections"].values():
        n_source = int(p.attrs["n_source"])
        for b in p["blocks"].values():
            assert b["row_ptr"].dtype == np.uint32 and b["row_ptr"].shape == (n_source + 1,)
            assert b["targets"].dtype == np.uint16 and b["delays"].dtype == np.uint16
            assert b["weights"].dtype == np.float32
            assert b["row_ptr"][-1] == b["targets"].shape[0] == b["weights"].shape[0]
            total += b["targets"].shape[0]
        assert "plasticity" in p
    assert total == sum(int(p.attrs["n_synapses"]) for p in f["projections"].values()) > 0
    gen = [g for g in f["inputs"].values() if s(g.attrs["model"]) == "spike_generator"][0]
    assert int(gen.attrs["cursor"]) == 0
    assert sorted(f["recorders"]) == ["D", "E", "I", "I_V_m"]
    assert s(f["recorders/E"].attrs["kind"]) == "spikes"

    # The content digest, recomputed as docs/checkpoints.md describes.
    lp = lambda t: f"{len(t.encode())}:{t}"
    names = {"uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64", "float32": "f32", "float64": "f64"}
    def attrs(obj):
        out = ""
        for k in sorted(obj.attrs):
            if k in ("sha256", "content_sha256"):
                continue
            val, dt = obj.attrs[k], obj.attrs.get_id(k).dtype
            if dt.kind in "SU" or h5py.check_string_dtype(dt):
                out += f"A {lp(k)} str {lp(s(val))}\n"
            elif dt.kind == "f":
                out += f"A {lp(k)} f64 {np.float64(val).view(np.uint64):016x}\n"
            else:
                out += f"A {lp(k)} u64 {int(val)}\n"
        return out
    items = [("/", f)]
    f.visititems(lambda n, o: items.append(("/" + n, o)))
    text = "myelin-checkpoint-digest 1\n"
    for name, obj in sorted(items, key=lambda t: t[0].encode()):
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            digest = hashlib.sha256(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()).hexdigest()
            assert digest == s(obj.attrs["sha256"]), name
            shape = ",".join(str(d) for d in obj.shape)
            text += f"D {lp(name)} {names[data.dtype.name]} [{shape}] {digest}\n" + attrs(obj)
        else:
            text += f"G {lp(name)}\n" + attrs(obj)
    assert hashlib.sha256(text.encode()).hexdigest() == s(a["content_sha256"])
print("h5py ok")
"#;

#[test]
fn h5py_h5dump_and_inspect_read_the_documented_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_mixed(&out, &["--duration", "20", "--checkpoint-every", "20"]);
    let file = checkpoint(&out, 200);

    let o = ok(&["inspect", s(&file)]);
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "Myelin checkpoint",
        "integrity      ok",
        "step 200 = 20 ms",
        "iaf_psc_alpha",
        "E->I",
        "/projections/0/blocks/0/weights  float32",
        "spike_generator -> D, next spike 0",
    ] {
        assert!(text.contains(needle), "inspect lacks {needle:?}:\n{text}");
    }
    let o = ok(&["inspect", s(&out.join("recordings.h5"))]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Myelin recording, complete") && text.contains("/spikes/E/times  float64"),
        "{text}"
    );

    match std::process::Command::new("h5dump")
        .args(["-A", s(&file)])
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "h5dump failed: {}", stderr(&o));
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.contains("myelin-checkpoint") && text.contains("\"ring\""),
                "{text}"
            );
        }
        Err(_) => println!("note: no h5dump; skipping the h5dump check"),
    }
    let Some(py) = python_with_h5py() else {
        println!("note: no python3 with h5py and numpy; skipping the h5py check");
        return;
    };
    let o = std::process::Command::new(py)
        .args(["-c", H5PY_CHECK, s(&file), s(&scene("mixed.ron"))])
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("h5py ok"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn warm_start_reuses_a_checkpoints_connectivity_and_checks_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    run_mixed(&first, &["--duration", "10", "--checkpoint-every", "10"]);
    let source = checkpoint(&first, 100);
    let original = read_checkpoint(&source).unwrap();

    // Every projection warm-started (its own name in the checkpoint), under another seed:
    // drawn, its connectivity would differ.
    let text = std::fs::read_to_string(scene("mixed.ron")).unwrap();
    let warm = text.replace(
        "Projection(source:",
        "Projection(warm_start: WarmStart(checkpoint: \"first/checkpoints/checkpoint-000000000100.h5\"), source:",
    );
    assert_eq!(warm.matches("warm_start").count(), 6);
    let warm_scene = tmp.path().join("warm.ron");
    std::fs::write(&warm_scene, &warm).unwrap();
    let second = tmp.path().join("second");
    ok(&[
        "run",
        s(&warm_scene),
        "--out",
        s(&second),
        "--quiet",
        "--seed",
        "99",
        "--duration",
        "10",
        "--checkpoint-every",
        "10",
    ]);
    let reused = read_checkpoint(&checkpoint(&second, 100)).unwrap();
    assert_eq!(reused.seed, 99);
    for (a, b) in original.projections.iter().zip(&reused.projections) {
        assert!(
            a.connectivity.blocks().eq(b.connectivity.blocks()),
            "projection {}",
            a.name
        );
    }

    // The same warm start into a scene whose E has another size.
    let bad = warm.replace("size: 1600", "size: 1500");
    let bad_scene = tmp.path().join("bad.ron");
    std::fs::write(&bad_scene, bad).unwrap();
    let (_, e) = fails(&[
        "run",
        s(&bad_scene),
        "--out",
        s(&tmp.path().join("bad")),
        "--quiet",
    ]);
    for needle in [
        "bad.ron",
        "projections[0] (\"E->E\")",
        "checkpoint-000000000100.h5",
        "1600 -> 1600",
        "1500 -> 1500",
    ] {
        assert!(e.contains(needle), "{e} lacks {needle:?}");
    }
    // `myelin check` reads the warm starts too.
    let (_, e) = fails(&["check", s(&bad_scene)]);
    assert!(e.contains("1500 -> 1500"), "{e}");
    ok(&["check", s(&warm_scene)]);
}
