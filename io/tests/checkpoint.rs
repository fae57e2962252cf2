//! Checkpoint files: round trip of every array and attribute, restore into a world, atomic
//! writes, pruning, partial reads for warm starts, and clear errors for every kind of bad
//! file (missing, empty, not HDF5, truncated, bit-flipped, foreign, wrong version).

use std::path::{Path, PathBuf};

use bevy_ecs::entity::Entity;
use bevy_ecs::world::World;
use myelin_components::{
    Connectivity, DcInput, NeuronBlockMut, NeuronState, PoissonInput, Population, Projection,
    SpikeGeneratorInput, SpikeRecorder, Spikes, StableId, StateRecorder, Synapse, SynapseBlock,
    SynapticInput,
};
use myelin_engine::{
    ModelRegistry, NeuronEntry, NeuronModel, ParamIssue, ParamSpec, Params, PopulationIndex,
    RunSeed, SimClock, VarSpec,
};
use myelin_io::checkpoint::{
    CheckpointError, RunInfo, checkpoint_file_name, list_checkpoints, prune_checkpoints,
    read_checkpoint, read_projection, write_checkpoint,
};
use myelin_io::{RecorderPositions, RecordingWriter, RunMeta};

const DT: f64 = 0.1;

/// A model with one real and one integer variable, for building worlds by hand.
struct Leaky;

impl NeuronModel for Leaky {
    const NAME: &'static str = "leaky";
    const PARAMETERS: &'static [ParamSpec] = &[];
    const REAL_STATE: &'static [VarSpec] = &[VarSpec {
        name: "V_m",
        unit: "mV",
        doc: "potential",
    }];
    const INT_STATE: &'static [VarSpec] = &[VarSpec {
        name: "refractory",
        unit: "steps",
        doc: "refractory steps",
    }];
    fn new(_: &Params, _: f64) -> Result<Self, ParamIssue> {
        Ok(Self)
    }
    fn initial(&self, _: usize) -> f64 {
        0.0
    }
    fn update(
        &self,
        _: &mut NeuronBlockMut<'_>,
        _: &[f32],
        _: &[f32],
        _: &[f32],
        _: &mut Vec<u32>,
    ) {
    }
}

fn run_info() -> RunInfo {
    RunInfo {
        scene_name: "hand-made".into(),
        scene_file: "hand.ron".into(),
        scene_source: "Scene(/* not parsed here */)\n".into(),
        scene_hash: "cd".repeat(32),
        end_step: 1000,
        out_dir: "/tmp/out".into(),
        checkpoint_every_steps: 250,
        checkpoint_dir: "/tmp/out/checkpoints".into(),
        keep: 2,
        myelin_version: "test".into(),
    }
}

fn block(n_source: usize, rows: &[(u32, u16, f32, u16)]) -> SynapseBlock {
    let mut row_ptr = vec![0u32; n_source + 1];
    for &(s, ..) in rows {
        row_ptr[s as usize + 1] += 1;
    }
    for i in 0..n_source {
        row_ptr[i + 1] += row_ptr[i];
    }
    SynapseBlock::new(
        row_ptr,
        rows.iter()
            .map(|&(_, target, weight, delay)| Synapse {
                target,
                delay,
                weight,
            })
            .collect(),
    )
}

