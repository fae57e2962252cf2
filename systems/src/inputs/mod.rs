//! Inputs: Poisson generators, DC generators and spike generators. Their systems run in
//! [`SimSystems::Inputs`], writing into the targets' ring buffers and external currents.

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use myelin_components::{
    DcInput, ExternalCurrent, PoissonInput, RingBlockMut, SpikeGeneratorInput, StableId,
    SynapticInput, channel_of,
};
use myelin_engine::rng::{
    POISSON_BATCH, Purpose, Stream, poisson, poisson_counts_lanes, poisson_thresholds,
};
use myelin_engine::{
    InputContext, InputModel, ParamIssue, ParamSpec, Params, Range, RegistryAppExt, RunSeed,
    SimClock, SimStep, SimSystems, delay_steps, on_cpu,
};

/// First step at or after `ms` [ms].
fn step_at(ms: f64, dt: f64) -> u64 {
    if ms.is_infinite() {
        u64::MAX
    } else {
        (ms / dt - 1e-9).ceil().max(0.0) as u64
    }
}

fn check_delay(p: &Params, dt: f64) -> Result<(), ParamIssue> {
    let d = p.get("delay");
    if d < dt / 2.0 {
        return Err(ParamIssue::new(
            "delay",
            format!("delay = {d} ms is shorter than half a time step (dt = {dt} ms)"),
        ));
    }
    Ok(())
}

fn check_window(p: &Params) -> Result<(), ParamIssue> {
    if p.get("stop") < p.get("start") {
        return Err(ParamIssue::new(
            "stop",
            format!(
                "stop = {} ms is before start = {} ms",
                p.get("stop"),
                p.get("start")
            ),
        ));
    }
    Ok(())
}

/// Calls `f` with the block-local index of every selected neuron of block
/// `first..first + len` (all of them when `sel` is `None`), ascending.
#[inline]
fn for_each_selected(sel: &Option<Vec<u32>>, first: usize, len: usize, mut f: impl FnMut(usize)) {
    match sel {
        None => (0..len).for_each(f),
        Some(v) => {
            let lo = v.partition_point(|&i| (i as usize) < first);
            let hi = v.partition_point(|&i| (i as usize) < first + len);
            v[lo..hi].iter().for_each(|&i| f(i as usize - first));
        }
    }
}

/// NEST's `poisson_generator`: an independent Poisson train into every target neuron.
pub struct PoissonGenerator;

impl InputModel for PoissonGenerator {
    const NAME: &'static str = "poisson_generator";
    const PARAMETERS: &'static [ParamSpec] = &[
        ParamSpec::required(
            "rate",
            "Hz",
            Range::NON_NEGATIVE,
            "mean rate of each neuron's train",
        ),
        ParamSpec::required(
            "weight",
            "pA or mV",
            Range::ANY,
            "weight of each event (the target model's input unit)",
        ),
        ParamSpec::real("delay", "ms", 1.0, Range::POSITIVE, "delay of each event"),
        ParamSpec::real(
            "start",
            "ms",
            0.0,
            Range::NON_NEGATIVE,
            "emission starts at this time",
        ),
        ParamSpec::real(
            "stop",
            "ms",
            f64::INFINITY,
            Range::NON_NEGATIVE,
            "emission stops at this time",
        ),
    ];
    fn check(p: &Params, dt: f64) -> Result<(), ParamIssue> {
        check_delay(p, dt)?;
        check_window(p)
    }
    fn max_delay(p: &Params, dt: f64) -> u16 {
        delay_steps(p.get("delay"), dt)
    }
    fn spawn(p: &Params, ctx: &InputContext, e: &mut EntityWorldMut<'_>) {
        e.insert(PoissonInput {
            target: ctx.target,
            neurons: ctx.neurons.clone(),
            lambda: p.get("rate") * ctx.dt / 1000.0,
            thresholds: poisson_thresholds(p.get("rate") * ctx.dt / 1000.0),
            weight: p.get("weight") as f32,
            delay: delay_steps(p.get("delay"), ctx.dt),
            start: step_at(p.get("start"), ctx.dt),
            stop: step_at(p.get("stop"), ctx.dt),
        });
    }
}

