use bevy_ecs::prelude::*;

/// Connectivity of one projection: compressed sparse rows keyed by presynaptic neuron,
/// split into blocks of target neurons (see [`crate::DELIVERY_BLOCK`]).
///
/// Within a block, row `i` holds the synapses from source neuron `i` onto the block's
/// targets, in construction order (ascending target, then draw order). Each synapse is one
/// 8-byte [`Synapse`], so a row is one run of memory.
#[derive(Component, Clone, Debug, Default)]
pub struct Connectivity {
    /// One block per delivery block of the target population.
    pub blocks: Vec<SynapseBlock>,
    /// Longest delay in steps.
    pub max_delay: u16,
    /// Number of source neurons (rows per block).
    pub n_source: usize,
}

/// One synapse: 8 bytes, aligned to 8 so that none straddles a cache line.
///
/// Delivery reads every field of every synapse of a spiking row, and rows are scattered
/// over gigabytes: one array of whole synapses touches the fewest cache lines per row (a
/// row of 51 synapses touches ~7.3 lines, where three arrays of the same fields touch
/// ~9.3).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Synapse {
    /// Block-local target index.
    pub target: u16,
    /// Delay [steps], at least 1.
    pub delay: u16,
    /// Weight [pA or mV, the target model's input unit].
    pub weight: f32,
}

const _: () = assert!(std::mem::size_of::<Synapse>() == 8);

/// The synapses of one projection onto one block of target neurons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynapseBlock {
    /// Row offsets: the synapses of source `i` are `row_ptr[i]..row_ptr[i + 1]`.
    pub row_ptr: Vec<u32>,
    /// The synapses, row after row.
    pub synapses: Vec<Synapse>,
}

impl SynapseBlock {
    /// Number of synapses.
    pub fn len(&self) -> usize {
        self.synapses.len()
    }

    /// Whether the block holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.synapses.is_empty()
    }

    /// The block-local targets, in synapse order.
    pub fn targets(&self) -> impl ExactSizeIterator<Item = u16> + '_ {
        self.synapses.iter().map(|s| s.target)
    }

    /// The weights, in synapse order.
    pub fn weights(&self) -> impl ExactSizeIterator<Item = f32> + '_ {
        self.synapses.iter().map(|s| s.weight)
    }

    /// The delays [steps], in synapse order.
    pub fn delays(&self) -> impl ExactSizeIterator<Item = u16> + '_ {
        self.synapses.iter().map(|s| s.delay)
    }

    /// The synapses of source `i`.
    #[inline]
    pub fn row_synapses(&self, i: usize) -> &[Synapse] {
        &self.synapses[self.row(i)]
    }

    /// Index range of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> std::ops::Range<usize> {
        self.row_ptr[i] as usize..self.row_ptr[i + 1] as usize
    }
}

impl Connectivity {
    /// Total number of synapses.
    pub fn len(&self) -> usize {
        self.blocks.iter().map(SynapseBlock::len).sum()
    }

    /// Whether the projection holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the synapse arrays and row pointers.
    pub fn memory_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.row_ptr.len() * 4 + std::mem::size_of_val(&b.synapses[..]))
            .sum()
    }

    /// Every synapse as `(source, population-local target, weight, delay)`, in block and
    /// row order. Blocks without row pointers (another rank's, in a local build) hold none.
    /// For tests and analysis; not for the hot path.
    pub fn synapses(&self, block_size: usize) -> Vec<(u32, u32, f32, u16)> {
        let mut out = Vec::with_capacity(self.len());
        for (b, blk) in self.blocks.iter().enumerate() {
            if blk.row_ptr.is_empty() {
                continue;
            }
            for i in 0..self.n_source {
                for s in blk.row_synapses(i) {
                    out.push((
                        i as u32,
                        (b * block_size) as u32 + u32::from(s.target),
                        s.weight,
                        s.delay,
                    ));
                }
            }
        }
        out
    }

    /// Number of incoming synapses of each target neuron.
    pub fn in_degrees(&self, n_target: usize, block_size: usize) -> Vec<u32> {
        let mut deg = vec![0u32; n_target];
        for (b, blk) in self.blocks.iter().enumerate() {
            for t in blk.targets() {
                deg[b * block_size + usize::from(t)] += 1;
            }
        }
        deg
    }

    /// Number of outgoing synapses of each source neuron.
    pub fn out_degrees(&self) -> Vec<u32> {
        let mut deg = vec![0u32; self.n_source];
        for blk in &self.blocks {
            for (i, d) in deg.iter_mut().enumerate() {
                *d += blk.row_ptr[i + 1] - blk.row_ptr[i];
            }
        }
        deg
    }
}