/// A world of two populations (`E`: 1500 neurons in two blocks, `I`: 10), one projection,
/// three inputs and two recorders, at step 250. With `fill`, every state is non-trivial;
/// without, it is as just built.
fn world(fill: bool) -> World {
    let mut w = World::new();
    w.insert_resource(SimClock { dt: DT, step: 0 });
    w.insert_resource(RunSeed(7));
    let mut reg = ModelRegistry::default();
    reg.neurons.insert("leaky", NeuronEntry::of::<Leaky>());
    w.insert_resource(reg);
    let mut order = Vec::new();
    for (k, (name, size, first)) in [("E", 1500usize, 0u64), ("I", 10, 1500)]
        .into_iter()
        .enumerate()
    {
        let mut state = NeuronState::zeros(size, 1, 1);
        let mut ring = SynapticInput::new(size, 1024, 3);
        let mut spikes = Spikes::new(size.div_ceil(1024));
        if fill {
            state.real[0] = (0..size).map(|i| i as f32 * 0.25 - 70.0).collect();
            state.int[0] = (0..size).map(|i| (i % 3) as u32).collect();
            let values: Vec<f32> = (0..ring.ring_len())
                .map(|i| (i % 17) as f32 * 0.5)
                .collect();
            ring.restore(&values);
            spikes.total = 1234 + k as u64;
            spikes.current = vec![1, 4];
        }
        let e = w
            .spawn((
                Population {
                    name: name.into(),
                    size,
                    model: "leaky".into(),
                    first_id: first,
                },
                StableId(k as u32),
                state,
                ring,
                spikes,
            ))
            .id();
        order.push(e);
    }
    let (e, i) = (order[0], order[1]);
    w.insert_resource(PopulationIndex {
        by_name: [("E".to_string(), e), ("I".to_string(), i)].into(),
        order,
    });
    // Stored source after source, as the engine stores static projections: the
    // checkpoint holds the same block datasets as from the block layout.
    let mut conn = Connectivity::new(
        vec![block(
            1500,
            &[
                (0, 3, 0.5, 2),
                (7, 9, -1.25, 3),
                (7, 0, 2.0, 1),
                (1499, 5, 0.75, 2),
            ],
        )],
        1500,
        3,
    );
    conn.store_by_source().expect("fits");
    w.spawn((
        Projection {
            name: "E->I".into(),
            source: e,
            target: i,
        },
        StableId(0),
        conn,
    ));
    w.spawn((
        StableId(0),
        SpikeGeneratorInput {
            target: i,
            neurons: None,
            steps: vec![10, 20, 300],
            weight: 1.0,
            delay: 1,
            cursor: if fill { 2 } else { 0 },
        },
    ));
    w.spawn((
        StableId(1),
        PoissonInput {
            target: e,
            neurons: None,
            lambda: 0.5,
            thresholds: vec![u32::MAX / 2],
            weight: 0.1,
            delay: 1,
            start: 0,
            stop: u64::MAX,
        },
    ));
    w.spawn((
        StableId(2),
        DcInput {
            target: i,
            neurons: Some(vec![1]),
            amplitude: 5.0,
            start: 0,
            stop: 100,
        },
    ));
    w.spawn(SpikeRecorder {
        label: "E".into(),
        population: e,
        mask: None,
        steps: Vec::new(),
        senders: Vec::new(),
        recorded: if fill { 42 } else { 0 },
    });
    w.spawn(StateRecorder {
        label: "I_V_m".into(),
        population: i,
        variable: "V_m".into(),
        unit: "mV".into(),
        real: true,
        column: 0,
        offset: 0.0,
        neurons: vec![0, 1],
        interval: 10,
        steps: Vec::new(),
        values: Vec::new(),
    });
    if fill {
        w.resource_mut::<SimClock>().step = 250;
    }
    w
}

fn positions() -> RecorderPositions {
    RecorderPositions([("E".to_string(), 42), ("I_V_m".to_string(), 25)].into())
}

/// Writes the checkpoint of a filled world into `dir` and returns its path.
fn write_one(dir: &Path) -> PathBuf {
    let path = dir.join(checkpoint_file_name(250));
    let stats = write_checkpoint(&path, &world(true), &run_info(), &positions()).unwrap();
    assert_eq!(stats.path, path);
    assert!(stats.bytes > 0 && stats.datasets > 10);
    path
}

fn population(w: &World, name: &str) -> Entity {
    w.resource::<PopulationIndex>().by_name[name]
}

#[test]
fn round_trip_keeps_every_array_and_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_one(dir.path());
    let c = read_checkpoint(&path).unwrap();
    assert_eq!(c.run, run_info());
    assert_eq!((c.step, c.dt, c.seed, c.block_size), (250, DT, 7, 1024));
    assert_eq!(c.populations.len(), 2);
    let e = &c.populations[0];
    assert_eq!((e.name.as_str(), e.size, e.first_id), ("E", 1500, 0));
    assert_eq!(e.real[0].name, "V_m");
    assert_eq!(e.real[0].values[3], 3.0 * 0.25 - 70.0);
    assert_eq!(e.int[0].values[5], 2);
    assert_eq!(e.ring.len(), 2 * 4 * 2 * 1024);
    assert_eq!(e.ring_slots, 4);
    assert_eq!(
        (e.spikes_total, e.spikes_current.clone()),
        (1234, vec![1, 4])
    );
    let p = &c.projections[0];
    assert_eq!(
        (p.name.as_str(), p.source.as_str(), p.target.as_str()),
        ("E->I", "E", "I")
    );
    let mut full = world(true);
    let stored = full.query::<&Connectivity>().single(&full).unwrap().clone();
    assert!(p.connectivity.blocks().eq(stored.blocks()));
    assert!(stored.by_source().is_some() && p.connectivity.by_source().is_none());
    assert_eq!(p.connectivity.max_delay, 3);
    assert_eq!(c.inputs.len(), 3);
    assert_eq!(c.inputs[0].model, "spike_generator");
    assert_eq!(c.inputs[0].cursor, Some(2));
    assert_eq!(c.inputs[1].cursor, None);
    assert_eq!(c.positions(), positions());
    let spikes = c.recorders.iter().find(|r| r.label == "E").unwrap();
    assert_eq!(
        (spikes.kind.as_str(), spikes.recorded, spikes.rows),
        ("spikes", 42, 42)
    );
    assert!(!c.digest.is_empty());
}