/// NEST's `dc_generator`: a constant current while active.
pub struct DcGenerator;

impl InputModel for DcGenerator {
    const NAME: &'static str = "dc_generator";
    const PARAMETERS: &'static [ParamSpec] = &[
        ParamSpec::required("amplitude", "pA", Range::ANY, "current"),
        ParamSpec::real(
            "start",
            "ms",
            0.0,
            Range::NON_NEGATIVE,
            "the current flows from this time",
        ),
        ParamSpec::real(
            "stop",
            "ms",
            f64::INFINITY,
            Range::NON_NEGATIVE,
            "until this time",
        ),
    ];
    const DRIVES_CURRENT: bool = true;
    fn check(p: &Params, _dt: f64) -> Result<(), ParamIssue> {
        check_window(p)
    }
    fn max_delay(_: &Params, _: f64) -> u16 {
        0
    }
    fn spawn(p: &Params, ctx: &InputContext, e: &mut EntityWorldMut<'_>) {
        e.insert(DcInput {
            target: ctx.target,
            neurons: ctx.neurons.clone(),
            amplitude: p.get("amplitude") as f32,
            start: step_at(p.get("start"), ctx.dt),
            stop: step_at(p.get("stop"), ctx.dt),
        });
    }
}

/// NEST's `spike_generator`: spikes at given times into every target neuron.
pub struct SpikeGenerator;

impl InputModel for SpikeGenerator {
    const NAME: &'static str = "spike_generator";
    const PARAMETERS: &'static [ParamSpec] = &[
        ParamSpec::list(
            "spike_times",
            "ms",
            Range::POSITIVE,
            "spike times, on the time grid",
        ),
        ParamSpec::required("weight", "pA or mV", Range::ANY, "weight of each spike"),
        ParamSpec::real("delay", "ms", 1.0, Range::POSITIVE, "delay of each spike"),
    ];
    fn check(p: &Params, dt: f64) -> Result<(), ParamIssue> {
        check_delay(p, dt)?;
        for &t in p.list("spike_times") {
            let k = t / dt;
            if (k - k.round()).abs() > 1e-6 {
                return Err(ParamIssue::new(
                    "spike_times",
                    format!("spike time {t} ms is not a multiple of dt = {dt} ms"),
                ));
            }
            if k.round() < 1.0 {
                return Err(ParamIssue::new(
                    "spike_times",
                    format!("spike time {t} ms is earlier than one step (dt = {dt} ms)"),
                ));
            }
        }
        Ok(())
    }
    fn max_delay(p: &Params, dt: f64) -> u16 {
        delay_steps(p.get("delay"), dt)
    }
    fn spawn(p: &Params, ctx: &InputContext, e: &mut EntityWorldMut<'_>) {
        let mut steps: Vec<u64> = p
            .list("spike_times")
            .iter()
            .map(|t| (t / ctx.dt).round() as u64 - 1)
            .collect();
        steps.sort_unstable();
        e.insert(SpikeGeneratorInput {
            target: ctx.target,
            neurons: ctx.neurons.clone(),
            steps,
            weight: p.get("weight") as f32,
            delay: delay_steps(p.get("delay"), ctx.dt),
            cursor: 0,
        });
    }
}

/// The device kernels of `poisson_generator` and `dc_generator` (`poisson_input`,
/// `dc_input`).
pub const CUDA_KERNEL: myelin_engine::KernelSource = myelin_engine::KernelSource {
    file: "systems/src/inputs/poisson.cu",
    entries: &["poisson_input", "dc_input"],
    source: include_str!("poisson.cu"),
    fmad: false,
};

/// Registers `poisson_generator` and its system.
pub struct PoissonGeneratorPlugin;
impl Plugin for PoissonGeneratorPlugin {
    fn build(&self, app: &mut App) {
        app.register_input::<PoissonGenerator>().add_systems(
            SimStep,
            poisson_inputs.in_set(SimSystems::Inputs).run_if(on_cpu),
        );
    }
}

