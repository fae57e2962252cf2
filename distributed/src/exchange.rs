//! Spike exchange between ranks, once per minimum-delay window, and the delivery of the
//! window's spikes in the single-process order.
//!
//! Under MPI the engine's own delivery phase is switched off. During a window the
//! [`keep_local_spikes`] system (phase `Exchange`) keeps in each population's `Spikes` only
//! the neurons this rank owns (so recording sees its own part) and stores them. At the end
//! of the window [`Exchanger::exchange`] sends them (`collective`: an allgather of all
//! spike ids; `p2p`: each spike only to the ranks holding a target of its neuron), then
//! delivers the window step by step: for every step in order, every local block sums the
//! incoming projections in scene order, the spiking sources ascending and each row in
//! order, exactly as the single-process delivery of that step did. Every synapse delay is
//! at least the window, so no spike is needed before it is delivered, and every ring-buffer
//! cell receives its additions in the same order as in one process: spike trains are
//! bit-identical for any number of ranks.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use bevy_ecs::prelude::*;
use myelin_components::{
    BlockRef, Connectivity, Population, Projection, RingBlockMut, Row, Spikes, StableId,
    SynapticInput,
};
use myelin_engine::{DeliveryPlan, SimClock};
use serde::Serialize;

use crate::comm::Comm;

/// How spikes travel between ranks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommMode {
    /// Every rank receives every spike id (allgather).
    #[default]
    Collective,
    /// Each spike goes only to the ranks that hold a target of its neuron (all-to-all with
    /// per-destination lists; the rank sets are computed at construction).
    P2p,
}

impl std::str::FromStr for CommMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "collective" => Ok(Self::Collective),
            "p2p" => Ok(Self::P2p),
            _ => Err(format!(
                "unknown exchange mode {s:?}: expected collective or p2p"
            )),
        }
    }
}

impl CommMode {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Collective => "collective",
            Self::P2p => "p2p",
        }
    }
}

/// This rank's part of the network and the spikes of its neurons not yet exchanged.
#[derive(Resource, Clone, Debug)]
pub struct LocalPart {
    /// Owned neurons of each population (scene order, population-local indices).
    pub local: Vec<Range<usize>>,
    /// The local spikes of each step since the last exchange: `(step, per population)`.
    pub pending: Vec<(u64, Vec<Vec<u32>>)>,
}

/// Phase `Exchange`: keeps only the spikes of owned neurons in every population's
/// `Spikes` (and its count), and stores them for the window's exchange.
pub fn keep_local_spikes(
    clock: Res<SimClock>,
    mut part: ResMut<LocalPart>,
    mut q: Query<(&StableId, &mut Spikes), With<Population>>,
) {
    let mut per_pop = vec![Vec::new(); part.local.len()];
    for (id, mut s) in &mut q {
        let k = id.0 as usize;
        let r = part.local[k].clone();
        let s = &mut *s;
        let before = s.current.len();
        s.current.retain(|&i| r.contains(&(i as usize)));
        for b in &mut s.per_block {
            b.retain(|&i| r.contains(&(i as usize)));
        }
        s.total -= (before - s.current.len()) as u64;
        per_pop[k] = s.current.clone();
    }
    part.pending.push((clock.step, per_pop));
}

/// Seconds spent exchanging, per part, and what was exchanged.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExchangeTimers {
    /// Packing local spikes into messages [s].
    pub pack_s: f64,
    /// Waiting for the other ranks before the exchange (load imbalance) [s].
    pub wait_s: f64,
    /// The MPI exchange itself [s].
    pub exchange_s: f64,
    /// Unpacking received spikes into per-step, per-population sorted lists [s].
    pub unpack_s: f64,
    /// Delivering the window's spikes into the local ring buffers [s].
    pub deliver_s: f64,
    /// Exchanges made (windows).
    pub windows: u64,
    /// Spike ids sent (counted once per destination for p2p, once for collective).
    pub spikes_sent: u64,
    /// Spike ids received (own included for collective).
    pub spikes_received: u64,
}

/// The exchange of one rank: mode, routing and timers.
pub struct Exchanger {
    mode: CommMode,
    /// First global id of each population, then the number of neurons.
    first_id: Vec<u64>,
    /// p2p: for each owned neuron (by global id), the other ranks holding a target of it.
    routes: HashMap<u64, Vec<u32>>,
    /// Per projection, per target block: the compact rows of the blocks with synapses.
    rows: HashMap<Entity, Vec<Option<CompactRows>>>,
    /// Timers so far.
    pub timers: ExchangeTimers,
}

