use bevy_ecs::prelude::*;

/// Records the spikes of a population (all neurons or a subset) into a buffer that the
/// output writer drains.
#[derive(Component, Clone, Debug)]
pub struct SpikeRecorder {
    /// Label (the HDF5 group name).
    pub label: String,
    /// Recorded population entity.
    pub population: Entity,
    /// Recorded neurons as a mask over the population; `None` means all.
    pub mask: Option<Vec<bool>>,
    /// Step of each buffered spike.
    pub steps: Vec<u64>,
    /// Population-local index of each buffered spike's neuron.
    pub senders: Vec<u32>,
    /// Spikes recorded since the start (buffered or already written).
    pub recorded: u64,
}

/// Samples one state variable of chosen neurons of a population every `interval` steps.
#[derive(Component, Clone, Debug)]
pub struct StateRecorder {
    /// Label (the HDF5 group name).
    pub label: String,
    /// Recorded population entity.
    pub population: Entity,
    /// Variable name.
    pub variable: String,
    /// Unit of the variable.
    pub unit: String,
    /// Whether the variable is a real column (else an integer column).
    pub real: bool,
    /// Index of the column in the model's variable table.
    pub column: usize,
    /// Offset added to each value when recorded (e.g. `E_L` for potentials stored
    /// relative to rest) [the variable's unit].
    pub offset: f64,
    /// Recorded neurons (population-local).
    pub neurons: Vec<u32>,
    /// Sampling interval [steps].
    pub interval: u64,
    /// Step (the end of which is the sample time) of each buffered sample.
    pub steps: Vec<u64>,
    /// Buffered values, one row of `neurons.len()` per sample.
    pub values: Vec<f32>,
}
