//! The checkpoint layout: capturing a world into a tree, decoding a tree read from a file
//! into a [`Checkpoint`], and restoring a checkpoint into a freshly built world.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bevy_ecs::world::World;
use myelin_components::{
    CHANNELS, Column, Connectivity, DELIVERY_BLOCK, DcInput, NeuronState, PlasticityState,
    PoissonInput, Population, Projection, SpikeGeneratorInput, SpikeRecorder, Spikes, StableId,
    StateRecorder, Synapse, SynapseBlock, SynapseColumn, SynapticInput, WeightRecorder,
};
use myelin_engine::{ModelRegistry, PopulationIndex, RunSeed, SimClock, SuppliedConnectivity};

use super::tree::{Array, Attr, Attrs, SynapseField, Tree};
use super::{
    CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, RunInfo, StoredProjection, attrs,
};
use crate::recording::RecorderPositions;

/// The datasets of one synapse block, in this order.
pub(crate) const BLOCK_DATASETS: [&str; 4] = ["row_ptr", "targets", "weights", "delays"];
/// Name of the random generator, recorded in `/rng`.
const RNG_ALGORITHM: &str = "philox4x32-10";
/// Kinds of recorders, as the `kind` attribute of `/recorders/<label>`.
const SPIKES: &str = "spikes";
const STATE: &str = "state";
const WEIGHTS: &str = "weights";

/// A state column of a population, by variable name.
#[derive(Clone, Debug, PartialEq)]
pub struct StateColumn<T> {
    /// Variable name (the model's variable table).
    pub name: String,
    /// Unit.
    pub unit: String,
    /// One value per neuron, as stored by the model.
    pub values: Vec<T>,
}

/// A population's state in a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct PopulationCheckpoint {
    /// Name.
    pub name: String,
    /// Neuron model.
    pub model: String,
    /// Number of neurons.
    pub size: usize,
    /// Global id of the first neuron.
    pub first_id: u64,
    /// Real state columns.
    pub real: Vec<StateColumn<f32>>,
    /// Integer state columns (refractory counters).
    pub int: Vec<StateColumn<u32>>,
    /// Delay ring buffers (`SynapticInput.data`), `[block][slot][channel][neuron]`.
    pub ring: Vec<f32>,
    /// Slots of the ring buffers.
    pub ring_slots: usize,
    /// Spikes emitted since the start.
    pub spikes_total: u64,
    /// Neurons that spiked in the last step.
    pub spikes_current: Vec<u32>,
}

/// A projection's connectivity in a checkpoint.
#[derive(Clone, Debug)]
pub struct ProjectionCheckpoint {
    /// Name.
    pub name: String,
    /// Source population name.
    pub source: String,
    /// Target population name.
    pub target: String,
    /// Target population size.
    pub n_target: usize,
    /// The synapses (taken out by [`Checkpoint::take_connectivity`]).
    pub connectivity: Connectivity,
    /// The learning rule's state (`None` for a static projection). Its `post.decay` and
    /// `post.kind` are not stored (they follow from the rule's parameters).
    pub plasticity: Option<PlasticityState>,
}

/// An input's state in a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct InputCheckpoint {
    /// Index among the scene's inputs.
    pub index: usize,
    /// Input model.
    pub model: String,
    /// Target population name.
    pub target: String,
    /// For a spike generator, the index of its next spike.
    pub cursor: Option<u64>,
}

/// A recorder's position in a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct RecorderCheckpoint {
    /// Label (the recording's group name).
    pub label: String,
    /// `"spikes"` or `"state"`.
    pub kind: String,
    /// Recorded population.
    pub population: String,
    /// Rows the recording held at the checkpoint (spikes or samples).
    pub rows: u64,
    /// Spikes recorded since the start (spike recorders; 0 for state recorders).
    pub recorded: u64,
}

/// A checkpoint read from a file: the run it belongs to and the state of every element.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The file it was read from.
    pub file: PathBuf,
    /// The run.
    pub run: RunInfo,
    /// Steps completed (the step the run continues with).
    pub step: u64,
    /// Time step [ms].
    pub dt: f64,
    /// Seed of the run.
    pub seed: u64,
    /// Delivery block size of the layout.
    pub block_size: usize,
    /// Populations in scene order.
    pub populations: Vec<PopulationCheckpoint>,
    /// Projections in scene order.
    pub projections: Vec<ProjectionCheckpoint>,
    /// Inputs in scene order.
    pub inputs: Vec<InputCheckpoint>,
    /// Recorders by label.
    pub recorders: Vec<RecorderCheckpoint>,
    /// Content digest (hex SHA-256).
    pub digest: String,
}

impl Checkpoint {
    /// Simulated time completed [ms].
    pub fn time_ms(&self) -> f64 {
        self.step as f64 * self.dt
    }

    /// The recorders' positions, for reopening the recording.
    pub fn positions(&self) -> RecorderPositions {
        RecorderPositions(
            self.recorders
                .iter()
                .map(|r| (r.label.clone(), r.rows))
                .collect(),
        )
    }

    /// Moves every projection's connectivity out, as the resource that makes the builder
    /// use it instead of drawing (insert it into the world before building).
    pub fn take_connectivity(&mut self) -> SuppliedConnectivity {
        SuppliedConnectivity(
            self.projections
                .iter_mut()
                .enumerate()
                .map(|(k, p)| (k, std::mem::take(&mut p.connectivity)))
                .collect(),
        )
    }

    fn mismatch(&self, message: String) -> CheckpointError {
        CheckpointError::Mismatch {
            file: self.file.clone(),
            message: format!("does not fit the simulation: {message}"),
        }
    }

