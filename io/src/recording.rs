//! HDF5 recordings: spike and state recorder buffers appended to a file while a run goes
//! on, renamed into place when it finishes.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use bevy_ecs::entity::Entity;
use bevy_ecs::world::World;
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Extent, File, Group, H5Type, SimpleExtents};
use myelin_components::{Population, Projection, SpikeRecorder, StateRecorder, WeightRecorder};
use myelin_engine::SimClock;

/// Version of the file layout, written as the root attribute `format_version`.
pub const FORMAT_VERSION: u32 = 1;

/// Elements per chunk of the 1-D datasets (times, senders).
const CHUNK_1D: usize = 16 * 1024;
/// Elements (about) per chunk of the 2-D state values.
const CHUNK_2D: usize = 64 * 1024;

/// What a recording says about the run that produced it (root attributes).
#[derive(Clone, Debug, PartialEq)]
pub struct RunMeta {
    /// Scene name.
    pub scene_name: String,
    /// Hex SHA-256 of the scene's source text.
    pub scene_hash: String,
    /// Run seed.
    pub seed: u64,
    /// Time step (ms).
    pub dt: f64,
    /// Version of Myelin that wrote the file.
    pub myelin_version: String,
}

/// Errors while writing a recording; each names the file and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// An HDF5 operation failed.
    #[error("{}: cannot {op}: {source}", file.display())]
    Hdf5 {
        /// The file being written.
        file: PathBuf,
        /// What was being done, e.g. `append to /spikes/E/times`.
        op: String,
        /// The HDF5 error.
        source: hdf5::Error,
    },
    /// A file-system operation failed.
    #[error("{}: cannot {op}: {source}", file.display())]
    Fs {
        /// The file concerned.
        file: PathBuf,
        /// What was being done, e.g. `rename to recordings.h5`.
        op: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The world holds something the writer cannot record (a missing clock or population,
    /// an unusable label, inconsistent buffers).
    #[error("{}: {message}", file.display())]
    Invalid {
        /// The file being written.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// How many rows each recorder has written to a recording, by label: spikes for a spike
/// recorder, samples for a state recorder. A checkpoint stores it so that a resumed run
/// can cut the recording back to the checkpoint's moment before appending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderPositions(pub BTreeMap<String, u64>);

struct SpikeOut {
    times: Dataset,
    senders: Dataset,
    len: usize,
}

/// A spike recorder's drained buffers.
struct SpikeDrain {
    entity: Entity,
    label: String,
    population: Entity,
    /// Number of recorded neurons (`None`: all, or the group exists already).
    recorded_neurons: Option<usize>,
    steps: Vec<u64>,
    senders: Vec<u32>,
}

/// A state recorder's drained buffers.
struct StateDrain {
    entity: Entity,
    label: String,
    population: Entity,
    variable: String,
    unit: String,
    interval: u64,
    offset: f64,
    /// Recorded neurons (empty once the group exists).
    neurons: Vec<u32>,
    steps: Vec<u64>,
    values: Vec<f32>,
}

struct StateOut {
    times: Dataset,
    values: Dataset,
    n_neurons: usize,
    len: usize,
}

/// A weight recorder's drained buffers.
struct WeightDrain {
    entity: Entity,
    label: String,
    projection: Entity,
    interval: u64,
    n_synapses: usize,
    /// Source and target of each recorded synapse (empty once the group exists).
    sources: Vec<u32>,
    targets: Vec<u32>,
    steps: Vec<u64>,
    values: Vec<f32>,
}

/// Writes the recorders of a running simulation to an HDF5 file.
///
/// The file is written at `FINAL.partial` and renamed to its final path by
/// [`finish`](Self::finish); a writer dropped without finishing leaves the `.partial` file
/// behind (an incomplete run never replaces a complete recording).
pub struct RecordingWriter {
    file: Option<File>,
    partial: PathBuf,
    final_path: PathBuf,
    spikes: HashMap<Entity, SpikeOut>,
    states: HashMap<Entity, StateOut>,
    /// Weight recorders (same layout as state recorders: times and a 2-D values dataset).
    weights: HashMap<Entity, StateOut>,
    labels: BTreeMap<String, Entity>,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("partial", &self.partial)
            .field("final_path", &self.final_path)
            .field("groups", &self.labels.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The path `final_path` with `.partial` appended to its file name.
pub fn partial_path(final_path: &Path) -> PathBuf {
    let mut name = final_path
        .file_name()
        .map(OsString::from)
        .unwrap_or_default();
    name.push(".partial");
    final_path.with_file_name(name)
}

fn vlu(s: &str) -> VarLenUnicode {
    // Interior NULs cannot be stored; drop them rather than fail.
    s.replace('\0', "").parse().unwrap_or_default()
}

impl RecordingWriter {
    /// Creates (or truncates) `FINAL.partial` and writes the run's metadata as root
    /// attributes.
    pub fn create(final_path: &Path, meta: &RunMeta) -> Result<Self, IoError> {
        if final_path.file_name().is_none() {
            return Err(IoError::Invalid {
                file: final_path.to_path_buf(),
                message: "the recording path does not name a file".into(),
            });
        }
        let partial = partial_path(final_path);
        let file = crate::h5::create(&partial).map_err(|source| IoError::Hdf5 {
            file: partial.clone(),
            op: "create the file".into(),
            source,
        })?;
        let w = Self {
            file: Some(file),
            partial,
            final_path: final_path.to_path_buf(),
            spikes: HashMap::new(),
            states: HashMap::new(),
            weights: HashMap::new(),
            labels: BTreeMap::new(),
        };
        {
            let root = w.root()?;
            w.attr_str(&root, "/", "scene_name", &meta.scene_name)?;
            w.attr_str(&root, "/", "scene_hash", &meta.scene_hash)?;
            w.attr(&root, "/", "seed", meta.seed)?;
            w.attr(&root, "/", "dt", meta.dt)?;
            w.attr_str(&root, "/", "myelin_version", &meta.myelin_version)?;
            w.attr(&root, "/", "format_version", FORMAT_VERSION)?;
            w.group(&root, "spikes")?;
            w.group(&root, "state")?;
        }
        Ok(w)
    }

    /// Reopens the recording of an interrupted (or finished) run to continue it: opens
    /// `FINAL.partial`, or renames `FINAL` to it first when only the finished file exists;
    /// checks that it belongs to the run of `meta` (scene hash, seed, time step); cuts every
    /// recorder's datasets back to its row count in `positions` (the rows written after
    /// the checkpoint are dropped) and continues appending after them. Recorders of `world`
    /// without a group yet get one at the next [`flush`](Self::flush).
    pub fn resume(
        final_path: &Path,
        meta: &RunMeta,
        positions: &RecorderPositions,
        world: &mut World,
    ) -> Result<Self, IoError> {
        let partial = partial_path(final_path);
        if !partial.exists() && final_path.exists() {
            std::fs::rename(final_path, &partial).map_err(|source| IoError::Fs {
                file: final_path.to_path_buf(),
                op: format!("rename it to {} to continue it", partial.display()),
                source,
            })?;
        }
        if !partial.exists() {
            return Err(IoError::Invalid {
                file: partial,
                message: format!(
                    "neither this file nor {} exists: the run's recording is missing",
                    final_path.display()
                ),
            });
        }
        let file = crate::h5::open_rw(&partial).map_err(|source| IoError::Hdf5 {
            file: partial.clone(),
            op: "open the recording to continue it (it may be damaged)".into(),
            source,
        })?;
        let mut w = Self {
            file: Some(file),
            partial,
            final_path: final_path.to_path_buf(),
            spikes: HashMap::new(),
            states: HashMap::new(),
            weights: HashMap::new(),
            labels: BTreeMap::new(),
        };
        w.check_run(meta)?;
        w.reattach(positions, world)?;
        Ok(w)
    }

    /// Checks that the open file's root attributes name the run of `meta`.
    fn check_run(&self, meta: &RunMeta) -> Result<(), IoError> {
        let root = self.root()?;
        let read_str = |name: &str| {
            root.attr(name)
                .and_then(|a| a.read_scalar::<VarLenUnicode>())
                .map(|v| v.as_str().to_string())
        };
        let hash = self.h5(
            || "read attribute scene_hash of /".into(),
            read_str("scene_hash"),
        )?;
        let seed = self.h5(
            || "read attribute seed of /".into(),
            root.attr("seed").and_then(|a| a.read_scalar::<u64>()),
        )?;
        let dt = self.h5(
            || "read attribute dt of /".into(),
            root.attr("dt").and_then(|a| a.read_scalar::<f64>()),
        )?;
        if hash != meta.scene_hash || seed != meta.seed || dt != meta.dt {
            return Err(self.invalid(format!(
                "the recording belongs to another run (scene hash {hash}, seed {seed}, dt {dt} ms; \
                 the checkpoint's run has scene hash {}, seed {}, dt {} ms)",
                meta.scene_hash, meta.seed, meta.dt
            )));
        }
        Ok(())
    }

    /// Attaches every recorder of `world` to its existing group, cut back to its position.
    fn reattach(
        &mut self,
        positions: &RecorderPositions,
        world: &mut World,
    ) -> Result<(), IoError> {
        let root = self.root()?;
        let mut q = world.query::<(Entity, &SpikeRecorder)>();
        let spikes: Vec<(Entity, String)> =
            q.iter(world).map(|(e, r)| (e, r.label.clone())).collect();
        let mut q = world.query::<(Entity, &StateRecorder)>();
        let states: Vec<(Entity, String, usize)> = q
            .iter(world)
            .map(|(e, r)| (e, r.label.clone(), r.neurons.len()))
            .collect();
        let mut q = world.query::<(Entity, &WeightRecorder)>();
        let weights: Vec<(Entity, String, usize)> = q
            .iter(world)
            .map(|(e, r)| (e, r.label.clone(), r.n_synapses))
            .collect();
        for (entity, label) in spikes {
            let at = format!("/spikes/{label}");
            let rows = self.position(positions, &label, &root, &at)?;
            let Some(rows) = rows else { continue };
            let g = self.h5(|| format!("open group {at}"), root.group(&at))?;
            let times = self.h5(|| format!("open {at}/times"), g.dataset("times"))?;
            let senders = self.h5(|| format!("open {at}/senders"), g.dataset("senders"))?;
            self.cut_1d(&times, &format!("{at}/times"), rows)?;
            self.cut_1d(&senders, &format!("{at}/senders"), rows)?;
            self.labels.insert(label, entity);
            self.spikes.insert(
                entity,
                SpikeOut {
                    times,
                    senders,
                    len: rows,
                },
            );
        }
        for (entity, label, n) in states {
            let at = format!("/state/{label}");
            let rows = self.position(positions, &label, &root, &at)?;
            let Some(rows) = rows else { continue };
            let g = self.h5(|| format!("open group {at}"), root.group(&at))?;
            let times = self.h5(|| format!("open {at}/times"), g.dataset("times"))?;
            let values = self.h5(|| format!("open {at}/values"), g.dataset("values"))?;
            self.cut_1d(&times, &format!("{at}/times"), rows)?;
            let shape = values.shape();
            if shape.len() != 2 || shape[1] != n || shape[0] < rows {
                return Err(self.invalid(format!(
                    "{at}/values has shape {shape:?}, but the checkpoint expects at least {rows} samples of {n} neurons"
                )));
            }
            self.h5(
                || format!("cut {at}/values back to {rows} samples"),
                values.resize((rows, n)),
            )?;
            self.labels.insert(label, entity);
            self.states.insert(
                entity,
                StateOut {
                    times,
                    values,
                    n_neurons: n,
                    len: rows,
                },
            );
        }
        for (entity, label, n) in weights {
            let at = format!("/weights/{label}");
            let rows = self.position(positions, &label, &root, &at)?;
            let Some(rows) = rows else { continue };
            let g = self.h5(|| format!("open group {at}"), root.group(&at))?;
            let times = self.h5(|| format!("open {at}/times"), g.dataset("times"))?;
            let values = self.h5(|| format!("open {at}/values"), g.dataset("values"))?;
            self.cut_1d(&times, &format!("{at}/times"), rows)?;
            let shape = values.shape();
            if shape.len() != 2 || shape[1] != n || shape[0] < rows {
                return Err(self.invalid(format!(
                    "{at}/values has shape {shape:?}, but the checkpoint expects at least {rows} samples of {n} synapses"
                )));
            }
            self.h5(
                || format!("cut {at}/values back to {rows} samples"),
                values.resize((rows, n)),
            )?;
            self.labels.insert(label, entity);
            self.weights.insert(
                entity,
                StateOut {
                    times,
                    values,
                    n_neurons: n,
                    len: rows,
                },
            );
        }
        Ok(())
    }

    /// The position of recorder `label`: `Some(rows)` when its group exists, `None` when it
    /// has none yet (then the checkpoint must not claim rows for it).
    fn position(
        &self,
        positions: &RecorderPositions,
        label: &str,
        root: &Group,
        at: &str,
    ) -> Result<Option<usize>, IoError> {
        let rows = positions.0.get(label).copied().unwrap_or(0);
        if root.link_exists(at.trim_start_matches('/')) {
            return Ok(Some(rows as usize));
        }
        if rows > 0 {
            return Err(self.invalid(format!(
                "the checkpoint says recorder \"{label}\" wrote {rows} rows, but the recording has no group {at}"
            )));
        }
        Ok(None)
    }

    /// Cuts a growing 1-D dataset back to `rows` elements (it must hold at least as many).
    fn cut_1d(&self, ds: &Dataset, at: &str, rows: usize) -> Result<(), IoError> {
        let len = ds.shape().first().copied().unwrap_or(0);
        if len < rows {
            return Err(self.invalid(format!(
                "{at} holds {len} rows, fewer than the {rows} the checkpoint says were written"
            )));
        }
        self.h5(|| format!("cut {at} back to {rows} rows"), ds.resize(rows))
    }

    /// Rows written so far by every recorder the writer has seen, by label.
    pub fn positions(&self) -> RecorderPositions {
        let mut out = BTreeMap::new();
        for (label, e) in &self.labels {
            let rows = self
                .spikes
                .get(e)
                .map(|o| o.len)
                .or_else(|| self.states.get(e).map(|o| o.len))
                .or_else(|| self.weights.get(e).map(|o| o.len))
                .unwrap_or(0);
            out.insert(label.clone(), rows as u64);
        }
        RecorderPositions(out)
    }

    /// Makes what was flushed durable: asks the operating system to write the file to
    /// disk (call after [`flush`](Self::flush), before a checkpoint refers to it).
    pub fn sync(&self) -> Result<(), IoError> {
        let f = std::fs::File::open(&self.partial).map_err(|source| IoError::Fs {
            file: self.partial.clone(),
            op: "open to sync".into(),
            source,
        })?;
        f.sync_all().map_err(|source| IoError::Fs {
            file: self.partial.clone(),
            op: "sync to disk".into(),
            source,
        })
    }

    /// The path being written (`FINAL.partial`).
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// The path the recording will have once finished.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    fn h5<T>(&self, op: impl FnOnce() -> String, r: hdf5::Result<T>) -> Result<T, IoError> {
        r.map_err(|source| IoError::Hdf5 {
            file: self.partial.clone(),
            op: op(),
            source,
        })
    }

    fn invalid(&self, message: String) -> IoError {
        IoError::Invalid {
            file: self.partial.clone(),
            message,
        }
    }

    fn root(&self) -> Result<Group, IoError> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| self.invalid("the recording is already closed".into()))?;
        self.h5(|| "open the root group".into(), file.group("/"))
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group, IoError> {
        self.h5(
            || {
                format!(
                    "create group {}/{name}",
                    parent.name().trim_end_matches('/')
                )
            },
            parent.create_group(name),
        )
    }

    fn attr<T: H5Type>(&self, loc: &Group, at: &str, name: &str, value: T) -> Result<(), IoError> {
        let r = loc
            .new_attr::<T>()
            .create(name)
            .and_then(|a| a.write_scalar(&value));
        self.h5(|| format!("write attribute {name} of {at}"), r)
    }

    fn attr_str(&self, loc: &Group, at: &str, name: &str, value: &str) -> Result<(), IoError> {
        self.attr(loc, at, name, vlu(value))
    }

    fn dataset_1d<T: H5Type>(&self, g: &Group, at: &str, name: &str) -> Result<Dataset, IoError> {
        let r = g
            .new_dataset::<T>()
            .chunk(CHUNK_1D)
            .shape(SimpleExtents::new(vec![Extent::resizable(0)]))
            .create(name);
        self.h5(|| format!("create dataset {at}/{name}"), r)
    }

    fn check_label(&self, label: &str, e: Entity) -> Result<(), IoError> {
        if label.is_empty() || label.contains('/') || label == "." || label.contains('\0') {
            return Err(self.invalid(format!("recorder label \"{label}\" cannot name an HDF5 group (it must be non-empty and contain no '/')")));
        }
        if let Some(other) = self.labels.get(label)
            && *other != e
        {
            return Err(self.invalid(format!("two recorders share the label \"{label}\"")));
        }
        Ok(())
    }

    fn population<'w>(
        &self,
        world: &'w World,
        e: Entity,
        label: &str,
    ) -> Result<&'w Population, IoError> {
        world.get::<Population>(e).ok_or_else(|| {
            self.invalid(format!(
                "recorder \"{label}\" records entity {e:?}, which is not a population"
            ))
        })
    }

    fn create_spike_group(&mut self, world: &World, d: &SpikeDrain) -> Result<(), IoError> {
        self.check_label(&d.label, d.entity)?;
        let pop = self.population(world, d.population, &d.label)?;
        let root = self.root()?;
        let parent = self.h5(|| "open group /spikes".into(), root.group("spikes"))?;
        let g = self.group(&parent, &d.label)?;
        let at = format!("/spikes/{}", d.label);
        self.attr_str(&g, &at, "population", &pop.name)?;
        self.attr(&g, &at, "n_neurons", pop.size as u64)?;
        self.attr(&g, &at, "first_id", pop.first_id)?;
        self.attr(
            &g,
            &at,
            "recorded_neurons",
            d.recorded_neurons.unwrap_or(pop.size) as u64,
        )?;
        let times = self.dataset_1d::<f64>(&g, &at, "times")?;
        self.dataset_unit(&times, &format!("{at}/times"), "ms")?;
        let senders = self.dataset_1d::<u32>(&g, &at, "senders")?;
        self.labels.insert(d.label.clone(), d.entity);
        self.spikes.insert(
            d.entity,
            SpikeOut {
                times,
                senders,
                len: 0,
            },
        );
        Ok(())
    }

    fn create_state_group(
        &mut self,
        world: &World,
        d: &StateDrain,
        dt: f64,
    ) -> Result<(), IoError> {
        self.check_label(&d.label, d.entity)?;
        let pop = self.population(world, d.population, &d.label)?;
        let root = self.root()?;
        let parent = self.h5(|| "open group /state".into(), root.group("state"))?;
        let g = self.group(&parent, &d.label)?;
        let at = format!("/state/{}", d.label);
        self.attr_str(&g, &at, "population", &pop.name)?;
        self.attr_str(&g, &at, "variable", &d.variable)?;
        self.attr_str(&g, &at, "unit", &d.unit)?;
        self.attr(&g, &at, "interval_ms", d.interval as f64 * dt)?;
        self.attr(&g, &at, "n_neurons", pop.size as u64)?;
        self.attr(&g, &at, "first_id", pop.first_id)?;
        let times = self.dataset_1d::<f64>(&g, &at, "times")?;
        self.dataset_unit(&times, &format!("{at}/times"), "ms")?;
        let n = d.neurons.len();
        let cols = if n == 0 {
            Extent::resizable(0)
        } else {
            Extent::fixed(n)
        };
        let rows_per_chunk = (CHUNK_2D / n.max(1)).max(1);
        let values = g
            .new_dataset::<f32>()
            .chunk([rows_per_chunk, n.max(1)])
            .shape(SimpleExtents::new(vec![Extent::resizable(0), cols]))
            .create("values");
        let values = self.h5(|| format!("create dataset {at}/values"), values)?;
        self.dataset_unit(&values, &format!("{at}/values"), &d.unit)?;
        let neurons = g
            .new_dataset_builder()
            .with_data(d.neurons.as_slice())
            .create("neurons");
        self.h5(|| format!("create dataset {at}/neurons"), neurons)?;
        self.labels.insert(d.label.clone(), d.entity);
        self.states.insert(
            d.entity,
            StateOut {
                times,
                values,
                n_neurons: n,
                len: 0,
            },
        );
        Ok(())
    }

    fn create_weights_group(
        &mut self,
        world: &World,
        d: &WeightDrain,
        dt: f64,
    ) -> Result<(), IoError> {
        self.check_label(&d.label, d.entity)?;
        let proj = world.get::<Projection>(d.projection).ok_or_else(|| {
            self.invalid(format!(
                "weight recorder \"{}\" records entity {:?}, which is not a projection",
                d.label, d.projection
            ))
        })?;
        let source = self.population(world, proj.source, &d.label)?;
        let target = self.population(world, proj.target, &d.label)?;
        let root = self.root()?;
        let parent = if root.link_exists("weights") {
            self.h5(|| "open group /weights".into(), root.group("weights"))?
        } else {
            self.group(&root, "weights")?
        };
        let g = self.group(&parent, &d.label)?;
        let at = format!("/weights/{}", d.label);
        self.attr_str(&g, &at, "projection", &proj.name)?;
        self.attr_str(&g, &at, "source", &source.name)?;
        self.attr_str(&g, &at, "target", &target.name)?;
        self.attr_str(&g, &at, "unit", "pA or mV (the target model's input unit)")?;
        self.attr(&g, &at, "interval_ms", d.interval as f64 * dt)?;
        self.attr(&g, &at, "n_synapses", d.n_synapses as u64)?;
        let times = self.dataset_1d::<f64>(&g, &at, "times")?;
        self.dataset_unit(&times, &format!("{at}/times"), "ms")?;
        let n = d.n_synapses;
        let cols = if n == 0 {
            Extent::resizable(0)
        } else {
            Extent::fixed(n)
        };
        let rows_per_chunk = (CHUNK_2D / n.max(1)).max(1);
        let values = g
            .new_dataset::<f32>()
            .chunk([rows_per_chunk, n.clamp(1, CHUNK_2D)])
            .shape(SimpleExtents::new(vec![Extent::resizable(0), cols]))
            .create("values");
        let values = self.h5(|| format!("create dataset {at}/values"), values)?;
        self.dataset_unit(&values, &format!("{at}/values"), "pA or mV")?;
        for (name, data) in [("sources", &d.sources), ("targets", &d.targets)] {
            let r = g
                .new_dataset_builder()
                .with_data(data.as_slice())
                .create(name);
            self.h5(|| format!("create dataset {at}/{name}"), r)?;
        }
        self.labels.insert(d.label.clone(), d.entity);
        self.weights.insert(
            d.entity,
            StateOut {
                times,
                values,
                n_neurons: n,
                len: 0,
            },
        );
        Ok(())
    }

    fn dataset_unit(&self, ds: &Dataset, at: &str, unit: &str) -> Result<(), IoError> {
        let r = ds
            .new_attr::<VarLenUnicode>()
            .create("unit")
            .and_then(|a| a.write_scalar(&vlu(unit)));
        self.h5(|| format!("write attribute unit of {at}"), r)
    }

    /// Drains every [`SpikeRecorder`], [`StateRecorder`] and [`WeightRecorder`] buffer in
    /// `world` and appends the data to the file (creating each recorder's group on first
    /// sight, even when it has nothing yet). Needs the [`SimClock`] resource for `dt`.
    ///
    /// After an error the drained data may be lost: abandon the recording (its `.partial`
    /// file stays behind).
    pub fn flush(&mut self, world: &mut World) -> Result<(), IoError> {
        let dt = world
            .get_resource::<SimClock>()
            .map(|c| c.dt)
            .ok_or_else(|| self.invalid("the world has no SimClock resource".into()))?;
        if self.file.is_none() {
            return Err(self.invalid("the recording is already closed".into()));
        }

        let mut spikes: Vec<SpikeDrain> = Vec::new();
        let mut q = world.query::<(Entity, &mut SpikeRecorder)>();
        for (entity, mut r) in q.iter_mut(world) {
            let known = self.spikes.contains_key(&entity);
            spikes.push(SpikeDrain {
                entity,
                label: r.label.clone(),
                population: r.population,
                recorded_neurons: if known {
                    None
                } else {
                    r.mask.as_ref().map(|m| m.iter().filter(|&&b| b).count())
                },
                steps: std::mem::take(&mut r.steps),
                senders: std::mem::take(&mut r.senders),
            });
        }
        spikes.sort_by(|a, b| a.label.cmp(&b.label));
        let mut states: Vec<StateDrain> = Vec::new();
        let mut q = world.query::<(Entity, &mut StateRecorder)>();
        for (entity, mut r) in q.iter_mut(world) {
            let known = self.states.contains_key(&entity);
            states.push(StateDrain {
                entity,
                label: r.label.clone(),
                population: r.population,
                variable: r.variable.clone(),
                unit: r.unit.clone(),
                interval: r.interval,
                offset: r.offset,
                neurons: if known { Vec::new() } else { r.neurons.clone() },
                steps: std::mem::take(&mut r.steps),
                values: std::mem::take(&mut r.values),
            });
        }
        states.sort_by(|a, b| a.label.cmp(&b.label));
        let mut weights: Vec<WeightDrain> = Vec::new();
        let mut q = world.query::<(Entity, &mut WeightRecorder)>();
        for (entity, mut r) in q.iter_mut(world) {
            let known = self.weights.contains_key(&entity);
            let (sources, targets) = if known {
                (Vec::new(), Vec::new())
            } else {
                (
                    std::mem::take(&mut r.sources),
                    std::mem::take(&mut r.targets),
                )
            };
            weights.push(WeightDrain {
                entity,
                label: r.label.clone(),
                projection: r.projection,
                interval: r.interval,
                n_synapses: r.n_synapses,
                sources,
                targets,
                steps: std::mem::take(&mut r.steps),
                values: std::mem::take(&mut r.values),
            });
        }
        weights.sort_by(|a, b| a.label.cmp(&b.label));

        for d in &spikes {
            if !self.spikes.contains_key(&d.entity) {
                self.create_spike_group(world, d)?;
            }
            if d.steps.len() != d.senders.len() {
                return Err(self.invalid(format!(
                    "spike recorder \"{}\" buffered {} steps but {} senders",
                    d.label,
                    d.steps.len(),
                    d.senders.len()
                )));
            }
            let Some(out) = self.spikes.get(&d.entity) else {
                continue;
            };
            let (t_ds, s_ds, old) = (out.times.clone(), out.senders.clone(), out.len);
            let times: Vec<f64> = d.steps.iter().map(|&s| (s + 1) as f64 * dt).collect();
            let at = format!("/spikes/{}", d.label);
            self.append_1d(&t_ds, &format!("{at}/times"), old, &times)?;
            self.append_1d(&s_ds, &format!("{at}/senders"), old, &d.senders)?;
            if let Some(out) = self.spikes.get_mut(&d.entity) {
                out.len += times.len();
            }
        }

        for d in &states {
            if !self.states.contains_key(&d.entity) {
                self.create_state_group(world, d, dt)?;
            }
            let Some(out) = self.states.get(&d.entity) else {
                continue;
            };
            let (t_ds, v_ds, n, old) = (
                out.times.clone(),
                out.values.clone(),
                out.n_neurons,
                out.len,
            );
            let at = format!("/state/{}", d.label);
            if Some(d.values.len()) != d.steps.len().checked_mul(n) {
                return Err(self.invalid(format!(
                    "state recorder \"{}\" buffered {} samples of {n} neurons but {} values",
                    d.label,
                    d.steps.len(),
                    d.values.len()
                )));
            }
            let times: Vec<f64> = d.steps.iter().map(|&s| (s + 1) as f64 * dt).collect();
            let rows = times.len();
            self.append_1d(&t_ds, &format!("{at}/times"), old, &times)?;
            if rows > 0 {
                let op = || format!("append to {at}/values");
                self.h5(op, v_ds.resize((old + rows, n)))?;
                if n > 0 {
                    let vals: Vec<f32> = d
                        .values
                        .iter()
                        .map(|&v| (f64::from(v) + d.offset) as f32)
                        .collect();
                    let view =
                        ndarray::ArrayView2::from_shape((rows, n), &vals).map_err(|err| {
                            self.invalid(format!("state recorder \"{}\": {err}", d.label))
                        })?;
                    self.h5(op, v_ds.write_slice(view, (old..old + rows, ..)))?;
                }
            }
            if let Some(out) = self.states.get_mut(&d.entity) {
                out.len += rows;
            }
        }

        for d in &weights {
            if !self.weights.contains_key(&d.entity) {
                self.create_weights_group(world, d, dt)?;
            }
            let Some(out) = self.weights.get(&d.entity) else {
                continue;
            };
            let (t_ds, v_ds, n, old) = (
                out.times.clone(),
                out.values.clone(),
                out.n_neurons,
                out.len,
            );
            let at = format!("/weights/{}", d.label);
            if Some(d.values.len()) != d.steps.len().checked_mul(n) {
                return Err(self.invalid(format!(
                    "weight recorder \"{}\" buffered {} samples of {n} synapses but {} values",
                    d.label,
                    d.steps.len(),
                    d.values.len()
                )));
            }
            let times: Vec<f64> = d.steps.iter().map(|&s| (s + 1) as f64 * dt).collect();
            let rows = times.len();
            self.append_1d(&t_ds, &format!("{at}/times"), old, &times)?;
            if rows > 0 {
                let op = || format!("append to {at}/values");
                self.h5(op, v_ds.resize((old + rows, n)))?;
                if n > 0 {
                    let view =
                        ndarray::ArrayView2::from_shape((rows, n), &d.values).map_err(|err| {
                            self.invalid(format!("weight recorder \"{}\": {err}", d.label))
                        })?;
                    self.h5(op, v_ds.write_slice(view, (old..old + rows, ..)))?;
                }
            }
            if let Some(out) = self.weights.get_mut(&d.entity) {
                out.len += rows;
            }
        }

        let file = self
            .file
            .as_ref()
            .ok_or_else(|| self.invalid("the recording is already closed".into()))?;
        self.h5(|| "flush the file".into(), file.flush())
    }

    fn append_1d<T: H5Type>(
        &self,
        ds: &Dataset,
        at: &str,
        old: usize,
        data: &[T],
    ) -> Result<(), IoError> {
        if data.is_empty() {
            return Ok(());
        }
        let new = old + data.len();
        self.h5(|| format!("append to {at}"), ds.resize(new))?;
        self.h5(|| format!("append to {at}"), ds.write_slice(data, old..new))
    }

    /// Flushes and closes the file, then renames `FINAL.partial` to the final path
    /// (replacing an existing file there only now, atomically).
    pub fn finish(mut self) -> Result<(), IoError> {
        self.spikes.clear();
        self.states.clear();
        self.weights.clear();
        let file = self
            .file
            .take()
            .ok_or_else(|| self.invalid("the recording is already closed".into()))?;
        self.h5(|| "flush the file".into(), file.flush())?;
        self.h5(|| "close the file".into(), file.close())?;
        std::fs::rename(&self.partial, &self.final_path).map_err(|source| IoError::Fs {
            file: self.partial.clone(),
            op: format!("rename it to {}", self.final_path.display()),
            source,
        })
    }
}
