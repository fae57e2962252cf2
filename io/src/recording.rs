//! HDF5 recordings: spike and state recorder buffers appended to a file while a run goes
//! on, renamed into place when it finishes.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use bevy_ecs::entity::Entity;
use bevy_ecs::world::World;
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Extent, File, Group, H5Type, SimpleExtents};
use myelin_components::{Population, SpikeRecorder, StateRecorder};
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
        let file = File::create(&partial).map_err(|source| IoError::Hdf5 {
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

    fn dataset_unit(&self, ds: &Dataset, at: &str, unit: &str) -> Result<(), IoError> {
        let r = ds
            .new_attr::<VarLenUnicode>()
            .create("unit")
            .and_then(|a| a.write_scalar(&vlu(unit)));
        self.h5(|| format!("write attribute unit of {at}"), r)
    }

    /// Drains every [`SpikeRecorder`] and [`StateRecorder`] buffer in `world` and appends
    /// the data to the file (creating each recorder's group on first sight, even when it
    /// has nothing yet). Needs the [`SimClock`] resource for `dt`.
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