/// Registers `dc_generator` and its system.
pub struct DcGeneratorPlugin;
impl Plugin for DcGeneratorPlugin {
    fn build(&self, app: &mut App) {
        app.register_input::<DcGenerator>()
            .add_systems(SimStep, dc_inputs.in_set(SimSystems::Inputs).run_if(on_cpu));
    }
}

/// Registers `spike_generator` and its system.
pub struct SpikeGeneratorPlugin;
impl Plugin for SpikeGeneratorPlugin {
    fn build(&self, app: &mut App) {
        app.register_input::<SpikeGenerator>().add_systems(
            SimStep,
            spike_generator_inputs
                .in_set(SimSystems::Inputs)
                .after(poisson_inputs)
                .run_if(on_cpu),
        );
    }
}

/// Adds the Poisson events that arrive in this step to every target neuron, block-parallel:
/// the events an input with delay `d` sends at step `step - d`. The block's slot of this
/// step is read first (its pending spikes summed in, [`RingBlockMut::slot_mut`]), then each
/// input's events are added to it directly, in scene order, so they never pass through the
/// pending lists. Each neuron's count is a function of (seed, input, neuron, sending step)
/// alone: for means below `rng::POISSON_INVERSION_MAX` one 32-bit word of a Philox block
/// shared by four neurons, inverted through the input's thresholds
/// ([`poisson_counts_lanes`], 32 neurons in lock-step); above, PTRS on the neuron's own
/// stream.
///
/// Nothing of an input is in a ring buffer between steps, so a checkpoint holds no Poisson
/// event in flight: a restored run draws the events that arrive after the restore point
/// from their sending steps, exactly as the uninterrupted run does.
pub fn poisson_inputs(
    clock: Res<SimClock>,
    seed: Option<Res<RunSeed>>,
    inputs: Query<(&PoissonInput, &StableId)>,
    mut rings: Query<(Entity, &mut SynapticInput)>,
) {
    let (step, seed) = (clock.step, seed.map_or(0, |s| s.0));
    // The inputs sending now, grouped by target population (sorted by entity) and in scene
    // order within each target.
    let mut sending: Vec<(Entity, Sending<'_>)> = inputs
        .iter()
        .filter_map(|(p, id)| {
            let sent = step.checked_sub(u64::from(p.delay))?;
            (sent >= p.start && sent < p.stop && p.lambda > 0.0)
                .then_some((p.target, (p, id.0, sent)))
        })
        .collect();
    sending.sort_unstable_by_key(|(target, (_, id, _))| (*target, *id));
    let mut targets: Vec<(Entity, std::ops::Range<usize>)> = Vec::new();
    let mut start = 0;
    for group in sending.chunk_by(|a, b| a.0 == b.0) {
        targets.push((group[0].0, start..start + group.len()));
        start += group.len();
    }
    let list: Vec<Sending<'_>> = sending.into_iter().map(|s| s.1).collect();
    let work = crate::ring_blocks_with(rings.iter_mut(), &targets, &list);
    myelin_engine::for_each_block(work, |(mut ring, list)| {
        poisson_block(&mut ring, list, step, seed)
    });
}

/// An input whose events sent at one step arrive now: the input, its stable id and the
/// sending step.
type Sending<'a> = (&'a PoissonInput, u32, u64);

