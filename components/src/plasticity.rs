//! Plasticity state of a projection, and weight recorders.
//!
//! A learning rule is a component on a projection entity (the rule itself, in the engine),
//! its state is [`PlasticityState`]: per-synapse variables stored beside the weights (one
//! `f32` column per block, aligned with [`crate::SynapseBlock::synapses`]), per-source-neuron
//! variables, and what the rule sees of its target population's spikes ([`PostSpikes`]).

use bevy_ecs::prelude::*;

/// A named column of per-neuron values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Column<T> {
    /// Variable name (the rule's variable table).
    pub name: String,
    /// Unit.
    pub unit: String,
    /// One value per neuron.
    pub values: Vec<T>,
}

/// A per-synapse variable: one column per target block, aligned with the block's weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynapseColumn {
    /// Variable name (the rule's variable table).
    pub name: String,
    /// Unit.
    pub unit: String,
    /// `blocks[b][k]` belongs to synapse `k` of target block `b`.
    pub blocks: Vec<Vec<f32>>,
}

/// Which postsynaptic trace a rule reads when a presynaptic spike depresses a synapse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceKind {
    /// No trace.
    #[default]
    None,
    /// All-to-all: the sum of `exp(-(t - t_post) / tau)` over every earlier spike (NEST's
    /// `Kminus`).
    AllToAll,
    /// Nearest neighbour: `exp(-(t - t_post) / tau)` of the latest earlier spike only.
    Nearest,
}

/// What a plastic projection's rule sees of its target population's spikes: the recent
/// spike times of every target neuron and a delay line of a postsynaptic trace.
///
/// Times are *stamps*: a spike emitted in step `s` has stamp `s + 1` (its time is
/// `(s + 1) dt`, as in recordings and in NEST).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PostSpikes {
    /// Per target neuron, the stamps of its spikes since the history horizon, ascending.
    pub history: Vec<Vec<u64>>,
    /// Per target neuron, its two latest spike stamps `[latest, the one before]` (0: none),
    /// a dense copy of the end of `history` that spares most synapses the look into it.
    /// Always the end of `history` ([`Self::rebuild_tail`] recomputes it).
    pub tail: Vec<[u64; 2]>,
    /// The trace at the last `slots` stamps, `[block][slot][neuron in block]`: the value at
    /// stamp `T` (counting spikes with stamps strictly before `T`) is in slot `T % slots`.
    pub trace: Vec<f64>,
    /// Slots of the trace delay line (longest delay + 2).
    pub slots: usize,
    /// Neurons per block (the layout's [`crate::DELIVERY_BLOCK`]).
    pub block: usize,
    /// Factor by which the trace decays in one step, `exp(-dt / tau_minus)`.
    pub decay: f64,
    /// Which trace.
    pub kind: TraceKind,
}

impl PostSpikes {
    /// Empty history and a zero trace for `n` neurons in blocks of `block`, with delays up to
    /// `max_delay` steps.
    pub fn new(n: usize, block: usize, max_delay: usize, decay: f64, kind: TraceKind) -> Self {
        let slots = max_delay + 2;
        let trace_len = if kind == TraceKind::None {
            0
        } else {
            n.div_ceil(block) * slots * block
        };
        Self {
            history: vec![Vec::new(); n],
            tail: vec![[0, 0]; n],
            trace: vec![0.0; trace_len],
            slots,
            block,
            decay,
            kind,
        }
    }

    /// Number of target neurons.
    pub fn len(&self) -> usize {
        self.history.len()
    }

    /// Appends a spike at `stamp` (not earlier than the neuron's last) of target `j`.
    #[inline]
    pub fn push(&mut self, j: usize, stamp: u64) {
        self.history[j].push(stamp);
        self.tail[j] = [stamp, self.tail[j][0]];
    }

    /// Recomputes [`Self::tail`] from [`Self::history`] (after a restore).
    pub fn rebuild_tail(&mut self) {
        self.tail = self
            .history
            .iter()
            .map(|h| {
                let n = h.len();
                [
                    n.checked_sub(1).map_or(0, |k| h[k]),
                    n.checked_sub(2).map_or(0, |k| h[k]),
                ]
            })
            .collect();
    }

    /// Whether there are no target neurons.
    pub fn is_empty(&self) -> bool {
        self.history.is_empty()
    }

    /// Floats of the trace per block.
    pub fn block_len(&self) -> usize {
        self.slots * self.block
    }

