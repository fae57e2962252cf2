use bevy_ecs::prelude::*;

use crate::Synapse;

/// Number of synaptic input channels per neuron: 0 excitatory (weight >= 0),
/// 1 inhibitory (weight < 0), routed by the sign of the weight as NEST does.
pub const CHANNELS: usize = 2;

/// The channel a weight is delivered to: excitatory for `w >= 0`, inhibitory otherwise.
#[inline]
pub fn channel_of(w: f32) -> usize {
    usize::from(w < 0.0)
}

/// One pending arrival: the index within its slot (`channel * block + neuron`) and the
/// weight, in 6 bytes (packed, so the weight is unaligned, which x86-64 and AArch64 load
/// without a fault). Each event is written once at delivery and read once when its slot is summed,
/// so the size of an arrival is most of delivery's memory traffic after the rows.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    at: u16,
    w: f32,
}

const _: () = assert!(std::mem::size_of::<Arrival>() == 6);

/// The most neurons a ring block may have: an arrival's index is a `u16`.
pub const MAX_RING_BLOCK: usize = (u16::MAX as usize + 1) / CHANNELS;

/// How many rows ahead delivery asks for every line of a row: rows are short (tens of
/// synapses per block) and scattered over gigabytes, so several must be in flight while
/// one is added. Both delivery paths (one process, and the ranks of a distributed run) use
/// it.
pub const ROW_AHEAD: usize = 4;

/// The slot `delay` slots after slot `now`, in a ring of `slots` (`delay < slots`).
#[inline(always)]
fn slot_after(now: usize, delay: usize, slots: usize) -> usize {
    let slot = now + delay;
    if slot >= slots { slot - slots } else { slot }
}

/// Asks the CPU to start loading the cache line holding `x` (no effect where the target has
/// no prefetch instruction). For the starts of synapse rows, which no hardware prefetcher
/// can guess: delivery fetches the rows of a later spike while it adds the current one's.
#[inline(always)]
pub fn prefetch<T>(x: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[expect(unsafe_code, reason = "the prefetch intrinsic is declared unsafe")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and reads or
    // writes nothing the program sees. SSE, which it needs, is part of every x86_64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(x.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Asks for every cache line of the `len` bytes from `start`.
#[inline(always)]
pub fn prefetch_bytes(start: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let (first, end) = (start as usize, start as usize + len);
    let mut line = first & !63;
    while line < end {
        prefetch(line as *const u8);
        line += 64;
    }
}

/// Asks for every cache line of `xs`.
#[inline(always)]
pub fn prefetch_span<T>(xs: &[T]) {
    prefetch_bytes(xs.as_ptr().cast(), std::mem::size_of_val(xs));
}

/// Sums `list` into the slot's cells (`channel * block + neuron`), in list order.
#[inline]
fn fold(cells: &mut [f32], list: &[Arrival]) {
    for &Arrival { at, w } in list {
        cells[usize::from(at)] += w;
    }
}

/// Where a block's events go: one list of pending arrivals per slot (see
/// [`SynapticInput`]).
pub struct RingWriter<'a> {
    pending: &'a mut [Vec<Arrival>],
    block: usize,
}

impl RingWriter<'_> {
    /// Number of slots (longest delay + 1).
    #[inline]
    pub fn slots(&self) -> usize {
        self.pending.len()
    }

    /// The slot that step `step` arrives in.
    #[inline]
    pub fn slot_of(&self, step: u64) -> usize {
        (step % self.slots() as u64) as usize
    }

    /// Asks for the cache lines the next `bytes` bytes of arrivals of every slot will be
    /// written to. A list's memory was last touched when its slot was last read, a whole
    /// ring period ago, so without this nearly every line of every list is a write miss.
    #[inline]
    pub fn prefetch_tails(&self, bytes: usize) {
        for list in self.pending.iter() {
            let tail = list.as_ptr().wrapping_add(list.len()).cast::<u8>();
            let room = (list.capacity() - list.len()) * std::mem::size_of::<Arrival>();
            prefetch_bytes(tail, bytes.min(room));
        }
    }

    /// Adds `w` for block neuron `j` to slot `slot`, in the channel of the weight's sign:
    /// the one place an arrival is packed (`channel * block + j`).
    #[inline]
    pub fn add(&mut self, slot: usize, j: usize, w: f32) {
        let at = (channel_of(w) * self.block + j) as u16;
        self.pending[slot].push(Arrival { at, w });
    }

    /// Adds `w` for block neuron `j`, arriving `delay` slots after slot `now`.
    #[inline]
    pub fn add_after(&mut self, now: usize, delay: usize, j: usize, w: f32) {
        self.add(slot_after(now, delay, self.slots()), j, w);
    }

    /// Adds one row of synapses: each adds its weight to its block neuron, in the channel
    /// of the weight's sign, `delay` slots after slot `now`. The inner loop that every
    /// delivery path shares.
    #[inline]
    pub fn add_row(&mut self, now: usize, row: &[Synapse]) {
        let slots = self.slots();
        for s in row {
            let slot = slot_after(now, usize::from(s.delay), slots);
            self.add(slot, usize::from(s.target), s.weight);
        }
    }

    /// Adds `rows` in order, with every line of the row [`ROW_AHEAD`] rows later asked
    /// for while one is added.
    pub fn add_rows(&mut self, now: usize, rows: &[&[Synapse]]) {
        for row in rows.iter().take(ROW_AHEAD) {
            prefetch_span(row);
        }
        for (k, row) in rows.iter().enumerate() {
            if let Some(ahead) = rows.get(k + ROW_AHEAD) {
                prefetch_span(ahead);
            }
            self.add_row(now, row);
        }
    }
}

