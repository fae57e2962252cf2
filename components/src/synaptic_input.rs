use bevy_ecs::prelude::*;

use crate::{Row, SynapseRecord};

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

/// How many arrivals ahead of each append its list's memory is asked for. Stores reach
/// memory in program order, so one append to a line that is not in the cache holds up every
/// store after it; the lines at the start of each list's tail are fetched when a block
/// starts (`RingWriter::prefetch_tails`), and this keeps the busiest lists' next lines on
/// their way as they grow past them.
const APPEND_AHEAD: usize = 16;

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
        let list = &mut self.pending[slot];
        list.push(Arrival { at, w });
        prefetch(list.as_ptr().wrapping_add(list.len() + APPEND_AHEAD));
    }

    /// Adds `w` for block neuron `j`, arriving `delay` slots after slot `now`.
    #[inline]
    pub fn add_after(&mut self, now: usize, delay: usize, j: usize, w: f32) {
        self.add(slot_after(now, delay, self.slots()), j, w);
    }

    /// Adds one row of synapses: each adds its weight to its block neuron, in the channel
    /// of the weight's sign, `delay` slots after slot `now`. The inner loop that every
    /// delivery path shares (one copy per synapse layout).
    #[inline]
    pub fn add_row(&mut self, now: usize, row: Row<'_>) {
        match row {
            Row::Packed(r) => self.add_records(now, r),
            Row::Unpacked(r) => self.add_records(now, r),
        }
    }

    #[inline(always)]
    fn add_records<S: SynapseRecord>(&mut self, now: usize, row: &[S]) {
        let slots = self.slots();
        for &s in row {
            let slot = slot_after(now, s.delay(), slots);
            self.add(slot, s.target(), s.weight());
        }
    }

    /// Adds `rows` in order, with every line of the row [`ROW_AHEAD`] rows later asked
    /// for while one is added.
    pub fn add_rows(&mut self, now: usize, rows: &[Row<'_>]) {
        for row in rows.iter().take(ROW_AHEAD) {
            prefetch_row(*row);
        }
        for (k, row) in rows.iter().enumerate() {
            if let Some(ahead) = rows.get(k + ROW_AHEAD) {
                prefetch_row(*ahead);
            }
            self.add_row(now, *row);
        }
    }
}

/// Asks for every cache line of `row`.
#[inline(always)]
pub fn prefetch_row(row: Row<'_>) {
    let (start, len) = row.bytes();
    prefetch_bytes(start, len);
}

