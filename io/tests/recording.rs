//! The HDF5 recording writer: buffers drained over several flushes, read back with the
//! hdf5 crate and with h5py.

use std::path::Path;
use std::process::Command;

use bevy_ecs::entity::Entity;
use bevy_ecs::world::World;
use hdf5::types::VarLenUnicode;
use myelin_components::{Population, SpikeRecorder, StateRecorder};
use myelin_engine::SimClock;
use myelin_io::{IoError, RecordingWriter, RunMeta};

const DT: f64 = 0.1;

fn meta() -> RunMeta {
    RunMeta {
        scene_name: "test scene".into(),
        scene_hash: "ab".repeat(32),
        seed: 42,
        dt: DT,
        myelin_version: "0.1.0".into(),
    }
}

struct Ents {
    spikes_e: Entity,
    spikes_i: Entity,
    state_i: Entity,
}

fn sample_world() -> (World, Ents) {
    let mut world = World::new();
    world.insert_resource(SimClock { dt: DT, step: 0 });
    let e = world
        .spawn(Population {
            name: "E".into(),
            size: 10,
            model: "leaky".into(),
            first_id: 0,
        })
        .id();
    let i = world
        .spawn(Population {
            name: "I".into(),
            size: 4,
            model: "leaky".into(),
            first_id: 10,
        })
        .id();
    let spikes_e = world
        .spawn(SpikeRecorder {
            label: "E".into(),
            population: e,
            mask: None,
            steps: vec![0, 3, 3],
            senders: vec![2, 1, 7],
            recorded: 3,
        })
        .id();
    let spikes_i = world
        .spawn(SpikeRecorder {
            label: "I_sub".into(),
            population: i,
            mask: Some(vec![true, false, true, false]),
            steps: vec![],
            senders: vec![],
            recorded: 0,
        })
        .id();
    let state_i = world
        .spawn(StateRecorder {
            label: "I_V_m".into(),
            population: i,
            variable: "V_m".into(),
            unit: "mV".into(),
            real: true,
            column: 0,
            offset: -70.0,
            neurons: vec![0, 2],
            interval: 5,
            steps: vec![4, 9],
            values: vec![1.0, 2.0, 3.0, 4.0],
        })
        .id();
    (
        world,
        Ents {
            spikes_e,
            spikes_i,
            state_i,
        },
    )
}

fn t(step: u64) -> f64 {
    (step + 1) as f64 * DT
}

fn str_attr(loc: &hdf5::Location, name: &str) -> String {
    loc.attr(name)
        .unwrap()
        .read_scalar::<VarLenUnicode>()
        .unwrap()
        .as_str()
        .to_string()
}

fn u64_attr(loc: &hdf5::Location, name: &str) -> u64 {
    loc.attr(name).unwrap().read_scalar::<u64>().unwrap()
}

