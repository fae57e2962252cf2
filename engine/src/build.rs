//! Instantiation of a network description as entities.

use std::collections::HashMap;
use std::time::Instant;

use bevy_ecs::prelude::*;
use myelin_components::{
    Connectivity, DELIVERY_BLOCK, ExternalCurrent, NeuronState, Population, Projection,
    SpikeRecorder, Spikes, StableId, StateRecorder, SynapticInput, block_count,
};

use crate::construct::{RuleContext, build_connectivity};
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
        let r = (rule.create)(&params, &ctx);
        let conn: Connectivity =
            build_connectivity(r.as_ref(), &ctx, &j.weight, &j.delay, dt, DELIVERY_BLOCK);
        report.synapses += conn.len();
        report.synapse_bytes += conn.memory_bytes();
        let (source, target) = (index.by_name[&j.source], index.by_name[&j.target]);
        let md = max_delay.entry(target).or_insert(1);
        *md = (*md).max(conn.max_delay);
        let name = j
            .name
            .clone()
            .unwrap_or_else(|| format!("{}->{}", j.source, j.target));
        let e = world
            .spawn((
                Projection {
                    name,
                    source,
                    target,
                },
                StableId(k as u32),
                conn,
            ))
            .id();
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
        report.ring_bytes += ring.data.len() * 4;
        world.entity_mut(e).insert(ring);
    }
    for r in &spec.recorders {
        let population = index.by_name[r.population()];
        let size = size_of(r.population());
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
                    .find(|p| p.name == r.population())
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
                        .find(|p| p.name == r.population())
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
        }
    }
    world.insert_resource(DeliveryPlan { incoming: plan });
    world.insert_resource(crate::clock::RunSeed(seed));
    world.insert_resource(index);
    report.prepare_s = t2.elapsed().as_secs_f64();
    Ok(report)
}