/// The rows of one local block keyed by the sources that have synapses onto it: the
/// compact map of (mostly remote) source ids. A source's synapses are
/// `ptr[k]..ptr[k + 1]` of the block's arrays where `sources[k]` is the source; sources
/// ascend. It replaces the block's dense row pointers (one per source neuron).
#[derive(Clone, Debug, Default)]
pub struct CompactRows {
    /// Sources with synapses onto the block, ascending.
    pub sources: Vec<u32>,
    /// Row starts, one per source, then the synapse count.
    pub ptr: Vec<u32>,
}

impl CompactRows {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.sources.len() + self.ptr.len()) * 4
    }
}

impl Exchanger {
    /// Prepares the exchange after the network was built with this rank's part. For p2p,
    /// every rank marks the neurons with a synapse onto its own neurons and the ranks
    /// share these marks once (a bitset of all neurons per rank).
    pub fn new(world: &mut World, comm: &dyn Comm, mode: CommMode) -> Self {
        let mut pops: Vec<(u32, u64, usize)> = world
            .query::<(&StableId, &Population)>()
            .iter(world)
            .map(|(id, p)| (id.0, p.first_id, p.size))
            .collect();
        pops.sort_unstable();
        let mut first_id: Vec<u64> = pops.iter().map(|p| p.1).collect();
        first_id.push(pops.last().map_or(0, |p| p.1 + p.2 as u64));
        let first_of: HashMap<Entity, u64> = world
            .query::<(Entity, &Population)>()
            .iter(world)
            .map(|(e, p)| (e, p.first_id))
            .collect();
        // Compact the rows of every block with synapses; drop the dense row pointers.
        let mut rows: HashMap<Entity, Vec<Option<CompactRows>>> = HashMap::new();
        let mut sources_of: Vec<(u64, Vec<u32>)> = Vec::new();
        let mut q = world.query::<(Entity, &Projection, &mut Connectivity)>();
        for (e, proj, mut conn) in q.iter_mut(world) {
            let n_source = conn.n_source;
            // Ranks keep the block layout: the compact rows index each block's own array.
            let per_block: Vec<Option<CompactRows>> = conn
                .blocks_mut()
                .iter_mut()
                .map(|blk| {
                    if blk.is_empty() {
                        blk.row_ptr = Vec::new();
                        return None;
                    }
                    let mut c = CompactRows::default();
                    for i in 0..n_source {
                        if blk.row_ptr[i + 1] > blk.row_ptr[i] {
                            c.sources.push(i as u32);
                            c.ptr.push(blk.row_ptr[i]);
                        }
                    }
                    c.ptr.push(blk.row_ptr[n_source]);
                    blk.row_ptr = Vec::new();
                    Some(c)
                })
                .collect();
            let mut src: Vec<u32> = per_block
                .iter()
                .flatten()
                .flat_map(|c| c.sources.iter().copied())
                .collect();
            src.sort_unstable();
            src.dedup();
            sources_of.push((first_of[&proj.source], src));
            rows.insert(e, per_block);
        }
        let mut routes = HashMap::new();
        if mode == CommMode::P2p && comm.size() > 1 {
            // Every rank marks the neurons with a synapse onto its own; one allgather of
            // these bitsets gives each neuron's destination ranks.
            let n = *first_id.last().unwrap_or(&0) as usize;
            let words = n.div_ceil(32);
            let mut mine = vec![0u32; words];
            for (f, src) in &sources_of {
                for &i in src {
                    let g = *f as usize + i as usize;
                    mine[g / 32] |= 1 << (g % 32);
                }
            }
            let (all, _) = comm.all_gather_v(&mine);
            let part = world.resource::<LocalPart>();
            let me = comm.rank();
            for (k, r) in part.local.iter().enumerate() {
                for i in r.clone() {
                    let g = first_id[k] + i as u64;
                    let (w, bit) = (g as usize / 32, g % 32);
                    let dest: Vec<u32> = (0..comm.size())
                        .filter(|&s| s != me && all[s * words + w] & (1 << bit) != 0)
                        .map(|s| s as u32)
                        .collect();
                    if !dest.is_empty() {
                        routes.insert(g, dest);
                    }
                }
            }
        }
        Self {
            mode,
            first_id,
            routes,
            rows,
            timers: ExchangeTimers::default(),
        }
    }