    /// Puts the checkpoint's state into `world`, a world built from the checkpoint's scene
    /// (with [`Self::take_connectivity`] supplied): neuron state, ring buffers, spike
    /// counts, input cursors, recorder counts and the clock. Every element is checked
    /// against the world before it is written (names, models, sizes, variables), and a
    /// mismatch names both values; after an error the world is partly restored and should
    /// be dropped.
    pub fn restore(self, world: &mut World) -> Result<(), CheckpointError> {
        let dt = world.get_resource::<SimClock>().map(|c| c.dt);
        if dt != Some(self.dt) {
            return Err(self.mismatch(format!(
                "time step {} ms in the checkpoint, {dt:?} ms in the simulation",
                self.dt
            )));
        }
        let seed = world.get_resource::<RunSeed>().map(|s| s.0);
        if seed != Some(self.seed) {
            return Err(self.mismatch(format!(
                "seed {} in the checkpoint, {seed:?} in the simulation",
                self.seed
            )));
        }
        self.check_projections(world)?;
        self.restore_plasticity(world)?;
        self.restore_populations(world)?;
        self.restore_inputs(world)?;
        self.restore_recorders(world)?;
        if let Some(mut clock) = world.get_resource_mut::<SimClock>() {
            clock.step = self.step;
        }
        Ok(())
    }

