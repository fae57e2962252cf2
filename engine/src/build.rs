//! Instantiation of a network description as entities.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bevy_ecs::prelude::*;
use myelin_components::{
    BlockRef, Connectivity, DELIVERY_BLOCK, ExternalCurrent, NeuronState, Population, Projection,
    SpikeRecorder, Spikes, StableId, StateRecorder, SynapticInput, WeightRecorder, block_count,
};

use crate::construct::{ArrayPool, RuleContext, build_connectivity_local};
use crate::error::BuildError;
use crate::model::InputContext;
use crate::network::{NetworkSpec, RecorderSpec};
use crate::params::Params;
use crate::registry::ModelRegistry;
use crate::rng::{Purpose, Stream};
use crate::validate::validate;

/// Populations by name, in scene order.
#[derive(Resource, Clone, Debug, Default)]
pub struct PopulationIndex {
    /// Entity of each population, in scene order.
    pub order: Vec<Entity>,
    /// Entity of each population by name.
    pub by_name: HashMap<String, Entity>,
}

/// For every population that receives synapses, its incoming projections in scene order:
/// the order in which delivery sums them.
#[derive(Resource, Clone, Debug, Default)]
pub struct DeliveryPlan {
    /// `(target population, incoming projections)`.
    pub incoming: Vec<(Entity, Vec<Entity>)>,
}

/// Connectivity supplied instead of drawn: the hook used to restore a checkpoint and to
/// warm-start projections from one.
///
/// Insert it as a resource before building; [`build_network`] takes it out of the world
/// and, for every projection index (scene order) it holds, uses that connectivity instead
/// of drawing one with the projection's rule. Each supplied connectivity is checked
/// against the scene ([`check_connectivity`]); a mismatch is a [`BuildError::Spec`] at the
/// projection.
#[derive(Resource, Clone, Debug, Default)]
pub struct SuppliedConnectivity(pub BTreeMap<usize, Connectivity>);

/// Checks that `conn` is a well-formed connectivity from `n_source` neurons onto
/// `n_target` neurons in blocks of `block`: one block per target block, `n_source + 1`
/// ascending row pointers per block ending at the block's synapse count, block-local
/// targets inside their block and delays of at least one step. Returns the longest delay
/// [steps]; the error says what does not fit.
pub fn check_connectivity(
    conn: &Connectivity,
    n_source: usize,
    n_target: usize,
    block: usize,
) -> Result<u16, String> {
    if conn.n_source != n_source {
        return Err(format!(
            "it has {} source neurons, the source population has {n_source}",
            conn.n_source
        ));
    }
    let blocks = n_target.div_ceil(block);
    if conn.n_blocks() != blocks {
        return Err(format!(
            "it has {} target blocks, a target population of {n_target} has {blocks}",
            conn.n_blocks()
        ));
    }
    let mut max_delay = 1u16;
    for (b, blk) in conn.blocks().enumerate() {
        let len = block.min(n_target - b * block);
        max_delay =
            max_delay.max(check_block(blk, n_source, len).map_err(|m| format!("block {b}: {m}"))?);
    }
    Ok(max_delay)
}

/// [`check_connectivity`] for one block of `len` targets; returns its longest delay.
fn check_block(blk: BlockRef<'_>, n_source: usize, len: usize) -> Result<u16, String> {
    let n = blk.len();
    let row_ptr = blk.row_ptr();
    if row_ptr.len() != n_source + 1 {
        return Err(format!(
            "{} row pointers for {n_source} source neurons (expected {})",
            row_ptr.len(),
            n_source + 1
        ));
    }
    if row_ptr.first() != Some(&0) || row_ptr.last().map(|&x| x as usize) != Some(n) {
        return Err(format!(
            "row pointers must run from 0 to the synapse count {n}"
        ));
    }
    if row_ptr.windows(2).any(|w| w[0] > w[1]) {
        return Err("row pointers are not ascending".into());
    }
    if let Some(t) = blk.targets().find(|&t| usize::from(t) >= len) {
        return Err(format!("target {t} is outside the block of {len} neurons"));
    }
    if blk.delays().any(|d| d == 0) {
        return Err("a delay of 0 steps (delays are at least one step)".into());
    }
    Ok(blk.delays().max().unwrap_or(1))
}

/// The neurons of each population (scene order) whose incoming synapses this process
/// builds: an MPI rank's own part of the network. Insert it as a resource before building;
/// [`build_network`] then draws, for every projection, only the synapses onto these
/// neurons (exactly those a full build gives them, each target drawing from its own
/// streams), and none onto the others. Without it every neuron is local. It stays in the
/// world: the neuron update skips the delivery blocks that hold no local neuron.
#[derive(Resource, Clone, Debug, Default)]
pub struct LocalNeurons(pub Vec<std::ops::Range<usize>>);