/// Delay ring buffers of one population: for every neuron, channel and future step up to
/// the longest incoming delay, the summed weight arriving then.
///
/// Blocks of `block` neurons, each owned by one thread during delivery. An event that
/// arrives at step `s` belongs to slot `s % slots` of its block, where `slots` is the
/// longest delay + 1.
///
/// Events are not added into a buffer when they are sent: each is appended to its slot's
/// list of pending arrivals, and the list is summed, in the order the events were sent,
/// when the slot is read ([`RingBlockMut::slot_mut`]). Every value is therefore the same
/// sum, in the same order, as adding each event at once into a ring of `slots` buffers,
/// but the writes of delivery are sequential appends to a few lists rather than scattered
/// updates of buffers too large for the cache. Since a slot holds nothing but its list
/// until it is read, a block keeps one buffer, the slot of the current step
/// (`CHANNELS * block` floats): the list is summed into it, the neuron update reads it and
/// clears it, and the same few kilobytes serve every step, so they can stay in the cache.
///
/// The ring as a whole, `[block][slot][channel][neuron in block]`, exists only in
/// checkpoints ([`Self::folded`], [`Self::restore`]). Sums restored from one wait, per
/// block and slot, until that slot is first read.
#[derive(Component, Clone, Debug)]
pub struct SynapticInput {
    n: usize,
    block: usize,
    slots: usize,
    /// The slot being read, per block (`blocks * CHANNELS * block` floats): zero between
    /// steps, since the neuron update clears what it read.
    current: Vec<f32>,
    /// Sums restored from a checkpoint, per block and slot (`[block * slots + slot]`),
    /// taken when the slot is first read; all `None` in a run that was not restored.
    carried: Vec<Option<Box<[f32]>>>,
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
    current: &'a mut [f32],
    carried: &'a mut [Option<Box<[f32]>>],
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
            current: vec![0.0; blocks * CHANNELS * block],
            carried: vec![None; blocks * slots],
            pending: vec![Vec::new(); blocks * slots],
        }
    }

    /// Number of values in the whole ring, `blocks * slots * CHANNELS * block` (the length
    /// of [`Self::folded`]).
    pub fn ring_len(&self) -> usize {
        self.pending.len() * CHANNELS * self.block
    }

    /// The whole ring, `[block][slot][channel][neuron in block]`, with every pending
    /// arrival summed in: what a ring of `slots` buffers would hold between steps.
    pub fn folded(&self) -> Vec<f32> {
        let slot_len = CHANNELS * self.block;
        let mut data = vec![0.0; self.ring_len()];
        for ((cells, list), carried) in data
            .chunks_mut(slot_len)
            .zip(&self.pending)
            .zip(&self.carried)
        {
            if let Some(c) = carried {
                cells.copy_from_slice(c);
            }
            fold(cells, list);
        }
        data
    }

    /// Replaces the ring's contents by `ring`, laid out as [`Self::folded`] gives it (a
    /// checkpoint's): pending arrivals are dropped, and each slot's sums wait until it is
    /// first read.
    ///
    /// # Panics
    /// If `ring` does not have [`Self::ring_len`] values.
    pub fn restore(&mut self, ring: &[f32]) {
        assert_eq!(ring.len(), self.ring_len(), "ring buffers of another size");
        self.pending.iter_mut().for_each(Vec::clear);
        self.current.fill(0.0);
        for (carried, cells) in self
            .carried
            .iter_mut()
            .zip(ring.chunks(CHANNELS * self.block))
        {
            // All +0.0 is what an untouched slot holds: nothing to carry.
            *carried = cells.iter().any(|x| x.to_bits() != 0).then(|| cells.into());
        }
    }

    /// Bytes the pending-arrival lists hold (events in flight and the capacity the lists
    /// keep between steps).
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<Arrival>()
    }

    /// Bytes of the buffers besides the lists: the current slot of every block, and sums
    /// restored from a checkpoint that no step has read yet.
    pub fn buffer_bytes(&self) -> usize {
        let carried: usize = self.carried.iter().flatten().map(|c| c.len()).sum();
        (self.current.len() + carried) * std::mem::size_of::<f32>()
    }

    /// Number of slots (longest delay + 1).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Neurons per block (the last block may be short).
    pub fn block(&self) -> usize {
        self.block
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(self.block)
    }

    /// Whether the population is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
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

    /// One mutable view per block, in block order (an iterator, so that the per-step loops
    /// allocate nothing to list them).
    pub fn blocks_mut(&mut self) -> impl ExactSizeIterator<Item = RingBlockMut<'_>> {
        let (n, block, slots) = (self.n, self.block, self.slots);
        self.current
            .chunks_mut(CHANNELS * block)
            .zip(self.carried.chunks_mut(slots))
            .zip(self.pending.chunks_mut(slots))
            .enumerate()
            .map(move |(index, ((current, carried), pending))| RingBlockMut {
                index,
                first: index * block,
                len: block.min(n - index * block),
                block,
                slots,
                current,
                carried,
                pending,
            })
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
    /// with its pending arrivals summed in, in the order they were sent. The caller that
    /// consumes the step's input (the neuron update) clears both slices after reading
    /// them: the block's next step sums into the same buffer.
    #[inline]
    pub fn slot_mut(&mut self, step: u64) -> (&mut [f32], &mut [f32]) {
        let slot = (step % self.slots as u64) as usize;
        let cells = &mut *self.current;
        if let Some(c) = self.carried[slot].take() {
            // Restored sums come first, as in the ring the checkpoint was taken from; the
            // buffer is zero here, so copying keeps every bit (a -0.0 included).
            cells.copy_from_slice(&c);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads step `step` of every block as the neuron update does (then clears it), as
    /// `[block][channel][neuron]`.
    fn read_step(ring: &mut SynapticInput, step: u64) -> Vec<Vec<f32>> {
        ring.blocks_mut()
            .map(|mut b| {
                let (ex, inh) = b.slot_mut(step);
                let got = ex.iter().chain(inh.iter()).copied().collect();
                ex.fill(0.0);
                inh.fill(0.0);
                got
            })
            .collect()
    }

    /// Events added at once into a ring of `slots` buffers, in the order they were sent,
    /// against the pending lists summed into the one buffer per block: the same values
    /// bit for bit, step after step, through several ring periods.
    #[test]
    fn one_buffer_per_block_sums_as_a_ring_of_slots() {
        let (n, block, max_delay) = (5, 3, 4);
        let slots = max_delay + 1;
        let mut ring = SynapticInput::new(n, block, max_delay);
        let mut reference = vec![0.0f32; n.div_ceil(block) * slots * CHANNELS * block];
        let mut x = 0x2545_f491u32;
        for step in 0..40u64 {
            assert_eq!(ring.folded(), reference, "folded ring before step {step}");
            let got = read_step(&mut ring, step);
            for (b, got) in got.iter().enumerate() {
                let len = block.min(n - b * block);
                let base = (b * slots + (step as usize % slots)) * CHANNELS * block;
                let want: Vec<f32> = (0..CHANNELS)
                    .flat_map(|c| reference[base + c * block..][..len].to_vec())
                    .collect();
                assert_eq!(*got, want, "step {step}, block {b}");
                reference[base..base + CHANNELS * block].fill(0.0);
            }
            for _ in 0..7 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % n;
                let delay = 1 + (x >> 8) as usize % max_delay;
                let w = ((x >> 16) % 200) as f32 * 0.37 - 37.0;
                let arrival = step + delay as u64;
                ring.add(i, arrival, w);
                let (b, j) = (i / block, i % block);
                let slot = (arrival % slots as u64) as usize;
                reference[(b * slots + slot) * CHANNELS * block + channel_of(w) * block + j] += w;
            }
        }
    }

    /// A row adds the same arrivals, in the same order, whichever layout holds it.
    #[test]
    fn packed_and_unpacked_rows_add_the_same_arrivals() {
        use crate::{Synapse, SynapseBlock, SynapseStore};
        let syn: Vec<Synapse> = (0..200u16)
            .map(|k| Synapse {
                target: (k * 13) % 1024,
                delay: 1 + (k * 7) % 40,
                weight: f32::from(k) * 0.5 - 30.0,
            })
            .collect();
        let packed = SynapseBlock::new(vec![0, 120, 200], syn.clone());
        let unpacked = SynapseBlock::from_store(vec![0, 120, 200], SynapseStore::Unpacked(syn));
        assert!(packed.is_packed() && !unpacked.is_packed());
        let mut rings = [
            SynapticInput::new(1024, 1024, 40),
            SynapticInput::new(1024, 1024, 40),
        ];
        for step in [3u64, 4, 30, 41] {
            for (ring, blk) in rings.iter_mut().zip([&packed, &unpacked]) {
                let mut block = ring.blocks_mut().next().expect("one block");
                let mut w = block.writer();
                let now = w.slot_of(step);
                w.add_rows(now, &[blk.row_synapses(1), blk.row_synapses(0)]);
            }
        }
        let [a, b] = rings.map(|r| r.folded());
        assert!(a.iter().any(|&x| x != 0.0));
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    /// A restored ring gives back what it was given, reads each slot's restored sums once
    /// (a second read in the same step, as after the Poisson inputs, adds nothing again),
    /// keeps a -0.0, and adds later arrivals after the restored sums.
    #[test]
    fn restored_sums_are_read_once_and_bit_exact() {
        let (n, block, max_delay) = (4, 4, 2);
        let mut ring = SynapticInput::new(n, block, max_delay);
        let len = ring.ring_len();
        assert_eq!(len, 3 * CHANNELS * 4);
        let mut saved: Vec<f32> = (0..len).map(|i| i as f32 * 0.25).collect();
        saved[CHANNELS * 4 + 1] = -0.0; // slot 1, excitatory, neuron 1
        ring.add(0, 1, 9.0); // dropped by the restore
        ring.restore(&saved);
        assert_eq!(
            ring.folded()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            saved.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        ring.add(2, 1, 1.5);
        ring.add(3, 1, -2.0);
        let mut b = ring.blocks_mut().next().expect("one block");
        let (ex, inh) = b.slot_mut(1);
        assert_eq!(ex[1].to_bits(), (-0.0f32).to_bits());
        assert_eq!(ex[2], saved[CHANNELS * 4 + 2] + 1.5);
        assert_eq!(inh[3], saved[CHANNELS * 4 + 4 + 3] + -2.0);
        let first: Vec<f32> = ex.iter().chain(inh.iter()).copied().collect();
        let (ex, inh) = b.slot_mut(1);
        let again: Vec<f32> = ex.iter().chain(inh.iter()).copied().collect();
        assert_eq!(
            first.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            again.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        ex.fill(0.0);
        inh.fill(0.0);
        // Once read, a slot holds nothing more until new arrivals: a ring period later it
        // is zero.
        let (ex, inh) = b.slot_mut(1 + 3);
        assert!(ex.iter().chain(inh.iter()).all(|&x| x == 0.0));
    }
}
