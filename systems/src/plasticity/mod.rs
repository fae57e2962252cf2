//! Synaptic plasticity: learning rules as components on projections, run in
//! [`SimSystems::Plasticity`].
//!
//! A plastic projection carries its rule ([`Plasticity`], a [`PlasticityKernel`]) and its
//! state ([`PlasticityState`]) beside its [`Connectivity`]. Because NEST's STDP synapses
//! update a weight *before* they transmit the spike (the transmitted weight is the new one),
//! a plastic projection is delivered by its rule, not by [`crate::delivery::deliver`]:
//!
//! 1. [`deliver_plastic`]: for every (target population, target block) in parallel, the
//!    incoming plastic projections in scene order, their spiking sources ascending, each
//!    row in order: the rule updates the synapse from the target's spike history and trace
//!    and adds the new weight into the ring buffer. Then each rule updates its per-source
//!    state (presynaptic traces, last spike times) once.
//! 2. [`record_post_spikes`]: the step's spikes of every plastic projection's target
//!    population enter its spike history, and its trace delay line advances.
//! 3. [`catch_up`]: every [`CATCH_UP_MS`], the pairings of sources silent for longer than
//!    that are applied, and spike histories are cut to what may still be read.
//!
//! Static projections are summed first (delivery phase), plastic ones after them, each in
//! a fixed order: the result does not depend on the number of threads.
//!
//! Rule families, one module each: [`stdp`] (pair-based STDP with NEST's weight dependence,
//! all-to-all and nearest-neighbour pairing), [`power_law`] (Morrison et al. 2007).
//! Semantics, delays and costs: `docs/plasticity.md`.

pub mod math;
pub mod power_law;
pub mod stdp;

pub use stdp::{DEVICE_RULES, device_rule_of};

use std::collections::HashMap;
use std::marker::PhantomData;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use myelin_components::{
    Connectivity, DELIVERY_BLOCK, PlasticityState, PostBlock, PostSpikes, PreView, Projection,
    RingBlockMut, Spikes, SynapticInput, TraceKind, WeightRecorder,
};
use myelin_engine::{
    DeliveryPlan, PlasticStep, PlasticSynapses, Plasticity, PlasticityKernel, PlasticityRule,
    RegistryAppExt, SimClock, SimStep, SimSystems, on_cpu,
};

/// Simulated time between catch-ups [ms]: a source that has not spiked for this long gets
/// its pending pairings applied, so a post-spike history holds at most two such periods
/// plus the longest delay of spikes (about `2 * rate * CATCH_UP_MS / 1000` entries per
/// neuron). Longer periods mean longer histories; shorter ones more catch-up passes.
pub const CATCH_UP_MS: f64 = 1000.0;

/// The catch-up period in steps for a time step `dt` [ms] (at least one step).
pub fn catch_up_steps(dt: f64) -> u64 {
    ((CATCH_UP_MS / dt).round() as u64).max(1)
}

/// Settings of the plasticity systems: a resource, [`CATCH_UP_MS`] when absent. Results do
/// not depend on it beyond `f32` rounding (a catch-up stores the weight once more); a
/// resumed run must use the same value as the run it continues to stay bit-identical.
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub struct PlasticitySettings {
    /// Simulated time between catch-ups [ms].
    pub catch_up_ms: f64,
}

impl Default for PlasticitySettings {
    fn default() -> Self {
        Self {
            catch_up_ms: CATCH_UP_MS,
        }
    }
}

/// Adds the shared plasticity systems: plastic delivery, post-spike recording and catch-up
/// in [`SimSystems::Plasticity`], weight recording in [`SimSystems::Record`]. Added once by
/// the first [`PlasticityRulePlugin`] (and by `MyelinPlugins`).
pub struct PlasticityCorePlugin;

impl Plugin for PlasticityCorePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            SimStep,
            (deliver_plastic, record_post_spikes, catch_up)
                .chain()
                .in_set(SimSystems::Plasticity)
                .run_if(on_cpu),
        )
        .add_systems(SimStep, record_weights.in_set(SimSystems::Record));
    }
}