    /// Gives every block of every projection its dense row pointers again (one per source
    /// neuron; zeros for blocks without synapses), the shape the checkpoint writer and
    /// reader know. Undo with [`Exchanger::drop_dense_rows`].
    pub fn restore_dense_rows(&self, world: &mut World) {
        let mut q = world.query::<(Entity, &mut Connectivity)>();
        for (e, mut conn) in q.iter_mut(world) {
            let n = conn.n_source;
            let Some(rows) = self.rows.get(&e) else {
                continue;
            };
            for (blk, c) in conn.blocks_mut().iter_mut().zip(rows) {
                let mut dense = vec![0u32; n + 1];
                if let Some(c) = c {
                    dense[n] = *c.ptr.last().unwrap_or(&0);
                    let mut k = c.sources.len();
                    for i in (0..n).rev() {
                        if k > 0 && c.sources[k - 1] as usize == i {
                            k -= 1;
                            dense[i] = c.ptr[k];
                        } else {
                            dense[i] = dense[i + 1];
                        }
                    }
                }
                blk.row_ptr = dense;
            }
        }
    }

    /// Drops the dense row pointers again (the compact rows serve delivery).
    pub fn drop_dense_rows(&self, world: &mut World) {
        let mut q = world.query::<&mut Connectivity>();
        for mut conn in q.iter_mut(world) {
            for blk in conn.blocks_mut() {
                blk.row_ptr = Vec::new();
            }
        }
    }

    /// Bytes of this rank's connectivity: synapses (6 or 8 bytes each) and compact rows.
    pub fn connectivity_bytes(&self, world: &mut World) -> usize {
        let syn: usize = world
            .query::<&Connectivity>()
            .iter(world)
            .map(|c| c.blocks().map(|b| b.synapse_bytes()).sum::<usize>())
            .sum();
        let rows: usize = self
            .rows
            .values()
            .flatten()
            .flatten()
            .map(CompactRows::bytes)
            .sum();
        syn + rows
    }

    /// The exchange mode.
    pub fn mode(&self) -> CommMode {
        self.mode
    }

    /// Exchanges the pending window's spikes with every rank and delivers them. All ranks
    /// call it after the same steps.
    pub fn exchange(&mut self, world: &mut World, comm: &dyn Comm) {
        let t0 = Instant::now();
        let pending = std::mem::take(&mut world.resource_mut::<LocalPart>().pending);
        let Some(&(step0, _)) = pending.first() else {
            return;
        };
        let npop = self.first_id.len() - 1;
        let nsteps = pending.len();
        // Messages: (step offset, global id) pairs.
        let mut own: Vec<u32> = Vec::new();
        let mut to: Vec<Vec<u32>> = vec![Vec::new(); comm.size()];
        for (step, pops) in &pending {
            let off = (step - step0) as u32;
            for (k, ids) in pops.iter().enumerate() {
                for &i in ids {
                    let g = self.first_id[k] + u64::from(i);
                    match self.mode {
                        CommMode::Collective => own.extend([off, g as u32]),
                        CommMode::P2p => {
                            own.extend([off, g as u32]);
                            if let Some(dest) = self.routes.get(&g) {
                                for &s in dest {
                                    to[s as usize].extend([off, g as u32]);
                                }
                            }
                        }
                    }
                }
            }
        }
        let t1 = Instant::now();
        comm.barrier();
        let t2 = Instant::now();
        let received = match self.mode {
            CommMode::Collective => {
                self.timers.spikes_sent += own.len() as u64 / 2;
                comm.all_gather_v(&own).0
            }
            CommMode::P2p => {
                self.timers.spikes_sent += to.iter().map(|v| v.len() as u64 / 2).sum::<u64>();
                let (mut r, _) = comm.all_to_all_v(&to);
                r.extend_from_slice(&own);
                r
            }
        };
        let t3 = Instant::now();
        self.timers.spikes_received += received.len() as u64 / 2;
        let mut spikes: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); npop]; nsteps];
        for pair in received.chunks_exact(2) {
            let (off, g) = (pair[0] as usize, u64::from(pair[1]));
            let k = self.first_id.partition_point(|&f| f <= g) - 1;
            spikes[off][k].push((g - self.first_id[k]) as u32);
        }
        for step in &mut spikes {
            for ids in step.iter_mut() {
                ids.sort_unstable();
            }
        }
        let t4 = Instant::now();
        for (s, step_spikes) in spikes.iter().enumerate() {
            deliver(world, &self.rows, step0 + s as u64, step_spikes);
        }
        let t5 = Instant::now();
        let tm = &mut self.timers;
        tm.pack_s += (t1 - t0).as_secs_f64();
        tm.wait_s += (t2 - t1).as_secs_f64();
        tm.exchange_s += (t3 - t2).as_secs_f64();
        tm.unpack_s += (t4 - t3).as_secs_f64();
        tm.deliver_s += (t5 - t4).as_secs_f64();
        tm.windows += 1;
    }
}

