use bevy_ecs::prelude::*;

/// Connectivity of one projection: compressed sparse rows keyed by presynaptic neuron,
/// split into blocks of target neurons (see [`crate::DELIVERY_BLOCK`]).
///
/// Within a block, row `i` holds the synapses from source neuron `i` onto the block's
/// targets, in construction order (ascending target, then draw order). Per synapse: the
/// block-local target index (`u16`), the weight (`f32`, in the target model's unit) and
/// the delay in steps (`u16`, at least 1): 8 bytes per synapse.
#[derive(Component, Clone, Debug, Default)]
pub struct Connectivity {
    /// One block per delivery block of the target population.
    pub blocks: Vec<SynapseBlock>,
    /// Longest delay in steps.
    pub max_delay: u16,
    /// Number of source neurons (rows per block).
    pub n_source: usize,
}

/// The synapses of one projection onto one block of target neurons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynapseBlock {
    /// Row offsets: the synapses of source `i` are `row_ptr[i]..row_ptr[i + 1]`.
    pub row_ptr: Vec<u32>,
    /// Block-local target index of each synapse.
    pub target: Vec<u16>,
    /// Weight of each synapse [pA or mV, the target model's input unit].
    pub weight: Vec<f32>,
    /// Delay of each synapse [steps], at least 1.
    pub delay: Vec<u16>,
}

impl SynapseBlock {
    /// Number of synapses.
    pub fn len(&self) -> usize {
        self.target.len()
    }

    /// Whether the block holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
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
            .map(|b| {
                b.row_ptr.len() * 4 + b.target.len() * 2 + b.weight.len() * 4 + b.delay.len() * 2
            })
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
                for k in blk.row(i) {
                    out.push((
                        i as u32,
                        (b * block_size) as u32 + u32::from(blk.target[k]),
                        blk.weight[k],
                        blk.delay[k],
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
            for &t in &blk.target {
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