/// Registers plasticity rule `R` under its scene name (and the shared systems, once).
pub struct PlasticityRulePlugin<R>(PhantomData<fn() -> R>);

impl<R> Default for PlasticityRulePlugin<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: PlasticityRule> Plugin for PlasticityRulePlugin<R> {
    fn build(&self, app: &mut App) {
        app.register_plasticity::<R>();
        if !app.is_plugin_added::<PlasticityCorePlugin>() {
            app.add_plugins(PlasticityCorePlugin);
        }
    }
}

/// The pieces of one plastic projection that one target block's work item needs.
struct BlockPart<'a> {
    kernel: &'a dyn PlasticityKernel,
    syn: PlasticSynapses<'a>,
    pre: &'a PreView<'a>,
    post: PostBlock<'a>,
    spikes: &'a [u32],
}

/// Splits a plastic projection into one [`PlasticSynapses`] and [`PostBlock`] per target
/// block, with its per-source view (built by the caller, borrowed here).
fn split_blocks<'a>(
    conn: &'a mut Connectivity,
    synapse: &'a mut [myelin_components::SynapseColumn],
    post: &'a myelin_components::PostSpikes,
) -> Vec<(PlasticSynapses<'a>, PostBlock<'a>)> {
    let blocks = conn.blocks_mut();
    let nb = blocks.len();
    let mut cols: Vec<Vec<&'a mut [f32]>> =
        (0..nb).map(|_| Vec::with_capacity(synapse.len())).collect();
    for c in synapse.iter_mut() {
        for (b, v) in c.blocks.iter_mut().enumerate() {
            cols[b].push(v.as_mut_slice());
        }
    }
    blocks
        .iter_mut()
        .zip(cols)
        .enumerate()
        .map(|(b, (block, state))| (PlasticSynapses { block, state }, post.view(b)))
        .collect()
}

/// Delivers this step's spikes through every plastic projection, updating each synapse's
/// weight first (the rule's [`PlasticityKernel::deliver`]), block-parallel: for each (target
/// population, block), the incoming plastic projections in scene order. Then every rule
/// updates its per-source state.
pub fn deliver_plastic(
    clock: Res<SimClock>,
    plan: Option<Res<DeliveryPlan>>,
    mut projections: Query<(
        Entity,
        &Projection,
        &mut Connectivity,
        &mut PlasticityState,
        &Plasticity,
    )>,
    spikes: Query<&Spikes>,
    mut rings: Query<(Entity, &mut SynapticInput)>,
) {
    let Some(plan) = plan else { return };
    let step = clock.step;
    // Plastic projections whose source spiked this step.
    let mut active: HashMap<Entity, _> = HashMap::new();
    for (e, proj, conn, state, rule) in projections.iter_mut() {
        let Ok(s) = spikes.get(proj.source) else {
            continue;
        };
        if s.current.is_empty() {
            continue;
        }
        active.insert(
            e,
            (
                conn.into_inner(),
                state.into_inner(),
                rule.0.as_ref(),
                s.current.as_slice(),
            ),
        );
    }
    if active.is_empty() {
        return;
    }
    // Per-source views first (shared by all blocks), then the mutable per-block parts.
    let mut views: HashMap<Entity, PreView<'_>> = HashMap::new();
    let mut parts: HashMap<Entity, Vec<(PlasticSynapses<'_>, PostBlock<'_>)>> = HashMap::new();
    let mut meta: HashMap<Entity, (&dyn PlasticityKernel, &[u32])> = HashMap::new();
    for (&e, (conn, state, kernel, sp)) in active.iter_mut() {
        let PlasticityState {
            synapse,
            pre,
            pre_steps,
            post,
            ..
        } = &mut **state;
        views.insert(
            e,
            PreView {
                real: pre.iter().map(|c| c.values.as_slice()).collect(),
                steps: pre_steps.iter().map(|c| c.values.as_slice()).collect(),
            },
        );
        parts.insert(e, split_blocks(conn, synapse, post));
        meta.insert(e, (*kernel, *sp));
    }
    let mut per_target: HashMap<Entity, Vec<Vec<BlockPart<'_>>>> = HashMap::new();
    for (target, projs) in &plan.incoming {
        let mut blocks: Vec<Vec<BlockPart<'_>>> = Vec::new();
        for p in projs {
            let Some(list) = parts.remove(p) else {
                continue;
            };
            let (kernel, sp) = meta[p];
            let pre = &views[p];
            if blocks.is_empty() {
                blocks = (0..list.len()).map(|_| Vec::new()).collect();
            }
            for (b, (syn, post)) in list.into_iter().enumerate() {
                blocks[b].push(BlockPart {
                    kernel,
                    syn,
                    pre,
                    post,
                    spikes: sp,
                });
            }
        }
        if !blocks.is_empty() {
            per_target.insert(*target, blocks);
        }
    }
    let mut work: Vec<(RingBlockMut<'_>, Vec<BlockPart<'_>>)> = Vec::new();
    for (e, ring) in rings.iter_mut() {
        if let Some(blocks) = per_target.remove(&e) {
            for (rb, list) in ring.into_inner().blocks_mut().zip(blocks) {
                work.push((rb, list));
            }
        }
    }
    myelin_engine::for_each_block(work, |(mut ring, mut list)| {
        for part in list.iter_mut() {
            part.kernel.deliver(
                PlasticStep {
                    step,
                    spikes: part.spikes,
                },
                &mut part.syn,
                part.pre,
                &part.post,
                &mut ring,
            );
        }
    });
    drop(views);
    for (_, state, kernel, sp) in active.into_values() {
        kernel.after_delivery(PlasticStep { step, spikes: sp }, state);
    }
}