#[test]
fn restore_puts_the_state_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_one(dir.path());
    let mut c = read_checkpoint(&path).unwrap();
    let _ = c.take_connectivity();
    let mut w = world(false);
    c.restore(&mut w).unwrap();
    let full = world(true);
    assert_eq!(w.resource::<SimClock>().step, 250);
    for name in ["E", "I"] {
        let (a, b) = (population(&w, name), population(&full, name));
        assert_eq!(
            w.get::<NeuronState>(a).unwrap().real,
            full.get::<NeuronState>(b).unwrap().real
        );
        assert_eq!(
            w.get::<NeuronState>(a).unwrap().int,
            full.get::<NeuronState>(b).unwrap().int
        );
        assert_eq!(
            w.get::<SynapticInput>(a).unwrap().folded(),
            full.get::<SynapticInput>(b).unwrap().folded()
        );
        assert_eq!(
            w.get::<Spikes>(a).unwrap().total,
            full.get::<Spikes>(b).unwrap().total
        );
    }
    let g = w.query::<&SpikeGeneratorInput>().single(&w).unwrap();
    assert_eq!(g.cursor, 2);
    let r = w.query::<&SpikeRecorder>().single(&w).unwrap();
    assert_eq!(r.recorded, 42);
}

#[test]
fn restore_into_a_different_world_names_both_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_one(dir.path());
    let c = read_checkpoint(&path).unwrap();
    let mut w = world(false);
    let e = population(&w, "E");
    w.get_mut::<Population>(e).unwrap().size = 1400;
    let err = c.restore(&mut w).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, CheckpointError::Mismatch { .. })
            && msg.contains("1500 neurons")
            && msg.contains("1400 neurons")
            && msg.contains(&path.display().to_string()),
        "{msg}"
    );
}

#[test]
fn a_warm_start_reads_one_projection_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_one(dir.path());
    let p = read_projection(&path, "E->I").unwrap();
    assert_eq!(
        (p.n_source, p.n_target, p.dt, p.block_size),
        (1500, 10, DT, 1024)
    );
    assert_eq!(p.connectivity.len(), 4);
    let err = read_projection(&path, "I->E").unwrap_err().to_string();
    assert!(
        err.contains("no projection named \"I->E\"") && err.contains("\"E->I\""),
        "{err}"
    );
}

/// Asserts that reading `path` fails with an error containing every needle.
fn rejected(path: &Path, needles: &[&str]) -> CheckpointError {
    let err = read_checkpoint(path).expect_err("the file must be rejected");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "{msg:?} lacks {n:?}");
    }
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    err
}