/// Delay ring buffers of one population: for every neuron, channel and future step up to
/// the longest incoming delay, the summed weight arriving then.
///
/// Layout `[block][slot][channel][neuron in block]`, so one block is one contiguous chunk
/// (`slots * CHANNELS * block` floats) that a thread owns during delivery. An event that
/// arrives at step `s` belongs to slot `s % slots`; the neuron update of step `s` reads
/// that slot and the engine clears it.
///
/// Events are not added into the slot when they are sent: each is appended to its slot's
/// list of pending arrivals, and the list is summed into the slot, in the order the events
/// were sent, when the slot is read ([`RingBlockMut::slot_mut`]). Every value is therefore
/// the same sum, in the same order, as adding each event at once, but the writes of
/// delivery are sequential appends to a few lists rather than scattered updates of
/// buffers too large for the cache, and the sums happen in a slot that is in L1.
#[derive(Component, Clone, Debug)]
pub struct SynapticInput {
    n: usize,
    block: usize,
    slots: usize,
    /// The buffers, `blocks * slots * CHANNELS * block` floats, without the pending
    /// arrivals (see [`Self::folded`]).
    pub data: Vec<f32>,
    /// Pending arrivals per block and slot, `[block * slots + slot]`.
    pending: Vec<Vec<Arrival>>,
}

/// Mutable view of one block of a population's ring buffers.
pub struct RingBlockMut<'a> {
    /// Index of the block in its population.
    pub index: usize,
    /// Population-local index of the block's first neuron.
    pub first: usize,
    /// Number of neurons in the block (the last block may be short).
    pub len: usize,
    block: usize,
    slots: usize,
    data: &'a mut [f32],
    pending: &'a mut [Vec<Arrival>],
}

impl SynapticInput {
    /// Ring buffers for `n` neurons in blocks of `block`, holding arrivals up to
    /// `max_delay` steps ahead.
    ///
    /// # Panics
    /// If `block` exceeds [`MAX_RING_BLOCK`] (the engine's blocks are
    /// [`crate::DELIVERY_BLOCK`], far below it).
    pub fn new(n: usize, block: usize, max_delay: usize) -> Self {
        assert!(
            block <= MAX_RING_BLOCK,
            "ring blocks of {block} neurons: at most {MAX_RING_BLOCK}"
        );
        let slots = max_delay + 1;
        let blocks = n.div_ceil(block);
        Self {
            n,
            block,
            slots,
            data: vec![0.0; blocks * slots * CHANNELS * block],
            pending: vec![Vec::new(); blocks * slots],
        }
    }