/// Adds this step's spikes of every plastic projection's target population to its spike
/// history (stamp `step + 1`) and advances its trace delay line by one stamp: the trace at
/// stamp `step + 2` from the one at `step + 1` and this step's spikes.
pub fn record_post_spikes(
    clock: Res<SimClock>,
    mut projections: Query<(&Projection, &mut PlasticityState)>,
    spikes: Query<&Spikes>,
) {
    let stamp = clock.step + 1;
    for (proj, mut state) in projections.iter_mut() {
        let Ok(s) = spikes.get(proj.target) else {
            continue;
        };
        record_post(&mut state.post, stamp, &s.current);
    }
}

/// [`record_post_spikes`] for one projection's [`PostSpikes`]: the target neurons `spikes`
/// enter the history at `stamp`, and the trace at `stamp + 1` follows from the one at
/// `stamp` (the device's `stdp_record_post`, plasticity/stdp.cu, follows it bit for bit).
pub fn record_post(post: &mut PostSpikes, stamp: u64, spikes: &[u32]) {
    for &j in spikes {
        post.push(j as usize, stamp);
    }
    if post.kind == TraceKind::None || post.trace.is_empty() {
        return;
    }
    let (slots, block, decay, kind) = (post.slots, post.block, post.decay, post.kind);
    let (from, to) = (
        (stamp % slots as u64) as usize,
        ((stamp + 1) % slots as u64) as usize,
    );
    let block_len = slots * block;
    for chunk in post.trace.chunks_mut(block_len) {
        let (a, b) = (from * block, to * block);
        for j in 0..block {
            chunk[b + j] = decay * chunk[a + j];
        }
    }
    for &j in spikes {
        let j = j as usize;
        let (b, l) = (j / block, j % block);
        let base = b * block_len;
        let prev = post.trace[base + from * block + l];
        post.trace[base + to * block + l] = match kind {
            TraceKind::AllToAll => decay * (prev + 1.0),
            TraceKind::Nearest | TraceKind::None => decay,
        };
    }
}

