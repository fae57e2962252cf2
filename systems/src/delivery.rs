//! Synaptic delivery: the spikes of this step enter the targets' delay ring buffers.

use std::collections::HashMap;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use myelin_components::{Connectivity, RingBlockMut, Spikes, SynapticInput, add_row, prefetch};
use myelin_components::{PlasticityState, Projection};
use myelin_engine::{DeliveryPlan, SimClock, SimStep, SimSystems, on_cpu};
use rayon::prelude::*;

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
    let mut incoming: HashMap<Entity, Vec<(&Connectivity, &[u32])>> = HashMap::new();
    for (target, projs) in &plan.incoming {
        let list: Vec<(&Connectivity, &[u32])> = projs
            .iter()
            .filter_map(|&p| {
                let (proj, conn) = projections.get(p).ok()?;
                let s = spikes.get(proj.source).ok()?;
                (!s.current.is_empty()).then_some((conn, s.current.as_slice()))
            })
            .collect();
        if !list.is_empty() {
            incoming.insert(*target, list);
        }
    }
    if incoming.is_empty() {
        return;
    }
    let mut work: Vec<(RingBlockMut<'_>, &Vec<(&Connectivity, &[u32])>)> = Vec::new();
    for (e, ring) in rings.iter_mut() {
        if let Some(list) = incoming.get(&e) {
            for b in ring.into_inner().blocks_mut() {
                work.push((b, list));
            }
        }
    }
    work.into_par_iter()
        .for_each(|(mut ring, list)| deliver_block(&mut ring, list, step));
}

/// The delivery kernel of one target block: for each projection and each of its spiking
/// sources, the source's row of synapses onto this block enters the ring slots `delay`
/// steps after `step`. Public for the kernel benchmark (`benches/delivery.rs`).
#[inline]
pub fn deliver_block(ring: &mut RingBlockMut<'_>, list: &[(&Connectivity, &[u32])], step: u64) {
    let b = ring.index;
    let (mut data, slots, block) = ring.raw_mut();
    let now = (step % slots as u64) as usize;
    for (conn, sources) in list {
        let blk = &conn.blocks[b];
        for (k, &i) in sources.iter().enumerate() {
            // Rows are short (tens of synapses per block), so their starts are cache misses:
            // fetch the row offsets four spikes ahead and the rows two ahead.
            if let Some(&ahead) = sources.get(k + 4) {
                prefetch(blk.row_ptr.as_ptr().wrapping_add(ahead as usize));
            }
            if let Some(&ahead) = sources.get(k + 2) {
                let start = blk.row_ptr[ahead as usize] as usize;
                prefetch(blk.target.as_ptr().wrapping_add(start));
                prefetch(blk.weight.as_ptr().wrapping_add(start));
                prefetch(blk.delay.as_ptr().wrapping_add(start));
            }
            let row = blk.row(i as usize);
            let (t, w, d) = (
                &blk.target[row.clone()],
                &blk.weight[row.clone()],
                &blk.delay[row],
            );
            add_row(&mut data, slots, block, now, t, w, d);
        }
    }
}
