#![doc = include_str!("../README.md")]

mod connectivity;
mod input;
mod neuron_state;
mod plasticity;
mod population;
mod projection;
mod recording;
mod synaptic_input;

pub use connectivity::{Connectivity, Synapse, SynapseBlock};
pub use input::{DcInput, PoissonInput, SpikeGeneratorInput};
pub use neuron_state::{NeuronBlockMut, NeuronState};
pub use plasticity::{
    Column, PlasticityState, PostBlock, PostSpikes, PreView, SynapseColumn, TraceKind,
    WeightRecorder,
};
pub use population::{ExternalCurrent, Population, Spikes, StableId};
pub use projection::Projection;
pub use recording::{SpikeRecorder, StateRecorder};
pub use synaptic_input::{
    Arrival, CHANNELS, MAX_RING_BLOCK, RingBlockMut, RingWriter, SynapticInput, add_row,
    channel_of, prefetch, prefetch_span,
};

/// Number of target neurons per delivery block.
///
/// Connectivity, ring buffers and neuron updates are all split into blocks of this many
/// neurons. The value fixes the network layout (not the thread count), so results do not
/// depend on how many threads process the blocks. A block's ring buffer
/// (`slots * CHANNELS * DELIVERY_BLOCK * 4` bytes, 0.5 MiB for 64 slots) stays in L2 while
/// spikes are delivered into it. Must not exceed `u16::MAX + 1` (targets are stored as
/// `u16` block-local indices).
pub const DELIVERY_BLOCK: usize = 1024;
const _: () = assert!(DELIVERY_BLOCK <= MAX_RING_BLOCK);

/// Number of blocks needed for `n` neurons.
pub fn block_count(n: usize) -> usize {
    n.div_ceil(DELIVERY_BLOCK)
}

/// Commonly used components.
pub mod prelude {
    pub use crate::{
        Connectivity, DELIVERY_BLOCK, ExternalCurrent, NeuronState, Population, Projection, Spikes,
        StableId, SynapticInput,
    };
}