/// Every [`CATCH_UP_MS`] (or [`PlasticitySettings::catch_up_ms`]): applies the pending pairings of the sources that have
/// not spiked (or been caught up) for a whole period, block-parallel, and cuts every spike
/// history to the stamps a later pairing may still read (later than one period plus the
/// longest delay ago).
pub fn catch_up(
    clock: Res<SimClock>,
    settings: Option<Res<PlasticitySettings>>,
    mut projections: Query<(&mut Connectivity, &mut PlasticityState, &Plasticity)>,
) {
    let ms = settings.map_or(CATCH_UP_MS, |s| s.catch_up_ms);
    let period = ((ms / clock.dt).round() as u64).max(1);
    let stamp = clock.step + 1;
    if !stamp.is_multiple_of(period) {
        return;
    }
    for (conn, state, rule) in projections.iter_mut() {
        catch_up_projection(
            rule.0.as_ref(),
            conn.into_inner(),
            state.into_inner(),
            clock.step,
            period,
        );
    }
}

/// [`catch_up`] for one projection at step `step`, the last of a catch-up period of `period`
/// steps: the pending pairings of its stale sources, then the history cut (the device's
/// `stdp_catch_up` and `stdp_catch_up_done`, plasticity/stdp.cu, follow it bit for bit).
pub fn catch_up_projection(
    kernel: &dyn PlasticityKernel,
    conn: &mut Connectivity,
    state: &mut PlasticityState,
    step: u64,
    period: u64,
) {
    let before = step + 1 - period;
    let stale = kernel.stale_sources(state, before);
    if !stale.is_empty() {
        let at = PlasticStep {
            step,
            spikes: &stale,
        };
        let PlasticityState {
            synapse,
            pre,
            pre_steps,
            post,
            ..
        } = &mut *state;
        let view = PreView {
            real: pre.iter().map(|c| c.values.as_slice()).collect(),
            steps: pre_steps.iter().map(|c| c.values.as_slice()).collect(),
        };
        myelin_engine::for_each_block(split_blocks(conn, synapse, post), |(mut syn, post)| {
            kernel.catch_up(at, &mut syn, &view, &post)
        });
        drop(view);
        kernel.after_catch_up(at, state);
    }
    let keep_after = before.saturating_sub(u64::from(conn.max_delay));
    let post = &mut state.post;
    for (h, tail) in post.history.iter_mut().zip(post.tail.iter_mut()) {
        let cut = h.partition_point(|&p| p <= keep_after);
        if cut > 0 {
            h.drain(..cut);
            // The tail stays the end of the history (what a restore rebuilds).
            let n = h.len();
            *tail = [
                n.checked_sub(1).map_or(0, |k| h[k]),
                n.checked_sub(2).map_or(0, |k| h[k]),
            ];
        }
    }
}

/// Samples the weights of every weight recorder's projection at the end of every
/// `interval`-th step, in storage order (target block, source, row order), keeping the
/// synapses onto the recorded targets.
pub fn record_weights(
    clock: Res<SimClock>,
    mut recorders: Query<&mut WeightRecorder>,
    conns: Query<&Connectivity>,
) {
    for mut r in &mut recorders {
        if !(clock.step + 1).is_multiple_of(r.interval) {
            continue;
        }
        let Ok(conn) = conns.get(r.projection) else {
            continue;
        };
        let r = &mut *r;
        r.steps.push(clock.step);
        r.values.reserve(r.n_synapses);
        for (b, blk) in conn.blocks().enumerate() {
            match &r.mask {
                None => r.values.extend(blk.iter().map(|s| s.weight)),
                Some(m) => {
                    let first = b * DELIVERY_BLOCK;
                    let last = (first + DELIVERY_BLOCK).min(m.len());
                    if !m[first..last].contains(&true) {
                        continue;
                    }
                    r.values.extend(
                        blk.iter()
                            .filter(|s| m[first + usize::from(s.target)])
                            .map(|s| s.weight),
                    );
                }
            }
        }
    }
}
