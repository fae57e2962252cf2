#![doc = include_str!("../README.md")]

mod by_source;
mod connectivity;
mod input;
mod neuron_state;
mod plasticity;
mod population;
mod projection;
mod recording;
mod synaptic_input;

pub use by_source::{BlockRef, BySource};
pub use connectivity::{
    Connectivity, PACKED_MAX_DELAY, PACKED_MAX_TARGETS, PackedSynapse, Row, Synapse, SynapseBlock,
    SynapseRecord, SynapseStore, huge_page_vec,
};
pub use input::{DcInput, PoissonInput, SpikeGeneratorInput};
pub use neuron_state::{Columns, NeuronBlockMut, NeuronState};
pub use plasticity::{
    Column, PlasticityState, PostBlock, PostSpikes, PreView, SynapseColumn, TraceKind,
    WeightRecorder,
};
pub use population::{ExternalCurrent, Population, Spikes, StableId};
pub use projection::Projection;
pub use recording::{SpikeRecorder, StateRecorder};
pub use synaptic_input::{
    Arrival, CHANNELS, MAX_RING_BLOCK, ROW_AHEAD, RingBlockMut, RingWriter, SynapticInput,
    channel_of, prefetch, prefetch_row,
};

/// Number of target neurons per delivery block.
///
/// Connectivity, ring buffers and neuron updates are all split into blocks of this many
/// neurons. The value fixes the network layout (not the thread count), so results do not
/// depend on how many threads process the blocks. One slot of a block's ring
/// (`CHANNELS * DELIVERY_BLOCK * 4` bytes, 8 KiB) stays in L1 while its pending arrivals are
/// summed into it. Must not exceed [`MAX_RING_BLOCK`] (an arrival's index in
/// its slot, `channel * block + neuron`, is a `u16`; checked at compile time).
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