/// The input model restricted to a rank's own neurons under [`LocalNeurons`].
const POISSON_INPUT: &str = "poisson_generator";

/// What was built, and how long each construction phase took.
#[derive(Clone, Debug, Default)]
pub struct BuildReport {
    /// Number of neurons.
    pub neurons: usize,
    /// Number of synapses.
    pub synapses: usize,
    /// Bytes of connectivity (synapses and row pointers).
    pub synapse_bytes: usize,
    /// Bytes of ring buffers.
    pub ring_bytes: usize,
    /// Bytes of plasticity state (per-synapse and per-neuron variables, spike histories).
    pub plasticity_bytes: usize,
    /// Seconds creating populations and their state.
    pub create_s: f64,
    /// Seconds drawing connectivity.
    pub connect_s: f64,
    /// Seconds preparing ring buffers, inputs and recorders.
    pub prepare_s: f64,
}

/// Builds `spec` into `world`, whose [`ModelRegistry`] must hold every model it names.
pub fn build_network(world: &mut World, spec: &NetworkSpec) -> Result<BuildReport, BuildError> {
    let reg = world
        .get_resource::<ModelRegistry>()
        .cloned()
        .unwrap_or_default();
    let errs = validate(spec, &reg);
    if !errs.is_empty() {
        return Err(BuildError::Spec(errs));
    }
    let (dt, seed) = (spec.dt, spec.seed);
    let mut supplied = world
        .remove_resource::<SuppliedConnectivity>()
        .unwrap_or_default()
        .0;
    if let Some(&k) = supplied.keys().find(|&&k| k >= spec.projections.len()) {
        return Err(BuildError::Spec(vec![crate::SpecError::new(
            crate::SpecPath::item("projections", k),
            format!(
                "connectivity is supplied for projection {k}, but the network has {} projections",
                spec.projections.len()
            ),
        )]));
    }
    let local = world.get_resource::<LocalNeurons>().cloned();
    if let Some(l) = &local
        && l.0.len() != spec.populations.len()
    {
        return Err(BuildError::Spec(vec![crate::SpecError::new(
            crate::SpecPath::default(),
            format!(
                "local neuron ranges are given for {} populations, the network has {}",
                l.0.len(),
                spec.populations.len()
            ),
        )]));
    }
    let mut report = BuildReport::default();

    let t0 = Instant::now();
    let mut index = PopulationIndex::default();
    let mut first_id = 0u64;
    for (k, p) in spec.populations.iter().enumerate() {
        let entry = &reg.neurons[p.model.as_str()];
        let params = Params::resolve(entry.parameters, &p.params).expect("validated");
        let mut e = world.spawn((
            Population {
                name: p.name.clone(),
                size: p.size,
                model: p.model.clone(),
                first_id,
            },
            StableId(k as u32),
            Spikes::new(block_count(p.size)),
            ExternalCurrent::new(p.size),
        ));
        let offsets = (entry.spawn)(&params, dt, p.size, &mut e).map_err(|i| {
            BuildError::Spec(vec![crate::SpecError::new(
                crate::SpecPath::item("populations", k)
                    .field("params")
                    .key(i.param),
                i.message,
            )])
        })?;
        if !p.initial.is_empty() {
            let mut state = e.get_mut::<NeuronState>().expect("spawned with state");
            for (var, dist) in &p.initial {
                let (_, v) = entry.variable(var).expect("validated");
                let off = offsets[v];
                for (i, x) in state.real[v].iter_mut().enumerate() {
                    let mut s = Stream::new(seed, Purpose::Init, k as u32, i as u32, v as u64);
                    *x = (dist.sample(&mut s) - off) as f32;
                }
            }
        }
        let id = e.id();
        index.order.push(id);
        index.by_name.insert(p.name.clone(), id);
        first_id += p.size as u64;
    }
    report.neurons = first_id as usize;
    report.create_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let size_of = |name: &str| {
        spec.populations
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.size)
            .expect("validated")
    };
    let mut max_delay: HashMap<Entity, u16> = HashMap::new();
    let mut plan: Vec<(Entity, Vec<Entity>)> = Vec::new();
    let mut projection_entities: Vec<Entity> = Vec::new();
    // Blocks of static projections of a whole network are stored source after source
    // once built (below); those of plastic ones and of a rank's part are kept.
    let transposing = ArrayPool::for_transposing();
    let kept = ArrayPool::for_blocks();
    for (k, j) in spec.projections.iter().enumerate() {
        let rule = &reg.rules[j.rule.as_str()];
        let params = Params::resolve(rule.parameters, &j.rule_params).expect("validated");
        let ctx = RuleContext {
            n_source: size_of(&j.source) as u32,
            n_target: size_of(&j.target) as u32,
            same_population: j.source == j.target,
            autapses: j.autapses,
            multapses: j.multapses,
            seed,
            projection: k as u32,
        };
        // Static projections of a whole network are stored source after source, the
        // layout delivery reads fastest (`BySource`); plastic ones, whose weights change
        // block by block, and a rank's part keep one array per block.
        let by_source = j.plasticity.is_none() && local.is_none();
        let mut conn: Connectivity = match supplied.remove(&k) {
            Some(mut conn) => {
                conn.max_delay = check_connectivity(
                    &conn,
                    ctx.n_source as usize,
                    ctx.n_target as usize,
                    DELIVERY_BLOCK,
                )
                .map_err(|m| {
                    BuildError::Spec(vec![crate::SpecError::new(
                        crate::SpecPath::item("projections", k),
                        format!("the supplied connectivity does not fit: {m}"),
                    )])
                })?;
                conn
            }
            None => {
                let r = (rule.create)(&params, &ctx);
                let targets = match &local {
                    Some(l) => {
                        let t = spec
                            .populations
                            .iter()
                            .position(|p| p.name == j.target)
                            .expect("validated");
                        l.0[t].clone()
                    }
                    None => 0..ctx.n_target as usize,
                };
                build_connectivity_local(
                    r.as_ref(),
                    &ctx,
                    &j.weight,
                    &j.delay,
                    dt,
                    DELIVERY_BLOCK,
                    targets,
                    if by_source { &transposing } else { &kept },
                )
            }
        };
        // A projection too large for `u32` offsets keeps its blocks.
        if by_source && let Ok(blocks) = conn.store_by_source() {
            transposing.give(blocks);
        }
        report.synapses += conn.len();
        report.synapse_bytes += conn.memory_bytes();
        let (source, target) = (index.by_name[&j.source], index.by_name[&j.target]);
        let md = max_delay.entry(target).or_insert(1);
        *md = (*md).max(conn.max_delay);
        let name = j.display_name();
        let mut ent = world.spawn((
            Projection {
                name,
                source,
                target,
            },
            StableId(k as u32),
        ));
        if let Some(pl) = &j.plasticity {
            let entry = &reg.plasticity[pl.model.as_str()];
            let params = Params::resolve(entry.parameters, &pl.params).expect("validated");
            (entry.spawn)(&params, dt, &conn, ctx.n_target as usize, &mut ent).map_err(|i| {
                BuildError::Spec(vec![crate::SpecError::new(
                    crate::SpecPath::item("projections", k)
                        .field("plasticity")
                        .field("params")
                        .key(i.param),
                    i.message,
                )])
            })?;
            report.plasticity_bytes += ent
                .get::<myelin_components::PlasticityState>()
                .map_or(0, |s| s.memory_bytes());
        }
        ent.insert(conn);
        let e = ent.id();
        projection_entities.push(e);
        match plan.iter_mut().find(|(t, _)| *t == target) {
            Some((_, v)) => v.push(e),
            None => plan.push((target, vec![e])),
        }
    }
    report.connect_s = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    for (k, inp) in spec.inputs.iter().enumerate() {
        let entry = &reg.inputs[inp.model.as_str()];
        let params = Params::resolve(entry.parameters, &inp.params).expect("validated");
        let target = index.by_name[&inp.target];
        let size = size_of(&inp.target);
        let ctx = InputContext {
            dt,
            seed,
            id: k as u32,
            target,
            target_size: size,
            neurons: inp.neurons.resolve(size).expect("validated"),
        };
        let md = max_delay.entry(target).or_insert(1);
        *md = (*md).max((entry.max_delay)(&params, dt));
        // On a rank, Poisson input drives only the rank's own neurons: its draws are keyed
        // by neuron index, so a selection leaves each neuron's input unchanged (the other
        // neurons' spikes are discarded anyway).
        let mut ctx = ctx;
        if let Some(l) = &local
            && inp.model == POISSON_INPUT
        {
            let t = spec
                .populations
                .iter()
                .position(|p| p.name == inp.target)
                .expect("validated");
            let r = l.0[t].clone();
            if r.len() < size {
                let sel: Vec<u32> = match ctx.neurons.take() {
                    None => r.map(|i| i as u32).collect(),
                    Some(v) => v
                        .into_iter()
                        .filter(|&i| r.contains(&(i as usize)))
                        .collect(),
                };
                if sel.is_empty() {
                    continue;
                }
                ctx.neurons = Some(sel);
            }
        }
        if entry.drives_current {
            world
                .get_mut::<ExternalCurrent>(target)
                .expect("population entity")
                .driven = true;
        }
        let mut e = world.spawn(StableId(k as u32));
        (entry.spawn)(&params, &ctx, &mut e);
    }
    for (&e, p) in index.order.iter().zip(&spec.populations) {
        let ring = SynapticInput::new(
            p.size,
            DELIVERY_BLOCK,
            usize::from(*max_delay.get(&e).unwrap_or(&1)),
        );
        report.ring_bytes += ring.buffer_bytes();
        world.entity_mut(e).insert(ring);
    }
    for r in &spec.recorders {
        if let RecorderSpec::Weights {
            projection,
            interval,
            targets,
            ..
        } = r
        {
            let k = spec
                .projections
                .iter()
                .position(|p| &p.display_name() == projection)
                .expect("validated");
            let e = projection_entities[k];
            let n_target = size_of(&spec.projections[k].target);
            let mask = targets.resolve(n_target).expect("validated").map(|v| {
                let mut m = vec![false; n_target];
                v.iter().for_each(|&i| m[i as usize] = true);
                m
            });
            let conn = world
                .get::<Connectivity>(e)
                .expect("spawned with connectivity");
            let (mut sources, mut tgts) = (Vec::new(), Vec::new());
            for (b, blk) in conn.blocks().enumerate() {
                for i in 0..conn.n_source {
                    for s in blk.row_synapses(i).iter() {
                        let t = b * DELIVERY_BLOCK + usize::from(s.target);
                        if mask.as_ref().is_none_or(|m| m[t]) {
                            sources.push(i as u32);
                            tgts.push(t as u32);
                        }
                    }
                }
            }
            world.spawn(WeightRecorder {
                label: r.label(),
                projection: e,
                mask,
                n_synapses: sources.len(),
                interval: (interval / dt).round() as u64,
                sources,
                targets: tgts,
                steps: Vec::new(),
                values: Vec::new(),
            });
            continue;
        }
        let pop_name = r.population().expect("a population recorder");
        let population = index.by_name[pop_name];
        let size = size_of(pop_name);
        let sel = r.neurons().resolve(size).expect("validated");
        match r {
            RecorderSpec::Spikes { .. } => {
                let mask = sel.map(|v| {
                    let mut m = vec![false; size];
                    v.iter().for_each(|&i| m[i as usize] = true);
                    m
                });
                world.spawn(SpikeRecorder {
                    label: r.label(),
                    population,
                    mask,
                    steps: Vec::new(),
                    senders: Vec::new(),
                    recorded: 0,
                });
            }
            RecorderSpec::State {
                variable, interval, ..
            } => {
                let model = &spec
                    .populations
                    .iter()
                    .find(|p| p.name == pop_name)
                    .expect("validated")
                    .model;
                let entry = &reg.neurons[model.as_str()];
                let (real, column) = entry.variable(variable).expect("validated");
                let var = if real {
                    entry.real[column]
                } else {
                    entry.int[column]
                };
                let params = Params::resolve(
                    entry.parameters,
                    &spec
                        .populations
                        .iter()
                        .find(|p| p.name == pop_name)
                        .expect("validated")
                        .params,
                )
                .expect("validated");
                // The storage offset of a real variable, from a probe spawn of one neuron.
                let offset = if real {
                    let mut probe = world.spawn_empty();
                    let offs = (entry.spawn)(&params, dt, 1, &mut probe).expect("validated");
                    probe.despawn();
                    offs[column]
                } else {
                    0.0
                };
                world.spawn(StateRecorder {
                    label: r.label(),
                    population,
                    variable: variable.clone(),
                    unit: var.unit.to_string(),
                    real,
                    column,
                    offset,
                    neurons: sel.unwrap_or_else(|| (0..size as u32).collect()),
                    interval: (interval / dt).round() as u64,
                    steps: Vec::new(),
                    values: Vec::new(),
                });
            }
            RecorderSpec::Weights { .. } => unreachable!("handled above"),
        }
    }
    world.insert_resource(DeliveryPlan { incoming: plan });
    world.insert_resource(crate::clock::RunSeed(seed));
    world.insert_resource(index);
    report.prepare_s = t2.elapsed().as_secs_f64();
    Ok(report)
}
