//! The tables the CUDA kernels read their populations, inputs and projections from, field
//! for field as the structs of the kernel sources declare them (`NeuronPopulation` in
//! engine/src/backend/prelude.cu, `PoissonSource` in inputs/poisson.cu,
//! `DeliveryProjection` in delivery.cu, `PlasticProjection` in plasticity/stdp.cu).
//! Pointers are device addresses; two 32-bit fields share a word, the first in its low half
//! (the devices are little-endian). Each struct's size is asserted in its source, and the
//! host-compiled kernels read these words in the tests of `cuda.rs`.

/// Two 32-bit fields in one word, `lo` first in memory.
fn pack(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

/// Where each population's words start in the spike bitmap, whole words per population,
/// and the bitmap's length last (`pop_word` of `compact_spikes`): `n + 1` entries for the
/// sizes of `n` populations.
pub(crate) fn bitmap_words(sizes: &[u32]) -> Vec<u32> {
    first_blocks(sizes, 32)
}

/// Where each row's thread blocks start in a launch that gives a row of `n` threads
/// `ceil(n / threads)` blocks, one row after another (`row_of_block` in the prelude), and
/// the launch's blocks last: `sizes.len() + 1` entries.
pub(crate) fn first_blocks(sizes: &[u32], threads: u32) -> Vec<u32> {
    let mut starts = Vec::with_capacity(sizes.len() + 1);
    starts.push(0);
    for &n in sizes {
        starts.push(starts.last().unwrap() + n.div_ceil(threads));
    }
    starts
}

/// One population of a neuron-update launch (`NeuronPopulation`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NeuronPopulation {
    pub c: u64,
    pub real: u64,
    pub integer: u64,
    pub ring: u64,
    pub current: u64,
    pub words: u64,
    pub n: u32,
    pub slots: u32,
    pub first_block: u32,
}

impl NeuronPopulation {
    pub(crate) fn words(&self) -> [u64; 8] {
        [
            self.c,
            self.real,
            self.integer,
            self.ring,
            self.current,
            self.words,
            pack(self.n, self.slots),
            pack(self.first_block, 0),
        ]
    }
}

/// One Poisson input of a launch (`PoissonSource`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PoissonSource {
    pub thresholds: u64,
    pub ring: u64,
    pub neurons: u64,
    pub lambda: f64,
    pub start: u64,
    pub stop: u64,
    pub n_thresholds: u32,
    pub element: u32,
    pub delay: u32,
    pub slots: u32,
    pub n: u32,
    pub weight: f32,
    pub first_block: u32,
}

impl PoissonSource {
    pub(crate) fn words(&self) -> [u64; 10] {
        [
            self.thresholds,
            self.ring,
            self.neurons,
            self.lambda.to_bits(),
            self.start,
            self.stop,
            pack(self.n_thresholds, self.element),
            pack(self.delay, self.slots),
            pack(self.n, self.weight.to_bits()),
            pack(self.first_block, 0),
        ]
    }
}

/// One projection of the delivery launch (`DeliveryProjection`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DeliveryProjection {
    pub row_base: u64,
    pub row_ptr: u64,
    pub syn_base: u64,
    pub target: u64,
    pub weight: u64,
    pub delay: u64,
    pub ring: u64,
    pub n_blocks: u32,
    pub source: u32,
    pub source_word: u32,
    pub slots: u32,
}

impl DeliveryProjection {
    pub(crate) fn words(&self) -> [u64; 9] {
        [
            self.row_base,
            self.row_ptr,
            self.syn_base,
            self.target,
            self.weight,
            self.delay,
            self.ring,
            pack(self.n_blocks, self.source),
            pack(self.source_word, self.slots),
        ]
    }
}

/// The CSR of a projection's blocks laid end to end, as `DeliveryProjection` points into
/// it: per block the offset of its row offsets and of its synapses, then the row offsets,
/// targets, weights and delays of every block.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FlatCsr {
    pub row_base: Vec<u64>,
    pub syn_base: Vec<u64>,
    pub row_ptr: Vec<u32>,
    pub target: Vec<u16>,
    pub weight: Vec<f32>,
    pub delay: Vec<u16>,
}

impl FlatCsr {
    /// The blocks of `c`, whichever layout the host keeps.
    pub(crate) fn of(c: &myelin_components::Connectivity) -> Self {
        let n = c.len();
        let mut f = Self {
            target: Vec::with_capacity(n),
            weight: Vec::with_capacity(n),
            delay: Vec::with_capacity(n),
            ..Self::default()
        };
        for b in c.blocks() {
            f.row_base.push(f.row_ptr.len() as u64);
            f.syn_base.push(f.target.len() as u64);
            f.row_ptr.extend_from_slice(&b.row_ptr());
            for s in b.iter() {
                f.target.push(s.target);
                f.weight.push(s.weight);
                f.delay.push(s.delay);
            }
        }
        f
    }
}