/// Adds the Poisson events of `list` that arrive at `step` to one block (the body of
/// [`poisson_inputs`]' parallel loop).
fn poisson_block(ring: &mut RingBlockMut<'_>, list: &[Sending<'_>], step: u64, seed: u64) {
    let (first, len) = (ring.first, ring.len);
    let (ex, inh) = ring.slot_mut(step);
    for &(p, id, sent) in list {
        let cells: &mut [f32] = if channel_of(p.weight) == 0 {
            &mut *ex
        } else {
            &mut *inh
        };
        let th = p.thresholds.as_slice();
        if th.is_empty() {
            // Large means: PTRS on each neuron's own stream.
            for_each_selected(&p.neurons, first, len, |j| {
                let i = (first + j) as u32;
                let k = poisson(
                    &mut Stream::new(seed, Purpose::Poisson, id, i, sent),
                    p.lambda,
                    (-p.lambda).exp(),
                );
                cells[j] += k as f32 * p.weight;
            });
            continue;
        }
        if p.neurons.is_none() {
            // Every neuron of the block (blocks start at multiples of POISSON_BATCH; lanes
            // past the block's end are drawn and dropped).
            debug_assert!(first % POISSON_BATCH == 0);
            for j0 in (0..len).step_by(POISSON_BATCH) {
                let ks =
                    poisson_counts_lanes(seed, Purpose::Poisson, id, (first + j0) as u32, sent, th);
                let n = POISSON_BATCH.min(len - j0);
                for (c, &k) in cells[j0..j0 + n].iter_mut().zip(&ks) {
                    *c += k as f32 * p.weight;
                }
            }
            continue;
        }
        // Selected neurons (a subset, or an MPI rank's own part): the same grouped
        // draws, one batch of POISSON_BATCH neurons for each batch holding a selected one.
        let sel = p.neurons.as_deref().unwrap_or_default();
        let lo = sel.partition_point(|&i| (i as usize) < first);
        let hi = sel.partition_point(|&i| (i as usize) < first + len);
        let mut k = lo;
        while k < hi {
            let j0 = (sel[k] as usize - first) / POISSON_BATCH * POISSON_BATCH;
            let ks =
                poisson_counts_lanes(seed, Purpose::Poisson, id, (first + j0) as u32, sent, th);
            while k < hi && (sel[k] as usize - first) < j0 + POISSON_BATCH {
                let j = sel[k] as usize - first;
                cells[j] += ks[j - j0] as f32 * p.weight;
                k += 1;
            }
        }
    }
}

/// Sets the external current of driven populations: zero, plus every active DC input.
pub fn dc_inputs(
    clock: Res<SimClock>,
    inputs: Query<(&DcInput, &StableId)>,
    mut currents: Query<(Entity, &mut ExternalCurrent)>,
) {
    let step = clock.step;
    let mut sorted: Vec<_> = inputs.iter().collect();
    sorted.sort_by_key(|(_, id)| id.0);
    for (e, mut cur) in currents.iter_mut() {
        if !cur.driven {
            continue;
        }
        let cur = &mut *cur;
        cur.values.fill(0.0);
        for (dc, _) in sorted
            .iter()
            .filter(|(d, _)| d.target == e && step >= d.start && step < d.stop)
        {
            match &dc.neurons {
                None => cur.values.iter_mut().for_each(|v| *v += dc.amplitude),
                Some(sel) => sel
                    .iter()
                    .for_each(|&i| cur.values[i as usize] += dc.amplitude),
            }
        }
    }
}

/// Emits the spikes of spike generators due in this step.
pub fn spike_generator_inputs(
    clock: Res<SimClock>,
    mut inputs: Query<(&mut SpikeGeneratorInput, &StableId)>,
    mut rings: Query<&mut SynapticInput>,
) {
    let step = clock.step;
    let mut sorted: Vec<_> = inputs.iter_mut().collect();
    sorted.sort_by_key(|(_, id)| id.0);
    for (mut g, _) in sorted {
        let g = &mut *g;
        while g.cursor < g.steps.len() && g.steps[g.cursor] < step {
            g.cursor += 1; // times before a restart point are already delivered
        }
        while g.cursor < g.steps.len() && g.steps[g.cursor] == step {
            if let Ok(mut ring) = rings.get_mut(g.target) {
                let arrival = step + u64::from(g.delay);
                match &g.neurons {
                    None => (0..ring.len()).for_each(|i| ring.add(i, arrival, g.weight)),
                    Some(sel) => sel
                        .iter()
                        .for_each(|&i| ring.add(i as usize, arrival, g.weight)),
                }
            }
            g.cursor += 1;
        }
    }
}
