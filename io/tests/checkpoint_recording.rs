//! Continuing a recording after a checkpoint: the writer reports its positions, and a
//! resumed writer cuts every recorder back to them before appending.

use bevy_ecs::world::World;
use myelin_components::{Population, SpikeRecorder, StateRecorder};
use myelin_engine::SimClock;
use myelin_io::{RecorderPositions, RecordingWriter, RunMeta, partial_path};

const DT: f64 = 0.1;

fn meta() -> RunMeta {
    RunMeta {
        scene_name: "resume test".into(),
        scene_hash: "ef".repeat(32),
        seed: 3,
        dt: DT,
        myelin_version: "test".into(),
    }
}

/// A world with one spike and one state recorder on a population of 4 neurons.
fn world() -> World {
    let mut w = World::new();
    w.insert_resource(SimClock { dt: DT, step: 0 });
    let p = w
        .spawn(Population {
            name: "P".into(),
            size: 4,
            model: "m".into(),
            first_id: 0,
        })
        .id();
    w.spawn(SpikeRecorder {
        label: "P".into(),
        population: p,
        mask: None,
        steps: Vec::new(),
        senders: Vec::new(),
        recorded: 0,
    });
    w.spawn(StateRecorder {
        label: "P_V_m".into(),
        population: p,
        variable: "V_m".into(),
        unit: "mV".into(),
        real: true,
        column: 0,
        offset: 0.0,
        neurons: vec![1, 3],
        interval: 1,
        steps: Vec::new(),
        values: Vec::new(),
    });
    w
}

/// Buffers spikes at `steps` (sender = step % 4) and one sample per step.
fn record(w: &mut World, steps: &[u64]) {
    let mut q = w.query::<&mut SpikeRecorder>();
    for mut r in q.iter_mut(w) {
        r.steps.extend_from_slice(steps);
        r.senders.extend(steps.iter().map(|s| (s % 4) as u32));
        r.recorded += steps.len() as u64;
    }
    let mut q = w.query::<&mut StateRecorder>();
    for mut r in q.iter_mut(w) {
        for &s in steps {
            r.steps.push(s);
            r.values.extend([s as f32, -(s as f32)]);
        }
    }
}

fn read(path: &std::path::Path) -> (Vec<f64>, Vec<u32>, Vec<f32>) {
    let f = hdf5::File::open(path).unwrap();
    (
        f.dataset("spikes/P/times").unwrap().read_raw().unwrap(),
        f.dataset("spikes/P/senders").unwrap().read_raw().unwrap(),
        f.dataset("state/P_V_m/values").unwrap().read_raw().unwrap(),
    )
}

#[test]
fn a_resumed_recording_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    // Uninterrupted: steps 0..6 in two flushes.
    let straight = dir.path().join("a/recordings.h5");
    std::fs::create_dir_all(straight.parent().unwrap()).unwrap();
    let mut w = world();
    let mut rec = RecordingWriter::create(&straight, &meta()).unwrap();
    record(&mut w, &[0, 1, 2]);
    rec.flush(&mut w).unwrap();
    record(&mut w, &[3, 4, 5]);
    rec.flush(&mut w).unwrap();
    rec.finish().unwrap();

    // Interrupted: a checkpoint after step 2, then data the checkpoint does not cover.
    let path = dir.path().join("b/recordings.h5");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = world();
    let mut rec = RecordingWriter::create(&path, &meta()).unwrap();
    record(&mut w, &[0, 1, 2]);
    rec.flush(&mut w).unwrap();
    let at_checkpoint = rec.positions();
    assert_eq!(
        at_checkpoint,
        RecorderPositions([("P".to_string(), 3), ("P_V_m".to_string(), 3)].into())
    );
    record(&mut w, &[3, 4]);
    rec.flush(&mut w).unwrap();
    drop(rec); // the process dies: only the .partial file is left
    assert!(partial_path(&path).exists() && !path.exists());

    let mut w = world();
    let mut rec = RecordingWriter::resume(&path, &meta(), &at_checkpoint, &mut w).unwrap();
    assert_eq!(rec.positions(), at_checkpoint);
    record(&mut w, &[3, 4, 5]);
    rec.flush(&mut w).unwrap();
    rec.finish().unwrap();
    assert_eq!(read(&path), read(&straight));

    // A finished recording can be continued too (it is renamed back to .partial).
    let mut w = world();
    let rec = RecordingWriter::resume(&path, &meta(), &at_checkpoint, &mut w).unwrap();
    assert!(partial_path(&path).exists() && !path.exists());
    rec.finish().unwrap();
    assert_eq!(
        read(&path).0.len(),
        3,
        "cut back to the checkpoint's 3 spikes"
    );
}

#[test]
fn a_recording_of_another_run_or_too_short_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recordings.h5");
    let mut w = world();
    let mut rec = RecordingWriter::create(&path, &meta()).unwrap();
    record(&mut w, &[0, 1]);
    rec.flush(&mut w).unwrap();
    rec.finish().unwrap();

    let mut other = meta();
    other.seed = 4;
    let err = RecordingWriter::resume(&path, &other, &RecorderPositions::default(), &mut world())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("belongs to another run") && err.contains("seed 3"),
        "{err}"
    );

    let too_far = RecorderPositions([("P".to_string(), 9)].into());
    let err = RecordingWriter::resume(&path, &meta(), &too_far, &mut world())
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds 2 rows, fewer than the 9"), "{err}");

    let missing = dir.path().join("none/recordings.h5");
    let err = RecordingWriter::resume(&missing, &meta(), &too_far, &mut world())
        .unwrap_err()
        .to_string();
    assert!(err.contains("recording is missing"), "{err}");
}