    fn check_projections(&self, world: &World) -> Result<(), CheckpointError> {
        let mut found: Vec<(u32, String)> = world
            .try_query::<(&Projection, &StableId)>()
            .map(|mut q| {
                q.iter(world)
                    .map(|(p, id)| (id.0, p.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
        let stored: Vec<&str> = self.projections.iter().map(|p| p.name.as_str()).collect();
        if names != stored {
            return Err(self.mismatch(format!(
                "projections {stored:?} in the checkpoint, {names:?} in the simulation"
            )));
        }
        Ok(())
    }

    fn restore_plasticity(&self, world: &mut World) -> Result<(), CheckpointError> {
        let entities: Vec<(u32, bevy_ecs::entity::Entity)> = world
            .try_query::<(bevy_ecs::entity::Entity, &StableId, &Projection)>()
            .map(|mut q| q.iter(world).map(|(e, id, _)| (id.0, e)).collect())
            .unwrap_or_default();
        for (k, p) in self.projections.iter().enumerate() {
            let Some(&(_, e)) = entities.iter().find(|(id, _)| *id as usize == k) else {
                continue;
            };
            let live = world.get_mut::<PlasticityState>(e);
            match (&p.plasticity, live) {
                (None, None) => {}
                (Some(stored), None) => {
                    return Err(self.mismatch(format!(
                        "projection \"{}\" learns with \"{}\" in the checkpoint, but is static in the simulation",
                        p.name, stored.rule
                    )));
                }
                (None, Some(live)) => {
                    return Err(self.mismatch(format!(
                        "projection \"{}\" is static in the checkpoint, but learns with \"{}\" in the simulation",
                        p.name, live.rule
                    )));
                }
                (Some(stored), Some(mut live)) => {
                    plasticity_fits(stored, &live).map_err(|m| {
                        self.mismatch(format!("projection \"{}\": plasticity: {m}", p.name))
                    })?;
                    let live = &mut *live;
                    for (l, s) in live.synapse.iter_mut().zip(&stored.synapse) {
                        l.blocks.clone_from(&s.blocks);
                    }
                    for (l, s) in live.pre.iter_mut().zip(&stored.pre) {
                        l.values.clone_from(&s.values);
                    }
                    for (l, s) in live.pre_steps.iter_mut().zip(&stored.pre_steps) {
                        l.values.clone_from(&s.values);
                    }
                    live.post.history.clone_from(&stored.post.history);
                    live.post.rebuild_tail();
                    live.post.trace.clone_from(&stored.post.trace);
                }
            }
        }
        Ok(())
    }

    fn restore_populations(&self, world: &mut World) -> Result<(), CheckpointError> {
        let order = world
            .get_resource::<PopulationIndex>()
            .map(|i| i.order.clone())
            .unwrap_or_default();
        if order.len() != self.populations.len() {
            return Err(self.mismatch(format!(
                "{} populations in the checkpoint, {} in the simulation",
                self.populations.len(),
                order.len()
            )));
        }
        let registry = world
            .get_resource::<ModelRegistry>()
            .cloned()
            .unwrap_or_default();
        for (&e, p) in order.iter().zip(&self.populations) {
            let Some(pop) = world.get::<Population>(e) else {
                return Err(self.mismatch(format!(
                    "population \"{}\" is not in the simulation",
                    p.name
                )));
            };
            if pop.name != p.name || pop.model != p.model || pop.size != p.size {
                return Err(self.mismatch(format!(
                    "population \"{}\" ({}, {} neurons) in the checkpoint, \"{}\" ({}, {} neurons) in the simulation",
                    p.name, p.model, p.size, pop.name, pop.model, pop.size
                )));
            }
            let Some(entry) = registry.neurons.get(p.model.as_str()) else {
                return Err(
                    self.mismatch(format!("neuron model \"{}\" is not registered", p.model))
                );
            };
            let real = columns(&p.real, entry.real.iter().map(|v| v.name), p.size)
                .map_err(|m| self.mismatch(format!("population \"{}\": {m}", p.name)))?;
            let int = columns(&p.int, entry.int.iter().map(|v| v.name), p.size)
                .map_err(|m| self.mismatch(format!("population \"{}\": {m}", p.name)))?;
            let mut ent = world.entity_mut(e);
            {
                let Some(mut ring) = ent.get_mut::<SynapticInput>() else {
                    return Err(
                        self.mismatch(format!("population \"{}\" has no ring buffers", p.name))
                    );
                };
                if ring.ring_len() != p.ring.len() || ring.slots() != p.ring_slots {
                    return Err(self.mismatch(format!(
                        "population \"{}\": ring buffers of {} values in {} slots in the checkpoint, {} values in {} slots in the simulation",
                        p.name,
                        p.ring.len(),
                        p.ring_slots,
                        ring.ring_len(),
                        ring.slots()
                    )));
                }
                ring.restore(&p.ring);
            }
            if let Some(mut state) = ent.get_mut::<NeuronState>() {
                state.real = real;
                state.int = int;
            }
            if let Some(mut spikes) = ent.get_mut::<Spikes>() {
                spikes.total = p.spikes_total;
                spikes.current = p.spikes_current.clone();
            }
        }
        Ok(())
    }

    fn restore_inputs(&self, world: &mut World) -> Result<(), CheckpointError> {
        for inp in &self.inputs {
            let Some(cursor) = inp.cursor else { continue };
            let Some(mut q) =
                world.try_query::<(bevy_ecs::entity::Entity, &StableId, &SpikeGeneratorInput)>()
            else {
                return Err(self.mismatch(format!(
                    "input {} (spike_generator) is not in the simulation",
                    inp.index
                )));
            };
            let found = q
                .iter(world)
                .find(|(_, id, _)| id.0 as usize == inp.index)
                .map(|(e, _, g)| (e, g.steps.len()));
            let Some((e, n)) = found else {
                return Err(self.mismatch(format!(
                    "input {} (spike_generator) is not in the simulation",
                    inp.index
                )));
            };
            if cursor as usize > n {
                return Err(self.mismatch(format!(
                    "input {}: spike generator cursor {cursor} beyond its {n} spikes",
                    inp.index
                )));
            }
            if let Some(mut g) = world.get_mut::<SpikeGeneratorInput>(e) {
                g.cursor = cursor as usize;
            }
        }
        Ok(())
    }

    fn restore_recorders(&self, world: &mut World) -> Result<(), CheckpointError> {
        let by_label: BTreeMap<&str, &RecorderCheckpoint> = self
            .recorders
            .iter()
            .map(|r| (r.label.as_str(), r))
            .collect();
        let mut q = world.query::<&mut SpikeRecorder>();
        for mut r in q.iter_mut(world) {
            let Some(c) = by_label.get(r.label.as_str()) else {
                return Err(CheckpointError::Mismatch {
                    file: self.file.clone(),
                    message: format!(
                        "does not fit the simulation: it has no spike recorder \"{}\"",
                        r.label
                    ),
                });
            };
            r.recorded = c.recorded;
        }
        Ok(())
    }
}

/// Checks that a stored plasticity state has the live one's rule, variables and sizes.
fn plasticity_fits(stored: &PlasticityState, live: &PlasticityState) -> Result<(), String> {
    if stored.rule != live.rule {
        return Err(format!(
            "rule \"{}\" in the checkpoint, \"{}\" in the simulation",
            stored.rule, live.rule
        ));
    }
    let names = |a: &mut dyn Iterator<Item = &String>| a.cloned().collect::<Vec<_>>();
    let pairs = [
        (
            "per-synapse",
            names(&mut stored.synapse.iter().map(|c| &c.name)),
            names(&mut live.synapse.iter().map(|c| &c.name)),
        ),
        (
            "per-source",
            names(&mut stored.pre.iter().map(|c| &c.name)),
            names(&mut live.pre.iter().map(|c| &c.name)),
        ),
        (
            "per-source step",
            names(&mut stored.pre_steps.iter().map(|c| &c.name)),
            names(&mut live.pre_steps.iter().map(|c| &c.name)),
        ),
    ];
    for (what, a, b) in pairs {
        if a != b {
            return Err(format!(
                "{what} variables {a:?} in the checkpoint, {b:?} in the simulation"
            ));
        }
    }
    for (s, l) in stored.synapse.iter().zip(&live.synapse) {
        let (a, b): (Vec<usize>, Vec<usize>) = (
            s.blocks.iter().map(Vec::len).collect(),
            l.blocks.iter().map(Vec::len).collect(),
        );
        if a != b {
            return Err(format!(
                "variable \"{}\" has blocks of {a:?} synapses in the checkpoint, {b:?} in the simulation",
                s.name
            ));
        }
    }
    for (s, l) in stored.pre.iter().zip(&live.pre) {
        if s.values.len() != l.values.len() {
            return Err(format!(
                "variable \"{}\" has {} values in the checkpoint, {} in the simulation",
                s.name,
                s.values.len(),
                l.values.len()
            ));
        }
    }
    for (s, l) in stored.pre_steps.iter().zip(&live.pre_steps) {
        if s.values.len() != l.values.len() {
            return Err(format!(
                "variable \"{}\" has {} values in the checkpoint, {} in the simulation",
                s.name,
                s.values.len(),
                l.values.len()
            ));
        }
    }
    if stored.post.history.len() != live.post.history.len()
        || stored.post.trace.len() != live.post.trace.len()
        || stored.post.slots != live.post.slots
    {
        return Err(format!(
            "post-spike histories of {} neurons and a trace of {} values in {} slots in the checkpoint, {} neurons and {} values in {} slots in the simulation",
            stored.post.history.len(),
            stored.post.trace.len(),
            stored.post.slots,
            live.post.history.len(),
            live.post.trace.len(),
            live.post.slots
        ));
    }
    Ok(())
}

/// Orders stored columns as the model's variable table `names`, checking that they match
/// one to one and have one value per neuron.
fn columns<'a, T: Clone>(
    stored: &[StateColumn<T>],
    names: impl Iterator<Item = &'a str>,
    size: usize,
) -> Result<Vec<Vec<T>>, String> {
    let names: Vec<&str> = names.collect();
    let have: Vec<&str> = stored.iter().map(|c| c.name.as_str()).collect();
    let mut out = Vec::with_capacity(names.len());
    for n in &names {
        let Some(c) = stored.iter().find(|c| c.name == *n) else {
            return Err(format!(
                "state variable \"{n}\" is missing (the checkpoint has {have:?})"
            ));
        };
        if c.values.len() != size {
            return Err(format!(
                "state variable \"{n}\" has {} values for {size} neurons",
                c.values.len()
            ));
        }
        out.push(c.values.clone());
    }
    if let Some(extra) = have.iter().find(|h| !names.contains(h)) {
        return Err(format!(
            "the model has no state variable \"{extra}\" (it has {names:?})"
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Capture: world -> tree.

/// The tree of a checkpoint of `world`, borrowing its arrays.
pub(crate) fn capture<'a>(
    world: &'a World,
    run: &'a RunInfo,
    positions: &RecorderPositions,
) -> Result<Tree<'a>, String> {
    let clock = world
        .get_resource::<SimClock>()
        .ok_or("the world has no SimClock resource")?;
    let seed = world
        .get_resource::<RunSeed>()
        .ok_or("the world has no RunSeed resource (is the network built?)")?
        .0;
    let mut t = Tree::default();
    t.group(
        "/",
        attrs([
            ("format", CHECKPOINT_FORMAT.into()),
            ("version", CHECKPOINT_VERSION.into()),
            ("myelin_version", run.myelin_version.as_str().into()),
            ("scene_name", run.scene_name.as_str().into()),
            ("scene_hash", run.scene_hash.as_str().into()),
            ("step", clock.step.into()),
            ("time_ms", clock.time_ms().into()),
            ("dt", clock.dt.into()),
            ("seed", seed.into()),
            ("block_size", DELIVERY_BLOCK.into()),
        ]),
    );
    t.group(
        "/scene",
        attrs([
            ("name", run.scene_name.as_str().into()),
            ("file", run.scene_file.as_str().into()),
            ("hash", run.scene_hash.as_str().into()),
        ]),
    );
    t.dataset(
        "/scene/source",
        vec![run.scene_source.len()],
        Array::U8(Cow::Borrowed(run.scene_source.as_bytes())),
        attrs([("encoding", "utf-8".into())]),
    );
    t.group(
        "/run",
        attrs([
            ("end_step", run.end_step.into()),
            ("duration_ms", (run.end_step as f64 * clock.dt).into()),
            ("out_dir", run.out_dir.as_str().into()),
            ("checkpoint_every_steps", run.checkpoint_every_steps.into()),
            ("checkpoint_dir", run.checkpoint_dir.as_str().into()),
            ("keep", run.keep.into()),
        ]),
    );
    t.group(
        "/rng",
        attrs([
            ("algorithm", RNG_ALGORITHM.into()),
            ("seed", seed.into()),
            ("next_step", clock.step.into()),
            (
                "keying",
                "every draw is keyed by (seed, purpose, element, index, step): the state is the step counter"
                    .into(),
            ),
        ]),
    );
    capture_populations(world, &mut t)?;
    capture_projections(world, &mut t)?;
    capture_inputs(world, &mut t);
    capture_recorders(world, positions, &mut t)?;
    Ok(t)
}

fn population_name(world: &World, e: bevy_ecs::entity::Entity) -> String {
    world
        .get::<Population>(e)
        .map_or_else(|| format!("{e:?}"), |p| p.name.clone())
}

fn capture_populations<'a>(world: &'a World, t: &mut Tree<'a>) -> Result<(), String> {
    let index = world
        .get_resource::<PopulationIndex>()
        .ok_or("the world has no PopulationIndex (is the network built?)")?;
    let registry = world
        .get_resource::<ModelRegistry>()
        .ok_or("the world has no ModelRegistry")?;
    t.group("/populations", Attrs::new());
    for (i, &e) in index.order.iter().enumerate() {
        let get = |what: &str| format!("population entity {e:?} has no {what}");
        let pop = world
            .get::<Population>(e)
            .ok_or_else(|| get("Population"))?;
        let state = world
            .get::<NeuronState>(e)
            .ok_or_else(|| get("NeuronState"))?;
        let ring = world
            .get::<SynapticInput>(e)
            .ok_or_else(|| get("SynapticInput"))?;
        let spikes = world.get::<Spikes>(e).ok_or_else(|| get("Spikes"))?;
        let entry = registry
            .neurons
            .get(pop.model.as_str())
            .ok_or_else(|| format!("neuron model \"{}\" is not registered", pop.model))?;
        if entry.real.len() != state.real.len() || entry.int.len() != state.int.len() {
            return Err(format!(
                "population \"{}\" has {} real and {} integer columns, its model {} and {}",
                pop.name,
                state.real.len(),
                state.int.len(),
                entry.real.len(),
                entry.int.len()
            ));
        }
        let at = format!("/populations/{i}");
        let (n_blocks, block) = (ring.len().div_ceil(ring.block()), ring.block());
        t.group(
            &at,
            attrs([
                ("name", pop.name.as_str().into()),
                ("model", pop.model.as_str().into()),
                ("size", pop.size.into()),
                ("first_id", pop.first_id.into()),
                ("spikes_total", spikes.total.into()),
                ("blocks", n_blocks.into()),
            ]),
        );
        t.group(&format!("{at}/state"), Attrs::new());
        for (k, (v, col)) in entry.real.iter().zip(&state.real).enumerate() {
            t.dataset(
                &format!("{at}/state/{}", v.name),
                vec![col.len()],
                Array::F32(Cow::Borrowed(col)),
                attrs([
                    ("unit", v.unit.into()),
                    ("kind", "real".into()),
                    ("index", k.into()),
                ]),
            );
        }
        for (k, (v, col)) in entry.int.iter().zip(&state.int).enumerate() {
            t.dataset(
                &format!("{at}/state/{}", v.name),
                vec![col.len()],
                Array::U32(Cow::Borrowed(col)),
                attrs([
                    ("unit", v.unit.into()),
                    ("kind", "int".into()),
                    ("index", k.into()),
                ]),
            );
        }
        t.dataset(
            &format!("{at}/ring"),
            vec![n_blocks, ring.slots(), CHANNELS, block],
            // Pending arrivals summed in, in order: a restored ring continues each sum
            // exactly where the uninterrupted run's would.
            Array::F32(Cow::Owned(ring.folded())),
            attrs([
                ("slots", ring.slots().into()),
                ("layout", "[block][slot][channel][neuron in block]".into()),
            ]),
        );
        t.dataset(
            &format!("{at}/spikes_current"),
            vec![spikes.current.len()],
            Array::U32(Cow::Borrowed(&spikes.current)),
            Attrs::new(),
        );
        t.group(&format!("{at}/plasticity"), Attrs::new());
    }
    Ok(())
}

fn capture_projections<'a>(world: &'a World, t: &mut Tree<'a>) -> Result<(), String> {
    t.group("/projections", Attrs::new());
    let plastic: BTreeMap<u32, &PlasticityState> = world
        .try_query::<(&StableId, &PlasticityState)>()
        .map(|mut q| q.iter(world).map(|(id, s)| (id.0, s)).collect())
        .unwrap_or_default();
    let Some(mut q) = world.try_query::<(&Projection, &StableId, &Connectivity)>() else {
        return Ok(());
    };
    let mut list: Vec<(&Projection, &StableId, &Connectivity)> = q.iter(world).collect();
    list.sort_by_key(|(_, id, _)| id.0);
    for (p, id, conn) in list {
        let at = format!("/projections/{}", id.0);
        let n_target = world
            .get::<Population>(p.target)
            .map(|pop| pop.size)
            .ok_or_else(|| format!("projection \"{}\" targets no population", p.name))?;
        t.group(
            &at,
            attrs([
                ("name", p.name.as_str().into()),
                ("source", population_name(world, p.source).into()),
                ("target", population_name(world, p.target).into()),
                ("n_source", conn.n_source.into()),
                ("n_target", n_target.into()),
                ("n_synapses", conn.len().into()),
                ("max_delay", u64::from(conn.max_delay).into()),
                ("blocks", conn.n_blocks().into()),
            ]),
        );
        t.group(&format!("{at}/blocks"), Attrs::new());
        for (b, blk) in conn.blocks().enumerate() {
            let bat = format!("{at}/blocks/{b}");
            let n = blk.len();
            let row_ptr = blk.row_ptr();
            t.dataset(
                &format!("{bat}/row_ptr"),
                vec![row_ptr.len()],
                Array::U32(row_ptr),
                Attrs::new(),
            );
            t.dataset(
                &format!("{bat}/targets"),
                vec![n],
                Array::Synapses(blk, SynapseField::Target),
                Attrs::new(),
            );
            t.dataset(
                &format!("{bat}/weights"),
                vec![n],
                Array::Synapses(blk, SynapseField::Weight),
                attrs([("unit", "pA or mV (the target model's input unit)".into())]),
            );
            t.dataset(
                &format!("{bat}/delays"),
                vec![n],
                Array::Synapses(blk, SynapseField::Delay),
                attrs([("unit", "steps".into())]),
            );
        }
        match plastic.get(&id.0) {
            None => t.group(&format!("{at}/plasticity"), attrs([("rule", "".into())])),
            Some(state) => capture_plasticity(t, &format!("{at}/plasticity"), state),
        }
    }
    Ok(())
}

/// The datasets of a projection's plasticity state under `at`: per-synapse variables per
/// block (`<b>/<variable>`, beside `blocks/<b>/weights`), per-source variables
/// (`pre/<variable>`), the post-spike histories (`post/history_ptr`, `post/history`) and
/// the trace delay line (`post/trace`).
fn capture_plasticity<'a>(t: &mut Tree<'a>, at: &str, state: &'a PlasticityState) {
    t.group(
        at,
        attrs([
            ("rule", state.rule.as_str().into()),
            ("synapse_variables", state.synapse.len().into()),
        ]),
    );
    for (v, col) in state.synapse.iter().enumerate() {
        for (b, values) in col.blocks.iter().enumerate() {
            t.dataset(
                &format!("{at}/{b}/{}", col.name),
                vec![values.len()],
                Array::F32(Cow::Borrowed(values)),
                attrs([("unit", col.unit.as_str().into()), ("index", v.into())]),
            );
        }
    }
    t.group(&format!("{at}/pre"), Attrs::new());
    for (v, col) in state.pre.iter().enumerate() {
        t.dataset(
            &format!("{at}/pre/{}", col.name),
            vec![col.values.len()],
            Array::F64(Cow::Borrowed(&col.values)),
            attrs([
                ("unit", col.unit.as_str().into()),
                ("kind", "real".into()),
                ("index", v.into()),
            ]),
        );
    }
    for (v, col) in state.pre_steps.iter().enumerate() {
        t.dataset(
            &format!("{at}/pre/{}", col.name),
            vec![col.values.len()],
            Array::U64(Cow::Borrowed(&col.values)),
            attrs([
                ("unit", col.unit.as_str().into()),
                ("kind", "steps".into()),
                ("index", v.into()),
            ]),
        );
    }
    let post = &state.post;
    let mut ptr = Vec::with_capacity(post.history.len() + 1);
    ptr.push(0u64);
    let mut flat = Vec::new();
    for h in &post.history {
        flat.extend_from_slice(h);
        ptr.push(flat.len() as u64);
    }
    t.group(
        &format!("{at}/post"),
        attrs([("slots", post.slots.into()), ("block", post.block.into())]),
    );
    t.dataset(
        &format!("{at}/post/history_ptr"),
        vec![ptr.len()],
        Array::U64(Cow::Owned(ptr)),
        Attrs::new(),
    );
    t.dataset(
        &format!("{at}/post/history"),
        vec![flat.len()],
        Array::U64(Cow::Owned(flat)),
        attrs([("unit", "stamp (steps)".into())]),
    );
    t.dataset(
        &format!("{at}/post/trace"),
        vec![post.trace.len()],
        Array::F64(Cow::Borrowed(&post.trace)),
        attrs([("layout", "[block][slot][neuron in block]".into())]),
    );
}

fn capture_inputs(world: &World, t: &mut Tree<'_>) {
    t.group("/inputs", Attrs::new());
    let mut found: Vec<(u32, Attrs)> = Vec::new();
    let target_attrs = |kind: &str, target| {
        attrs([
            ("model", kind.into()),
            ("target", population_name(world, target).into()),
        ])
    };
    if let Some(mut q) = world.try_query::<(&StableId, &PoissonInput)>() {
        found.extend(
            q.iter(world)
                .map(|(id, p)| (id.0, target_attrs("poisson_generator", p.target))),
        );
    }
    if let Some(mut q) = world.try_query::<(&StableId, &DcInput)>() {
        found.extend(
            q.iter(world)
                .map(|(id, d)| (id.0, target_attrs("dc_generator", d.target))),
        );
    }
    if let Some(mut q) = world.try_query::<(&StableId, &SpikeGeneratorInput)>() {
        found.extend(q.iter(world).map(|(id, g)| {
            let mut a = target_attrs("spike_generator", g.target);
            a.insert("cursor".into(), Attr::U64(g.cursor as u64));
            a.insert("n_spikes".into(), Attr::U64(g.steps.len() as u64));
            (id.0, a)
        }));
    }
    for (id, a) in found {
        t.group(&format!("/inputs/{id}"), a);
    }
}

fn capture_recorders(
    world: &World,
    positions: &RecorderPositions,
    t: &mut Tree<'_>,
) -> Result<(), String> {
    t.group("/recorders", Attrs::new());
    let mut add = |label: &str, kind: &str, population, recorded: u64| -> Result<(), String> {
        if label.is_empty() || label.contains('/') || label == "." {
            return Err(format!(
                "recorder label \"{label}\" cannot name an HDF5 group"
            ));
        }
        let rows = positions.0.get(label).copied().unwrap_or(0);
        t.group(
            &format!("/recorders/{label}"),
            attrs([
                ("kind", kind.into()),
                ("population", population_name(world, population).into()),
                ("rows", rows.into()),
                ("recorded", recorded.into()),
            ]),
        );
        Ok(())
    };
    if let Some(mut q) = world.try_query::<&SpikeRecorder>() {
        for r in q.iter(world) {
            if !r.steps.is_empty() {
                return Err(format!(
                    "spike recorder \"{}\" has unflushed spikes; flush the recording first",
                    r.label
                ));
            }
            add(&r.label, SPIKES, r.population, r.recorded)?;
        }
    }
    if let Some(mut q) = world.try_query::<&StateRecorder>() {
        for r in q.iter(world) {
            if !r.steps.is_empty() {
                return Err(format!(
                    "state recorder \"{}\" has unflushed samples; flush the recording first",
                    r.label
                ));
            }
            add(&r.label, STATE, r.population, 0)?;
        }
    }
    if let Some(mut q) = world.try_query::<&WeightRecorder>() {
        for r in q.iter(world) {
            if !r.steps.is_empty() {
                return Err(format!(
                    "weight recorder \"{}\" has unflushed samples; flush the recording first",
                    r.label
                ));
            }
            let target = world
                .get::<Projection>(r.projection)
                .map(|p| p.target)
                .ok_or_else(|| format!("weight recorder \"{}\" records no projection", r.label))?;
            add(&r.label, WEIGHTS, target, 0)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Decode: tree -> checkpoint.

/// Reads typed items out of a tree, naming the file and item in every error.
struct Reader<'f> {
    file: &'f Path,
    tree: Tree<'static>,
}

impl Reader<'_> {
    fn err(&self, message: String) -> CheckpointError {
        CheckpointError::Layout {
            file: self.file.to_path_buf(),
            message,
        }
    }

    fn attr(&self, at: &str, name: &str) -> Result<&Attr, CheckpointError> {
        self.tree
            .groups
            .get(at)
            .or_else(|| self.tree.datasets.get(at).map(|n| &n.attrs))
            .ok_or_else(|| self.err(format!("group {at} is missing")))?
            .get(name)
            .ok_or_else(|| self.err(format!("attribute {name} of {at} is missing")))
    }

    fn u64(&self, at: &str, name: &str) -> Result<u64, CheckpointError> {
        match self.attr(at, name)? {
            Attr::U64(v) => Ok(*v),
            other => Err(self.err(format!(
                "attribute {name} of {at} is {other}, not an unsigned integer"
            ))),
        }
    }

    fn usize(&self, at: &str, name: &str) -> Result<usize, CheckpointError> {
        let v = self.u64(at, name)?;
        usize::try_from(v)
            .map_err(|_| self.err(format!("attribute {name} of {at} = {v} is too large")))
    }

    fn f64(&self, at: &str, name: &str) -> Result<f64, CheckpointError> {
        match self.attr(at, name)? {
            Attr::F64(v) => Ok(*v),
            other => Err(self.err(format!("attribute {name} of {at} is {other}, not a float"))),
        }
    }

    fn str(&self, at: &str, name: &str) -> Result<String, CheckpointError> {
        match self.attr(at, name)? {
            Attr::Str(v) => Ok(v.clone()),
            other => Err(self.err(format!("attribute {name} of {at} is {other}, not a string"))),
        }
    }

    /// Member names of group `at` that are groups, ordered as numbers when they all are.
    fn child_groups(&self, at: &str) -> Vec<String> {
        let prefix = format!("{at}/");
        let mut out: Vec<String> = self
            .tree
            .groups
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect();
        out.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        out
    }

    /// Dataset names directly in group `at`.
    fn child_datasets(&self, at: &str) -> Vec<String> {
        let prefix = format!("{at}/");
        self.tree
            .datasets
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect()
    }

    fn take(&mut self, at: &str, len: Option<usize>) -> Result<Array<'static>, CheckpointError> {
        let node = self
            .tree
            .datasets
            .remove(at)
            .ok_or_else(|| self.err(format!("dataset {at} is missing")))?;
        if let Some(n) = len
            && node.data.len() != n
        {
            return Err(self.err(format!(
                "dataset {at} has {} elements, expected {n}",
                node.data.len()
            )));
        }
        Ok(node.data)
    }
}

macro_rules! take_as {
    ($name:ident, $variant:ident, $t:ty, $tname:literal) => {
        fn $name(
            r: &mut Reader<'_>,
            at: &str,
            len: Option<usize>,
        ) -> Result<Vec<$t>, CheckpointError> {
            match r.take(at, len)? {
                Array::$variant(v) => Ok(v.into_owned()),
                other => Err(r.err(format!(
                    "dataset {at} holds {}, expected {}",
                    other.dtype_name(),
                    $tname
                ))),
            }
        }
    };
}
take_as!(take_u8, U8, u8, "u8");
take_as!(take_u16, U16, u16, "u16");
take_as!(take_u32, U32, u32, "u32");
take_as!(take_f32, F32, f32, "f32");
take_as!(take_u64, U64, u64, "u64");
take_as!(take_f64, F64, f64, "f64");

/// Decodes a verified tree read from `file`.
pub(crate) fn decode(file: &Path, tree: Tree<'static>) -> Result<Checkpoint, CheckpointError> {
    let mut r = Reader { file, tree };
    let digest = r.str("/", super::tree::CONTENT_DIGEST_ATTR)?;
    let source = take_u8(&mut r, "/scene/source", None)?;
    let scene_source =
        String::from_utf8(source).map_err(|e| r.err(format!("/scene/source is not UTF-8: {e}")))?;
    let run = RunInfo {
        scene_name: r.str("/", "scene_name")?,
        scene_file: r.str("/scene", "file")?,
        scene_source,
        scene_hash: r.str("/", "scene_hash")?,
        end_step: r.u64("/run", "end_step")?,
        out_dir: r.str("/run", "out_dir")?,
        checkpoint_every_steps: r.u64("/run", "checkpoint_every_steps")?,
        checkpoint_dir: r.str("/run", "checkpoint_dir")?,
        keep: r.u64("/run", "keep")?,
        myelin_version: r.str("/", "myelin_version")?,
    };
    let block_size = r.usize("/", "block_size")?;
    if block_size != DELIVERY_BLOCK {
        return Err(r.err(format!(
            "written with delivery blocks of {block_size} neurons, this build uses {DELIVERY_BLOCK}"
        )));
    }
    let mut populations = Vec::new();
    for name in r.child_groups("/populations") {
        populations.push(decode_population(&mut r, &format!("/populations/{name}"))?);
    }
    let mut projections = Vec::new();
    for name in r.child_groups("/projections") {
        projections.push(decode_projection(&mut r, &format!("/projections/{name}"))?);
    }
    let mut inputs = Vec::new();
    for name in r.child_groups("/inputs") {
        let at = format!("/inputs/{name}");
        let index = name
            .parse::<usize>()
            .map_err(|_| r.err(format!("group {at} is not named by an input index")))?;
        let cursor = match r.attr(&at, "cursor") {
            Ok(_) => Some(r.u64(&at, "cursor")?),
            Err(_) => None,
        };
        inputs.push(InputCheckpoint {
            index,
            model: r.str(&at, "model")?,
            target: r.str(&at, "target")?,
            cursor,
        });
    }
    let mut recorders = Vec::new();
    for label in r.child_groups("/recorders") {
        let at = format!("/recorders/{label}");
        recorders.push(RecorderCheckpoint {
            kind: r.str(&at, "kind")?,
            population: r.str(&at, "population")?,
            rows: r.u64(&at, "rows")?,
            recorded: r.u64(&at, "recorded")?,
            label,
        });
    }
    Ok(Checkpoint {
        file: file.to_path_buf(),
        run,
        step: r.u64("/", "step")?,
        dt: r.f64("/", "dt")?,
        seed: r.u64("/", "seed")?,
        block_size,
        populations,
        projections,
        inputs,
        recorders,
        digest,
    })
}

fn decode_population(
    r: &mut Reader<'_>,
    at: &str,
) -> Result<PopulationCheckpoint, CheckpointError> {
    let size = r.usize(at, "size")?;
    let mut real = Vec::new();
    let mut int = Vec::new();
    let state_at = format!("{at}/state");
    let mut vars = Vec::new();
    for var in r.child_datasets(&state_at) {
        let k = r.u64(&format!("{state_at}/{var}"), "index")?;
        vars.push((k, var));
    }
    vars.sort();
    for (_, var) in vars {
        let dat = format!("{state_at}/{var}");
        let unit = r.str(&dat, "unit")?;
        match r.str(&dat, "kind")?.as_str() {
            "real" => real.push(StateColumn {
                values: take_f32(r, &dat, Some(size))?,
                name: var,
                unit,
            }),
            "int" => int.push(StateColumn {
                values: take_u32(r, &dat, Some(size))?,
                name: var,
                unit,
            }),
            other => {
                return Err(r.err(format!(
                    "attribute kind of {dat} is \"{other}\", not \"real\" or \"int\""
                )));
            }
        }
    }
    let ring_at = format!("{at}/ring");
    let ring_slots = r.usize(&ring_at, "slots")?;
    Ok(PopulationCheckpoint {
        name: r.str(at, "name")?,
        model: r.str(at, "model")?,
        size,
        first_id: r.u64(at, "first_id")?,
        real,
        int,
        ring: take_f32(r, &ring_at, None)?,
        ring_slots,
        spikes_total: r.u64(at, "spikes_total")?,
        spikes_current: take_u32(r, &format!("{at}/spikes_current"), None)?,
    })
}

fn decode_projection(
    r: &mut Reader<'_>,
    at: &str,
) -> Result<ProjectionCheckpoint, CheckpointError> {
    let n_source = r.usize(at, "n_source")?;
    let n_blocks = r.usize(at, "blocks")?;
    let mut blocks = Vec::with_capacity(n_blocks);
    for b in 0..n_blocks {
        let bat = format!("{at}/blocks/{b}");
        let row_ptr = take_u32(r, &format!("{bat}/row_ptr"), Some(n_source + 1))?;
        let target = take_u16(r, &format!("{bat}/targets"), None)?;
        let n = target.len();
        let weight = take_f32(r, &format!("{bat}/weights"), Some(n))?;
        let delay = take_u16(r, &format!("{bat}/delays"), Some(n))?;
        let synapses = target
            .into_iter()
            .zip(weight)
            .zip(delay)
            .map(|((target, weight), delay)| Synapse {
                target,
                delay,
                weight,
            })
            .collect();
        blocks.push(SynapseBlock::new(row_ptr, synapses));
    }
    let pat = format!("{at}/plasticity");
    let plasticity = match r.attr(&pat, "rule") {
        Ok(_) => {
            let rule = r.str(&pat, "rule")?;
            if rule.is_empty() {
                None
            } else {
                Some(decode_plasticity(r, &pat, rule, &blocks, n_source)?)
            }
        }
        // Not captured (a partial tree, as for warm starts).
        Err(_) => None,
    };
    Ok(ProjectionCheckpoint {
        name: r.str(at, "name")?,
        source: r.str(at, "source")?,
        target: r.str(at, "target")?,
        n_target: r.usize(at, "n_target")?,
        connectivity: super::connectivity_from_blocks(blocks, n_source),
        plasticity,
    })
}

/// Reads the plasticity state of a projection (group `at`) with the given synapse blocks.
fn decode_plasticity(
    r: &mut Reader<'_>,
    at: &str,
    rule: String,
    blocks: &[SynapseBlock],
    n_source: usize,
) -> Result<PlasticityState, CheckpointError> {
    let n_vars = r.usize(at, "synapse_variables")?;
    let mut synapse: Vec<SynapseColumn> = Vec::with_capacity(n_vars);
    for (b, blk) in blocks.iter().enumerate() {
        let bat = format!("{at}/{b}");
        let mut vars = Vec::new();
        for var in r.child_datasets(&bat) {
            vars.push((r.u64(&format!("{bat}/{var}"), "index")?, var));
        }
        vars.sort();
        if vars.len() != n_vars {
            return Err(r.err(format!(
                "group {bat} holds {} per-synapse variables, expected {n_vars}",
                vars.len()
            )));
        }
        for (v, (_, var)) in vars.into_iter().enumerate() {
            let dat = format!("{bat}/{var}");
            let unit = r.str(&dat, "unit")?;
            let values = take_f32(r, &dat, Some(blk.len()))?;
            if b == 0 {
                synapse.push(SynapseColumn {
                    name: var,
                    unit,
                    blocks: Vec::with_capacity(blocks.len()),
                });
            } else if synapse[v].name != var {
                return Err(r.err(format!(
                    "dataset {dat}: block {b} has variable \"{var}\" where block 0 has \"{}\"",
                    synapse[v].name
                )));
            }
            synapse[v].blocks.push(values);
        }
    }
    let pre_at = format!("{at}/pre");
    let mut vars = Vec::new();
    for var in r.child_datasets(&pre_at) {
        let dat = format!("{pre_at}/{var}");
        vars.push((r.str(&dat, "kind")?, r.u64(&dat, "index")?, var));
    }
    vars.sort();
    let (mut pre, mut pre_steps) = (Vec::new(), Vec::new());
    for (kind, _, var) in vars {
        let dat = format!("{pre_at}/{var}");
        let unit = r.str(&dat, "unit")?;
        match kind.as_str() {
            "real" => pre.push(Column {
                values: take_f64(r, &dat, Some(n_source))?,
                name: var,
                unit,
            }),
            "steps" => pre_steps.push(Column {
                values: take_u64(r, &dat, Some(n_source))?,
                name: var,
                unit,
            }),
            other => {
                return Err(r.err(format!(
                    "attribute kind of {dat} is \"{other}\", not \"real\" or \"steps\""
                )));
            }
        }
    }
    let post_at = format!("{at}/post");
    let slots = r.usize(&post_at, "slots")?;
    let block = r.usize(&post_at, "block")?;
    let ptr = take_u64(r, &format!("{post_at}/history_ptr"), None)?;
    let flat = take_u64(r, &format!("{post_at}/history"), None)?;
    let trace = take_f64(r, &format!("{post_at}/trace"), None)?;
    let ok = ptr.first() == Some(&0)
        && ptr.last().map(|&x| x as usize) == Some(flat.len())
        && ptr.windows(2).all(|w| w[0] <= w[1]);
    if !ok {
        return Err(r.err(format!(
            "{post_at}/history_ptr does not run from 0 to the {} stored spikes",
            flat.len()
        )));
    }
    let history = ptr
        .windows(2)
        .map(|w| flat[w[0] as usize..w[1] as usize].to_vec())
        .collect();
    Ok(PlasticityState {
        rule,
        synapse,
        pre,
        pre_steps,
        post: myelin_components::PostSpikes {
            history,
            tail: Vec::new(),
            trace,
            slots,
            block,
            decay: 0.0,
            kind: myelin_components::TraceKind::None,
        },
    })
}

/// Decodes the projection at `at` of a partial tree (its group, its blocks and the root
/// attributes).
pub(crate) fn stored_projection(
    file: &Path,
    tree: Tree<'static>,
    at: &str,
) -> Result<StoredProjection, CheckpointError> {
    let mut r = Reader { file, tree };
    let dt = r.f64("/", "dt")?;
    let block_size = r.usize("/", "block_size")?;
    let n_source = r.usize(at, "n_source")?;
    let p = decode_projection(&mut r, at)?;
    Ok(StoredProjection {
        file: file.to_path_buf(),
        name: p.name,
        source: p.source,
        target: p.target,
        n_source,
        n_target: p.n_target,
        dt,
        block_size,
        connectivity: p.connectivity,
    })
}