    /// The buffers with every pending arrival summed in (what [`Self::data`] holds once
    /// each slot has been read): borrowed when nothing is pending.
    pub fn folded(&self) -> std::borrow::Cow<'_, [f32]> {
        if self.pending.iter().all(Vec::is_empty) {
            return std::borrow::Cow::Borrowed(&self.data);
        }
        let mut data = self.data.clone();
        let slot_len = CHANNELS * self.block;
        for (cells, list) in data.chunks_mut(slot_len).zip(&self.pending) {
            fold(cells, list);
        }
        std::borrow::Cow::Owned(data)
    }

    /// Drops every pending arrival (after [`Self::data`] was replaced, e.g. by a restore).
    pub fn discard_pending(&mut self) {
        self.pending.iter_mut().for_each(Vec::clear);
    }

    /// Bytes the pending-arrival lists hold (events in flight and the capacity the lists
    /// keep between steps).
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<Arrival>()
    }

    /// Number of slots (longest delay + 1).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the population is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Floats per block.
    pub fn block_len(&self) -> usize {
        self.slots * CHANNELS * self.block
    }

    /// Adds weight `w` for neuron `i` arriving at step `arrival` (channel by sign).
    #[inline]
    pub fn add(&mut self, i: usize, arrival: u64, w: f32) {
        let (b, j) = (i / self.block, i % self.block);
        let mut ring = RingWriter {
            pending: &mut self.pending[b * self.slots..(b + 1) * self.slots],
            block: self.block,
        };
        let slot = ring.slot_of(arrival);
        ring.add(slot, j, w);
    }

    /// One mutable view per block.
    pub fn blocks_mut(&mut self) -> Vec<RingBlockMut<'_>> {
        let (n, block, slots) = (self.n, self.block, self.slots);
        let len = self.block_len();
        self.data
            .chunks_mut(len)
            .zip(self.pending.chunks_mut(slots))
            .enumerate()
            .map(|(index, (data, pending))| RingBlockMut {
                index,
                first: index * block,
                len: block.min(n - index * block),
                block,
                slots,
                data,
                pending,
            })
            .collect()
    }
}

impl<'a> RingBlockMut<'a> {
    /// Adds weight `w` for block-local neuron `j` arriving at step `arrival`.
    #[inline]
    pub fn add(&mut self, j: usize, arrival: u64, w: f32) {
        let mut ring = self.writer();
        let slot = ring.slot_of(arrival);
        ring.add(slot, j, w);
    }

    /// The slot of step `step` as `(excitatory, inhibitory)` slices of the block's length,
    /// with its pending arrivals summed in, in the order they were sent.
    #[inline]
    pub fn slot_mut(&mut self, step: u64) -> (&mut [f32], &mut [f32]) {
        let slot = (step % self.slots as u64) as usize;
        let base = slot * CHANNELS * self.block;
        let cells = &mut self.data[base..base + CHANNELS * self.block];
        if !self.pending[slot].is_empty() {
            // The cells were last touched a ring period ago: fetch them all before the
            // scattered additions, rather than miss on each line in turn.
            prefetch_span(cells);
        }
        fold(cells, &self.pending[slot]);
        self.pending[slot].clear();
        let (ex, rest) = cells.split_at_mut(self.block);
        (&mut ex[..self.len], &mut rest[..self.len])
    }

    /// The block's pending-arrival lists, for kernels that add with a precomputed slot.
    #[inline]
    pub fn writer(&mut self) -> RingWriter<'_> {
        RingWriter {
            pending: self.pending,
            block: self.block,
        }
    }
}
