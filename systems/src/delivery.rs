//! Synaptic delivery: the spikes of this step enter the targets' delay ring buffers.

use std::ops::Range;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use myelin_components::{
    Connectivity, ROW_AHEAD, RingBlockMut, Spikes, SynapticInput, prefetch, prefetch_row,
};
use myelin_components::{PlasticityState, Projection};
use myelin_engine::{DeliveryPlan, SimClock, SimStep, SimSystems, for_each_block, on_cpu};

/// The device kernel of static delivery (`deliver_static`).
pub const CUDA_KERNEL: myelin_engine::KernelSource = myelin_engine::KernelSource {
    file: "systems/src/delivery.cu",
    entries: &["deliver_static"],
    source: include_str!("delivery.cu"),
    fmad: false,
};

/// Adds [`deliver`] to [`SimSystems::Deliver`].
pub struct DeliveryPlugin;

impl Plugin for DeliveryPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(SimStep, deliver.in_set(SimSystems::Deliver).run_if(on_cpu));
    }
}

/// Delivers every spike of this step through the static projections (plastic ones are
/// delivered by their rule, see [`crate::plasticity`]): for each (target population,
/// delivery block) in parallel, the incoming projections in scene order, the spiking sources in ascending
/// order, and each source's row in order, add the weight into the slot `delay` steps
/// ahead. Each block's ring buffer is owned by one thread: no atomics, and the sum into
/// each target is in a fixed order whatever the number of threads.
pub fn deliver(
    clock: Res<SimClock>,
    plan: Option<Res<DeliveryPlan>>,
    projections: Query<(&Projection, &Connectivity), Without<PlasticityState>>,
    spikes: Query<&Spikes>,
    mut rings: Query<(Entity, &mut SynapticInput)>,
) {
    let Some(plan) = plan else { return };
    let step = clock.step;
    // The step's spiking rows per target population, in one list: each target's incoming
    // projections in scene order, with the spikes of their sources; `targets` holds each
    // target's range of it, sorted by entity.
    let mut rows: Vec<(&Connectivity, &[u32])> = Vec::new();
    let mut targets: Vec<(Entity, Range<usize>)> = Vec::with_capacity(plan.incoming.len());
    for (target, projs) in &plan.incoming {
        let start = rows.len();
        rows.extend(projs.iter().filter_map(|&p| {
            let (proj, conn) = projections.get(p).ok()?;
            let s = spikes.get(proj.source).ok()?;
            (!s.current.is_empty()).then_some((conn, s.current.as_slice()))
        }));
        if rows.len() > start {
            targets.push((*target, start..rows.len()));
        }
    }
    if targets.is_empty() {
        return;
    }
    targets.sort_unstable_by_key(|t| t.0);
    let work = crate::ring_blocks_with(rings.iter_mut(), &targets, &rows);
    for_each_block(work, |(mut ring, list)| {
        deliver_block(&mut ring, list, step)
    });
}

/// How many rows ahead delivery fetches the row offsets (the rows themselves are fetched
/// [`ROW_AHEAD`] ahead).
const ROW_PTR_AHEAD: usize = 12;

/// How many bytes of each slot's list delivery fetches before it starts a block.
const LIST_AHEAD_BYTES: usize = 256;

/// The delivery kernel of one target block: for each projection and each of its spiking
/// sources, the source's row of synapses onto this block enters the ring slots `delay`
/// steps after `step`. Public for the kernel benchmark (`benches/delivery.rs`).
#[inline]
pub fn deliver_block(ring: &mut RingBlockMut<'_>, list: &[(&Connectivity, &[u32])], step: u64) {
    let b = ring.index;
    let mut data = ring.writer();
    let now = data.slot_of(step);
    data.prefetch_tails(LIST_AHEAD_BYTES);
    // The rows in delivery order: each projection's spiking sources in ascending order.
    let rows = || {
        list.iter()
            .flat_map(move |&(conn, sources)| sources.iter().map(move |&i| (conn, i as usize)))
    };
    // Rows are short (tens of synapses per block) and scattered over gigabytes, so every
    // line of them is a miss that no hardware prefetcher foresees: fetch the row offsets
    // ROW_PTR_AHEAD rows ahead and every line of the rows ROW_AHEAD rows ahead (across
    // projections), so that several rows are in flight while this one is added.
    let mut ptr_ahead = rows();
    let mut row_ahead = rows();
    for (conn, i) in ptr_ahead.by_ref().take(ROW_PTR_AHEAD) {
        prefetch(conn.row_start_ptr(i, b));
    }
    for (conn, i) in row_ahead.by_ref().take(ROW_AHEAD) {
        prefetch_row(conn.row(i, b));
    }
    for (conn, i) in rows() {
        if let Some((ahead, j)) = ptr_ahead.next() {
            prefetch(ahead.row_start_ptr(j, b));
        }
        if let Some((ahead, j)) = row_ahead.next() {
            prefetch_row(ahead.row(j, b));
        }
        data.add_row(now, conn.row(i, b));
    }
}