#[test]
fn bad_files_are_rejected_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_one(dir.path());
    let bytes = std::fs::read(&good).unwrap();

    let missing = dir.path().join("missing.h5");
    rejected(&missing, &["cannot open the file"]);

    let empty = dir.path().join("empty.h5");
    std::fs::write(&empty, b"").unwrap();
    assert!(rejected(&empty, &["not an HDF5 file", "0 bytes"]).is_unusable_file());

    let text = dir.path().join("text.h5");
    std::fs::write(&text, b"this is not HDF5 at all").unwrap();
    rejected(&text, &["not an HDF5 file", "signature"]);

    let truncated = dir.path().join("truncated.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(rejected(&truncated, &["truncated or damaged"]).is_unusable_file());

    // A bit flip inside the weights of the projection.
    let offset = hdf5::File::open(&good)
        .unwrap()
        .dataset("projections/0/blocks/0/weights")
        .unwrap()
        .offset()
        .expect("contiguous dataset");
    let mut flipped = bytes.clone();
    flipped[offset as usize + 5] ^= 0x04;
    let flip = dir.path().join("flipped.h5");
    std::fs::write(&flip, &flipped).unwrap();
    rejected(
        &flip,
        &[
            "integrity check failed",
            "/projections/0/blocks/0/weights",
            "SHA-256",
        ],
    );

    // A changed attribute (the step) fails the content digest.
    let step = dir.path().join("step.h5");
    std::fs::copy(&good, &step).unwrap();
    {
        let f = hdf5::File::open_rw(&step).unwrap();
        f.delete_attr("step").unwrap();
        f.new_attr::<u64>()
            .create("step")
            .unwrap()
            .write_scalar(&999u64)
            .unwrap();
    }
    rejected(&step, &["integrity check failed", "content SHA-256"]);

    // The previous layout version (its rings hold Poisson events in flight).
    let version = dir.path().join("version.h5");
    std::fs::copy(&good, &version).unwrap();
    {
        let f = hdf5::File::open_rw(&version).unwrap();
        f.delete_attr("version").unwrap();
        f.new_attr::<u64>()
            .create("version")
            .unwrap()
            .write_scalar(&1u64)
            .unwrap();
    }
    rejected(
        &version,
        &["layout version 1 is not supported", "reads version 2"],
    );

    // Other HDF5 files: a Myelin recording, and a file of another program.
    let rec = dir.path().join("recordings.h5");
    let meta = RunMeta {
        scene_name: "x".into(),
        scene_hash: "ab".repeat(32),
        seed: 1,
        dt: DT,
        myelin_version: "test".into(),
    };
    RecordingWriter::create(&rec, &meta)
        .unwrap()
        .finish()
        .unwrap();
    rejected(&rec, &["not a Myelin checkpoint", "recordings file"]);
    let other = dir.path().join("other.h5");
    {
        let f = hdf5::File::create(&other).unwrap();
        f.new_dataset_builder()
            .with_data(&[1.0f64, 2.0])
            .create("x")
            .unwrap();
    }
    rejected(
        &other,
        &["not a Myelin checkpoint", "no string attribute \"format\""],
    );

    // After all that, the good file still reads.
    read_checkpoint(&good).unwrap();
}

#[test]
fn a_failed_write_leaves_the_previous_checkpoint_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_one(dir.path());
    let before = std::fs::read(&path).unwrap();
    // The temporary file cannot be created: a folder is in its way.
    std::fs::create_dir(
        dir.path()
            .join(format!("{}.tmp", checkpoint_file_name(250))),
    )
    .unwrap();
    let mut w = world(true);
    w.resource_mut::<SimClock>().step = 250;
    let err = write_checkpoint(&path, &w, &run_info(), &positions()).unwrap_err();
    assert!(err.to_string().contains("temporary file"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    read_checkpoint(&path).unwrap();
}

#[test]
fn checkpoints_are_listed_by_step_and_pruned_to_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(true);
    for step in [500u64, 100, 300] {
        let p = dir.path().join(checkpoint_file_name(step));
        write_checkpoint(&p, &w, &run_info(), &positions()).unwrap();
    }
    std::fs::write(
        dir.path().join("checkpoint-000000000900.h5.tmp"),
        b"leftover",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let steps: Vec<u64> = list_checkpoints(dir.path())
        .unwrap()
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(steps, vec![100, 300, 500]);
    let removed = prune_checkpoints(dir.path(), 2).unwrap();
    assert_eq!(removed.len(), 1);
    let steps: Vec<u64> = list_checkpoints(dir.path())
        .unwrap()
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(steps, vec![300, 500]);
    assert!(!dir.path().join("checkpoint-000000000900.h5.tmp").exists());
    assert!(
        dir.path().join("notes.txt").exists(),
        "other files are left alone"
    );
    assert!(
        list_checkpoints(&dir.path().join("none"))
            .unwrap()
            .is_empty()
    );
}

/// A lock somebody else holds on the file (here taken through a second descriptor, as a
/// child process that inherited HDF5's descriptor holds it) does not stop Myelin from
/// reading a checkpoint, nor from writing the next one beside it: Myelin's files are
/// opened without HDF5's advisory locks (see `myelin_io::h5`).
#[test]
fn a_lock_held_elsewhere_does_not_block_reading_or_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_one(dir.path());
    let held = std::fs::File::open(&path).unwrap();
    held.lock().unwrap();
    let c = read_checkpoint(&path).expect("reads while another descriptor holds a lock");
    assert_eq!(c.step, 250);
    // The same file written again in place (through the temporary name and a rename).
    write_checkpoint(&path, &world(true), &run_info(), &positions()).unwrap();
    assert!(myelin_io::h5::open_rw(&path).is_ok());
    held.unlock().unwrap();
}