#[test]
fn two_flushes_then_finish_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let final_path = dir.path().join("recordings.h5");
    let partial = dir.path().join("recordings.h5.partial");
    // An older recording stays in place until the new one is finished.
    std::fs::write(&final_path, b"old recording").unwrap();

    let (mut world, ents) = sample_world();
    let mut w = RecordingWriter::create(&final_path, &meta()).unwrap();
    assert_eq!(w.partial_path(), partial.as_path());
    assert!(partial.exists());
    w.flush(&mut world).unwrap();

    // The buffers were drained.
    let r = world.get::<SpikeRecorder>(ents.spikes_e).unwrap();
    assert!(r.steps.is_empty() && r.senders.is_empty());
    assert_eq!(r.recorded, 3, "the running count is left alone");
    let s = world.get::<StateRecorder>(ents.state_i).unwrap();
    assert!(s.steps.is_empty() && s.values.is_empty());
    assert_eq!(
        s.neurons,
        vec![0, 2],
        "the recorder's configuration is left alone"
    );

    // More data, then a second flush.
    {
        let mut r = world.get_mut::<SpikeRecorder>(ents.spikes_e).unwrap();
        r.steps.extend([10, 12]);
        r.senders.extend([5, 0]);
    }
    {
        let mut s = world.get_mut::<StateRecorder>(ents.state_i).unwrap();
        s.steps.push(14);
        s.values.extend([5.0, 6.5]);
    }
    w.flush(&mut world).unwrap();
    // A flush with nothing new changes nothing.
    w.flush(&mut world).unwrap();
    assert_eq!(std::fs::read(&final_path).unwrap(), b"old recording");
    w.finish().unwrap();
    assert!(!partial.exists());

    let f = hdf5::File::open(&final_path).unwrap();
    assert_eq!(str_attr(&f, "scene_name"), "test scene");
    assert_eq!(str_attr(&f, "scene_hash"), "ab".repeat(32));
    assert_eq!(str_attr(&f, "myelin_version"), "0.1.0");
    assert_eq!(u64_attr(&f, "seed"), 42);
    assert_eq!(f.attr("dt").unwrap().read_scalar::<f64>().unwrap(), DT);

    let g = f.group("spikes/E").unwrap();
    assert_eq!(str_attr(&g, "population"), "E");
    assert_eq!(u64_attr(&g, "n_neurons"), 10);
    assert_eq!(u64_attr(&g, "first_id"), 0);
    assert_eq!(u64_attr(&g, "recorded_neurons"), 10);
    let times = g.dataset("times").unwrap();
    assert_eq!(
        times.read_raw::<f64>().unwrap(),
        vec![t(0), t(3), t(3), t(10), t(12)]
    );
    assert_eq!(str_attr(&times, "unit"), "ms");
    assert!(times.is_chunked() && times.is_resizable());
    assert_eq!(
        g.dataset("senders").unwrap().read_raw::<u32>().unwrap(),
        vec![2, 1, 7, 5, 0]
    );

    // A recorder without events still has its group and empty datasets.
    let g = f.group("spikes/I_sub").unwrap();
    assert_eq!(str_attr(&g, "population"), "I");
    assert_eq!(u64_attr(&g, "n_neurons"), 4);
    assert_eq!(u64_attr(&g, "first_id"), 10);
    assert_eq!(u64_attr(&g, "recorded_neurons"), 2);
    assert_eq!(g.dataset("times").unwrap().shape(), vec![0]);
    assert_eq!(g.dataset("senders").unwrap().shape(), vec![0]);

    let g = f.group("state/I_V_m").unwrap();
    assert_eq!(str_attr(&g, "population"), "I");
    assert_eq!(str_attr(&g, "variable"), "V_m");
    assert_eq!(str_attr(&g, "unit"), "mV");
    assert!((g.attr("interval_ms").unwrap().read_scalar::<f64>().unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(
        g.dataset("times").unwrap().read_raw::<f64>().unwrap(),
        vec![t(4), t(9), t(14)]
    );
    assert_eq!(
        g.dataset("neurons").unwrap().read_raw::<u32>().unwrap(),
        vec![0, 2]
    );
    let values = g.dataset("values").unwrap();
    assert_eq!(values.shape(), vec![3, 2]);
    assert_eq!(
        values.read_raw::<f32>().unwrap(),
        vec![-69.0, -68.0, -67.0, -66.0, -65.0, -63.5]
    );
    assert_eq!(str_attr(&values, "unit"), "mV");
    drop(f);

    check_with_h5py(&final_path);
}

/// A Python interpreter that can import h5py: `$MYELIN_PYTHON`, else `python3` on the
/// path, else the system's `/usr/bin/python3` (a pyenv shim may shadow it).
fn python_with_h5py() -> Option<String> {
    let candidates = std::env::var("MYELIN_PYTHON")
        .into_iter()
        .chain(["python3".to_string(), "/usr/bin/python3".to_string()]);
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import h5py, numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Reads the file with h5py (skipped, with a note, where python3 or h5py is missing).
fn check_with_h5py(path: &Path) {
    let Some(python) = python_with_h5py() else {
        println!("note: no python3 with h5py and numpy found; skipping the h5py check");
        return;
    };
    let script = r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["scene_name"] == "test scene", f.attrs["scene_name"]
    assert int(f.attrs["seed"]) == 42
    assert abs(float(f.attrs["dt"]) - 0.1) < 1e-12
    e = f["spikes/E"]
    assert e.attrs["population"] == "E"
    assert int(e.attrs["n_neurons"]) == 10 and int(e.attrs["recorded_neurons"]) == 10
    assert e["times"].attrs["unit"] == "ms"
    np.testing.assert_allclose(e["times"][:], [0.1, 0.4, 0.4, 1.1, 1.3])
    assert list(e["senders"][:]) == [2, 1, 7, 5, 0]
    assert e["senders"].dtype == np.uint32
    assert f["spikes/I_sub/times"].shape == (0,)
    s = f["state/I_V_m"]
    assert s.attrs["variable"] == "V_m" and s.attrs["unit"] == "mV"
    assert s["values"].dtype == np.float32 and s["values"].shape == (3, 2)
    np.testing.assert_allclose(s["values"][:], [[-69, -68], [-67, -66], [-65, -63.5]])
    np.testing.assert_allclose(s["times"][:], [0.5, 1.0, 1.5])
    assert list(s["neurons"][:]) == [0, 2]
print("h5py ok")
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "h5py could not read the file:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("h5py ok"));
}

#[test]
fn an_unfinished_recording_stays_partial() {
    let dir = tempfile::tempdir().unwrap();
    let final_path = dir.path().join("out.h5");
    let (mut world, _) = sample_world();
    let mut w = RecordingWriter::create(&final_path, &meta()).unwrap();
    w.flush(&mut world).unwrap();
    drop(w);
    assert!(!final_path.exists());
    let f = hdf5::File::open(dir.path().join("out.h5.partial")).unwrap();
    assert_eq!(
        f.group("spikes/E")
            .unwrap()
            .dataset("senders")
            .unwrap()
            .read_raw::<u32>()
            .unwrap(),
        vec![2, 1, 7]
    );
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();

    let missing_dir = dir.path().join("no/such/dir/out.h5");
    let err = RecordingWriter::create(&missing_dir, &meta()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, IoError::Hdf5 { .. }), "{err:?}");
    assert!(
        msg.contains("no/such/dir/out.h5.partial") && msg.contains("cannot create"),
        "{msg}"
    );

    // No clock.
    let path = dir.path().join("a.h5");
    let (mut world, _) = sample_world();
    world.remove_resource::<SimClock>();
    let mut w = RecordingWriter::create(&path, &meta()).unwrap();
    let msg = w.flush(&mut world).unwrap_err().to_string();
    assert!(
        msg.contains("a.h5.partial") && msg.contains("SimClock"),
        "{msg}"
    );

    // A recorder of something that is not a population.
    let (mut world, ents) = sample_world();
    let nothing = world.spawn_empty().id();
    world
        .get_mut::<SpikeRecorder>(ents.spikes_i)
        .unwrap()
        .population = nothing;
    let mut w = RecordingWriter::create(&dir.path().join("b.h5"), &meta()).unwrap();
    let msg = w.flush(&mut world).unwrap_err().to_string();
    assert!(
        msg.contains("b.h5.partial")
            && msg.contains("\"I_sub\"")
            && msg.contains("not a population"),
        "{msg}"
    );

    // Two recorders with one label.
    let (mut world, ents) = sample_world();
    world.get_mut::<SpikeRecorder>(ents.spikes_i).unwrap().label = "E".into();
    let mut w = RecordingWriter::create(&dir.path().join("c.h5"), &meta()).unwrap();
    let msg = w.flush(&mut world).unwrap_err().to_string();
    assert!(
        msg.contains("c.h5.partial") && msg.contains("share the label \"E\""),
        "{msg}"
    );

    // A label that cannot name a group.
    let (mut world, ents) = sample_world();
    world.get_mut::<SpikeRecorder>(ents.spikes_i).unwrap().label = "a/b".into();
    let mut w = RecordingWriter::create(&dir.path().join("d.h5"), &meta()).unwrap();
    let msg = w.flush(&mut world).unwrap_err().to_string();
    assert!(msg.contains("\"a/b\""), "{msg}");

    // Inconsistent state buffers.
    let (mut world, ents) = sample_world();
    world
        .get_mut::<StateRecorder>(ents.state_i)
        .unwrap()
        .values
        .pop();
    let mut w = RecordingWriter::create(&dir.path().join("e.h5"), &meta()).unwrap();
    let msg = w.flush(&mut world).unwrap_err().to_string();
    assert!(
        msg.contains("e.h5.partial") && msg.contains("\"I_V_m\"") && msg.contains("3 values"),
        "{msg}"
    );
}