/// Delivers the spikes of `step` (`spikes[k]`: sorted neuron indices of population `k`)
/// into the ring buffers of this rank's blocks, in the single-process order.
fn deliver(
    world: &mut World,
    rows: &HashMap<Entity, Vec<Option<CompactRows>>>,
    step: u64,
    spikes: &[Vec<u32>],
) {
    if spikes.iter().all(Vec::is_empty) {
        return;
    }
    let plan = world.resource::<DeliveryPlan>().clone();
    let local = world.resource::<LocalPart>().local.clone();
    let pop_index: HashMap<Entity, usize> = world
        .query::<(Entity, &StableId, &Population)>()
        .iter(world)
        .map(|(e, id, _)| (e, id.0 as usize))
        .collect();
    let mut q = world.query::<&Projection>();
    let targets: Vec<Entity> = plan
        .incoming
        .iter()
        .filter(|(_, projs)| {
            projs.iter().any(|&p| {
                q.get(world, p)
                    .is_ok_and(|proj| !spikes[pop_index[&proj.source]].is_empty())
            })
        })
        .map(|(t, _)| *t)
        .collect();
    if targets.is_empty() {
        return;
    }
    // Rings are mutated while connectivity is read: take the rings out of the world.
    let mut rings: Vec<(Entity, SynapticInput)> = targets
        .iter()
        .map(|&e| {
            let ring = world
                .get_mut::<SynapticInput>(e)
                .map(|mut r| std::mem::replace(&mut *r, SynapticInput::new(0, 1, 0)))
                .expect("a target population has ring buffers");
            (e, ring)
        })
        .collect();
    {
        let mut q = world.query::<(&Projection, &Connectivity)>();
        let mut incoming: HashMap<Entity, Vec<Incoming<'_>>> = HashMap::new();
        for (target, projs) in &plan.incoming {
            let list: Vec<Incoming<'_>> = projs
                .iter()
                .filter_map(|&p| {
                    let (proj, conn) = q.get(world, p).ok()?;
                    let s = &spikes[pop_index[&proj.source]];
                    (!s.is_empty()).then_some((conn, rows[&p].as_slice(), s.as_slice()))
                })
                .collect();
            if !list.is_empty() {
                incoming.insert(*target, list);
            }
        }
        let mut work: Vec<(RingBlockMut<'_>, &Vec<Incoming<'_>>)> = Vec::new();
        for (e, ring) in rings.iter_mut() {
            let range = &local[pop_index[e]];
            if let Some(list) = incoming.get(e) {
                for b in ring.blocks_mut() {
                    if b.first < range.end && b.first + b.len > range.start {
                        work.push((b, list));
                    }
                }
            }
        }
        myelin_engine::for_each_block(work, |(mut ring, list)| {
            deliver_block(&mut ring, list, step)
        });
    }
    for (e, ring) in rings {
        *world
            .get_mut::<SynapticInput>(e)
            .expect("a target population has ring buffers") = ring;
    }
}

/// One incoming projection of a step: its connectivity, its compact rows per block and the
/// spiking sources (ascending).
type Incoming<'a> = (&'a Connectivity, &'a [Option<CompactRows>], &'a [u32]);

/// One block's delivery of one step: projections in plan order, sources in the given
/// (ascending) order, rows in order; the arithmetic of the engine's own delivery. Each
/// spiking source is looked up in the block's compact rows (both ascending, so the search
/// only moves forward); the rows found are then added as the engine's delivery adds them,
/// several rows ahead in flight (`RingWriter::add_rows`).
#[inline]
fn deliver_block(ring: &mut RingBlockMut<'_>, list: &[Incoming<'_>], step: u64) {
    let b = ring.index;
    let mut found: Vec<Row<'_>> = Vec::new();
    for (conn, rows, sources) in list {
        let Some(c) = &rows[b] else { continue };
        let BlockRef::Block(blk) = conn.block(b) else {
            unreachable!("ranks keep the block layout (Exchanger::new)")
        };
        let mut at = 0usize;
        for &i in *sources {
            at += c.sources[at..].partition_point(|&s| s < i);
            if at == c.sources.len() {
                break;
            }
            if c.sources[at] != i {
                continue;
            }
            found.push(blk.slice(c.ptr[at] as usize..c.ptr[at + 1] as usize));
        }
    }
    let mut data = ring.writer();
    let now = data.slot_of(step);
    data.add_rows(now, &found);
}