    /// Read-only view of block `b`.
    pub fn view(&self, b: usize) -> PostBlock<'_> {
        let first = b * self.block;
        let last = (first + self.block).min(self.history.len());
        let tl = self.block_len();
        let trace = if self.trace.is_empty() {
            &[][..]
        } else {
            &self.trace[b * tl..(b + 1) * tl]
        };
        PostBlock {
            history: &self.history[first..last],
            tail: &self.tail[first..last],
            trace,
            slots: self.slots,
            block: self.block,
        }
    }
}

/// Read-only view of one target block of [`PostSpikes`].
#[derive(Clone, Copy, Debug)]
pub struct PostBlock<'a> {
    /// Spike stamps of the block's neurons (block-local index).
    pub history: &'a [Vec<u64>],
    /// The two latest spike stamps of the block's neurons (see [`PostSpikes::tail`]).
    pub tail: &'a [[u64; 2]],
    /// The block's trace delay line, `[slot][neuron in block]`.
    pub trace: &'a [f64],
    /// Slots of the delay line.
    pub slots: usize,
    /// Neurons per block.
    pub block: usize,
}

impl PostBlock<'_> {
    /// The trace of block-local neuron `j` at stamp `t` (spikes strictly before `t`); `t`
    /// must lie within the last `slots - 1` stamps. Zero at stamp 0.
    #[inline]
    pub fn trace_at(&self, t: u64, j: usize) -> f64 {
        if t == 0 || self.trace.is_empty() {
            return 0.0;
        }
        self.trace[(t % self.slots as u64) as usize * self.block + j]
    }
}

/// Plasticity state of one projection: a component on plastic projection entities, beside
/// its [`crate::Connectivity`], whose weights the rule changes.
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct PlasticityState {
    /// Scene name of the rule.
    pub rule: String,
    /// Per-synapse variables (the rule's synapse table).
    pub synapse: Vec<SynapseColumn>,
    /// Real per-source-neuron variables (the rule's presynaptic table).
    pub pre: Vec<Column<f64>>,
    /// Integer per-source-neuron variables, e.g. spike stamps.
    pub pre_steps: Vec<Column<u64>>,
    /// The target population's spikes as the rule sees them.
    pub post: PostSpikes,
}

impl PlasticityState {
    /// Bytes held by the state.
    pub fn memory_bytes(&self) -> usize {
        let syn: usize = self
            .synapse
            .iter()
            .flat_map(|c| c.blocks.iter().map(|b| b.len() * 4))
            .sum();
        let pre: usize = self.pre.iter().map(|c| c.values.len() * 8).sum::<usize>()
            + self
                .pre_steps
                .iter()
                .map(|c| c.values.len() * 8)
                .sum::<usize>();
        let hist: usize = self
            .post
            .history
            .iter()
            .map(|h| h.capacity() * 8 + 24)
            .sum();
        syn + pre + hist + self.post.tail.len() * 16 + self.post.trace.len() * 8
    }
}

/// Read-only view of the per-source-neuron state of a projection.
#[derive(Clone, Debug)]
pub struct PreView<'a> {
    /// Real columns, in the rule's table order.
    pub real: Vec<&'a [f64]>,
    /// Integer columns, in the rule's table order.
    pub steps: Vec<&'a [u64]>,
}

impl PlasticityState {
    /// Read-only view of the per-source state.
    pub fn pre_view(&self) -> PreView<'_> {
        PreView {
            real: self.pre.iter().map(|c| c.values.as_slice()).collect(),
            steps: self.pre_steps.iter().map(|c| c.values.as_slice()).collect(),
        }
    }
}

/// Samples the weights of a projection (all synapses, or those onto chosen target neurons)
/// every `interval` steps.
#[derive(Component, Clone, Debug)]
pub struct WeightRecorder {
    /// Label (the HDF5 group name).
    pub label: String,
    /// Recorded projection entity.
    pub projection: Entity,
    /// Recorded target neurons as a mask over the target population; `None` means all.
    pub mask: Option<Vec<bool>>,
    /// Synapses per sample.
    pub n_synapses: usize,
    /// Sampling interval [steps].
    pub interval: u64,
    /// Source of each recorded synapse (population-local), in sample order; handed to the
    /// writer once (then empty).
    pub sources: Vec<u32>,
    /// Target of each recorded synapse (population-local), in sample order; handed to the
    /// writer once (then empty).
    pub targets: Vec<u32>,
    /// Step (the end of which is the sample time) of each buffered sample.
    pub steps: Vec<u64>,
    /// Buffered weights, one row of `n_synapses` per sample.
    pub values: Vec<f32>,
}
