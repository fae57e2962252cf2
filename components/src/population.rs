use bevy_ecs::prelude::*;

/// A stable identifier of a scene element (population, projection, input), its index in
/// the scene. Random streams are keyed by it, never by the ECS [`Entity`], so that the
/// network does not depend on spawn order or on which rank builds it.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StableId(pub u32);

/// A population of neurons of one model: one entity per population.
#[derive(Component, Clone, Debug)]
pub struct Population {
    /// Name in the scene.
    pub name: String,
    /// Number of neurons.
    pub size: usize,
    /// Scene name of the neuron model.
    pub model: String,
    /// Global id of the population's first neuron (populations are numbered in scene order).
    pub first_id: u64,
}

/// The spikes a population emitted in the current step, and its running count.
#[derive(Component, Clone, Debug, Default)]
pub struct Spikes {
    /// Population-local indices of the neurons that spiked this step, ascending.
    pub current: Vec<u32>,
    /// Per delivery block spike lists, filled by the neuron update and concatenated into
    /// `current` (kept to avoid allocating every step).
    pub per_block: Vec<Vec<u32>>,
    /// Spikes emitted since the start of the simulation.
    pub total: u64,
}

impl Spikes {
    /// Empty spike buffers for a population of `blocks` delivery blocks.
    pub fn new(blocks: usize) -> Self {
        Self {
            current: Vec::new(),
            per_block: vec![Vec::new(); blocks],
            total: 0,
        }
    }

    /// Concatenates the per-block lists (in block order, hence ascending) into `current`.
    pub fn gather(&mut self) {
        self.current.clear();
        for b in &self.per_block {
            self.current.extend_from_slice(b);
        }
        self.total += self.current.len() as u64;
    }
}

/// External current injected into each neuron during the current step [pA], written by
/// the input systems (DC generators) and read by the neuron update.
#[derive(Component, Clone, Debug, Default)]
pub struct ExternalCurrent {
    /// Current per neuron during this step [pA].
    pub values: Vec<f32>,
    /// Whether any input drives this population (otherwise `values` stays zero).
    pub driven: bool,
}

impl ExternalCurrent {
    /// A zero current for `n` neurons.
    pub fn new(n: usize) -> Self {
        Self {
            values: vec![0.0; n],
            driven: false,
        }
    }
}