/// One plastic projection of the STDP launches (`PlasticProjection` in
/// plasticity/stdp.cu).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PlasticProjection {
    pub row_base: u64,
    pub row_ptr: u64,
    pub syn_base: u64,
    pub target: u64,
    pub weight: u64,
    pub delay: u64,
    pub syn_state: u64,
    pub t_last: u64,
    pub paired_until: u64,
    pub kplus: u64,
    pub history: u64,
    pub hist_head: u64,
    pub hist_len: u64,
    pub trace: u64,
    pub c: u64,
    pub decay: u64,
    pub ring: u64,
    pub status: u64,
    pub catch_up_period: u64,
    pub n_decay: u32,
    pub pairing: u32,
    pub dependence: u32,
    pub n_blocks: u32,
    pub source: u32,
    pub source_word: u32,
    pub target_pop: u32,
    pub target_word: u32,
    pub n_source: u32,
    pub n_target: u32,
    pub slots: u32,
    pub tslots: u32,
    pub hist_cap: u32,
    pub max_delay: u32,
}

impl PlasticProjection {
    pub(crate) fn words(&self) -> [u64; 26] {
        [
            self.row_base,
            self.row_ptr,
            self.syn_base,
            self.target,
            self.weight,
            self.delay,
            self.syn_state,
            self.t_last,
            self.paired_until,
            self.kplus,
            self.history,
            self.hist_head,
            self.hist_len,
            self.trace,
            self.c,
            self.decay,
            self.ring,
            self.status,
            self.catch_up_period,
            pack(self.n_decay, self.pairing),
            pack(self.dependence, self.n_blocks),
            pack(self.source, self.source_word),
            pack(self.target_pop, self.target_word),
            pack(self.n_source, self.n_target),
            pack(self.slots, self.tslots),
            pack(self.hist_cap, self.max_delay),
        ]
    }
}

/// The state of a plastic projection as `PlasticProjection` points into it, beside its
/// [`FlatCsr`]: the per-synapse variable of every block end to end (empty where the rule has
/// none), the per-source columns, every target's history in a circle of `hist_cap` stamps
/// (oldest at `head - len`), and the trace delay line as the host keeps it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FlatPlastic {
    pub syn_state: Vec<f32>,
    pub t_last: Vec<u64>,
    pub paired_until: Vec<u64>,
    pub kplus: Vec<f64>,
    pub history: Vec<u64>,
    pub hist_head: Vec<u32>,
    pub hist_len: Vec<u32>,
    pub trace: Vec<f64>,
}

impl FlatPlastic {
    /// `state` (of an STDP-family rule: per-source columns `t_last`, `paired_until` and,
    /// all-to-all, `Kplus`) with histories of `hist_cap` stamps; `None` where a history
    /// holds more.
    pub(crate) fn of(state: &myelin_components::PlasticityState, hist_cap: usize) -> Option<Self> {
        let post = &state.post;
        if post.history.iter().any(|h| h.len() > hist_cap) {
            return None;
        }
        let mut history = vec![0u64; post.len() * hist_cap];
        for (h, circle) in post.history.iter().zip(history.chunks_mut(hist_cap.max(1))) {
            circle[..h.len()].copy_from_slice(h);
        }
        Some(Self {
            syn_state: state
                .synapse
                .first()
                .map(|c| c.blocks.concat())
                .unwrap_or_default(),
            t_last: state.pre_steps[0].values.clone(),
            paired_until: state.pre_steps[1].values.clone(),
            kplus: state
                .pre
                .first()
                .map(|c| c.values.clone())
                .unwrap_or_default(),
            history,
            hist_head: post
                .history
                .iter()
                .map(|h| (h.len() % hist_cap.max(1)) as u32)
                .collect(),
            hist_len: post.history.iter().map(|h| h.len() as u32).collect(),
            trace: post.trace.clone(),
        })
    }

    /// The histories, oldest stamp first, as the host keeps them.
    #[cfg(test)]
    pub(crate) fn histories(&self) -> Vec<Vec<u64>> {
        let cap = self.history.len() / self.hist_len.len().max(1);
        (0..self.hist_len.len())
            .map(|t| {
                let (head, len) = (self.hist_head[t] as usize, self.hist_len[t] as usize);
                (0..len)
                    .map(|k| self.history[t * cap + (head + cap - len + k) % cap])
                    .collect()
            })
            .collect()
    }
}
