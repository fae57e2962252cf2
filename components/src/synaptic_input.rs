use bevy_ecs::prelude::*;

/// Number of synaptic input channels per neuron: 0 excitatory (weight >= 0),
/// 1 inhibitory (weight < 0), routed by the sign of the weight as NEST does.
pub const CHANNELS: usize = 2;

/// The channel a weight is delivered to: excitatory for `w >= 0`, inhibitory otherwise.
#[inline]
pub fn channel_of(w: f32) -> usize {
    usize::from(w < 0.0)
}

/// Adds one row of synapses into a block's ring slots: synapse `k` adds `weight[k]` to block
/// neuron `target[k]`, in the channel of the weight's sign, `delay[k]` slots after slot
/// `now`. `data`, `slots` and `block` are [`RingBlockMut::raw_mut`]'s. The inner loop that
/// every delivery path shares (one process, and the ranks of a distributed run).
#[inline]
pub fn add_row(
    data: &mut [f32],
    slots: usize,
    block: usize,
    now: usize,
    target: &[u16],
    weight: &[f32],
    delay: &[u16],
) {
    let n = target.len();
    let (weight, delay) = (&weight[..n], &delay[..n]);
    for k in 0..n {
        let mut slot = now + usize::from(delay[k]);
        if slot >= slots {
            slot -= slots;
        }
        data[(slot * CHANNELS + channel_of(weight[k])) * block + usize::from(target[k])] +=
            weight[k];
    }
}

/// Delay ring buffers of one population: for every neuron, channel and future step up to
/// the longest incoming delay, the summed weight arriving then.
///
/// Layout `[block][slot][channel][neuron in block]`, so one block is one contiguous chunk
/// (`slots * CHANNELS * block` floats) that a thread owns during delivery. An event that
/// arrives at step `s` is stored in slot `s % slots`; the neuron update of step `s` reads
/// that slot and the engine clears it.
#[derive(Component, Clone, Debug)]
pub struct SynapticInput {
    n: usize,
    block: usize,
    slots: usize,
    /// The buffers, `blocks * slots * CHANNELS * block` floats.
    pub data: Vec<f32>,
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
}

impl SynapticInput {
    /// Ring buffers for `n` neurons in blocks of `block`, holding arrivals up to
    /// `max_delay` steps ahead.
    pub fn new(n: usize, block: usize, max_delay: usize) -> Self {
        let slots = max_delay + 1;
        let blocks = n.div_ceil(block);
        Self {
            n,
            block,
            slots,
            data: vec![0.0; blocks * slots * CHANNELS * block],
        }
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

    /// Index into `data` of neuron `i`, channel `ch`, for an arrival at step `arrival`.
    #[inline]
    pub fn index(&self, i: usize, ch: usize, arrival: u64) -> usize {
        let (b, j) = (i / self.block, i % self.block);
        let slot = (arrival % self.slots as u64) as usize;
        b * self.block_len() + (slot * CHANNELS + ch) * self.block + j
    }

    /// Adds weight `w` for neuron `i` arriving at step `arrival` (channel by sign).
    #[inline]
    pub fn add(&mut self, i: usize, arrival: u64, w: f32) {
        let k = self.index(i, channel_of(w), arrival);
        self.data[k] += w;
    }

    /// One mutable view per block.
    pub fn blocks_mut(&mut self) -> Vec<RingBlockMut<'_>> {
        let (n, block, slots) = (self.n, self.block, self.slots);
        let len = self.block_len();
        self.data
            .chunks_mut(len)
            .enumerate()
            .map(|(index, data)| RingBlockMut {
                index,
                first: index * block,
                len: block.min(n - index * block),
                block,
                slots,
                data,
            })
            .collect()
    }
}

impl<'a> RingBlockMut<'a> {
    /// Adds weight `w` for block-local neuron `j` arriving at step `arrival`.
    #[inline]
    pub fn add(&mut self, j: usize, arrival: u64, w: f32) {
        let slot = (arrival % self.slots as u64) as usize;
        self.data[(slot * CHANNELS + channel_of(w)) * self.block + j] += w;
    }

    /// The slot of step `step` as `(excitatory, inhibitory)` slices of the block's length.
    #[inline]
    pub fn slot_mut(&mut self, step: u64) -> (&mut [f32], &mut [f32]) {
        let slot = (step % self.slots as u64) as usize;
        let base = slot * CHANNELS * self.block;
        let (ex, rest) = self.data[base..base + CHANNELS * self.block].split_at_mut(self.block);
        (&mut ex[..self.len], &mut rest[..self.len])
    }

    /// Offset in the block's slot array of (arrival step, channel): add a block-local
    /// neuron index to it. Compute once per batch of events that share both.
    #[inline]
    pub fn lane(&self, arrival: u64, ch: usize) -> usize {
        ((arrival % self.slots as u64) as usize * CHANNELS + ch) * self.block
    }

    /// Adds `w` at `lane + j` (see [`Self::lane`]).
    #[inline]
    pub fn add_in_lane(&mut self, lane: usize, j: usize, w: f32) {
        self.data[lane + j] += w;
    }

    /// The whole slot array of the block, for kernels that add with a precomputed offset:
    /// element `(slot * CHANNELS + ch) * block + j`.
    #[inline]
    pub fn raw_mut(&mut self) -> (&mut [f32], usize, usize) {
        (self.data, self.slots, self.block)
    }
}
