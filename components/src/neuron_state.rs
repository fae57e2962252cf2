use bevy_ecs::prelude::*;

/// Neuron state of one population as struct-of-arrays: one column per state variable.
///
/// Real-valued variables (membrane potential, synaptic currents) are `f32` columns;
/// integer variables (refractory counters, in steps) are `u32` columns. Names and units
/// come from the neuron model's variable table, in the same order.
#[derive(Component, Clone, Debug, Default)]
pub struct NeuronState {
    /// Real-valued columns, one per variable of the model's `real` table.
    pub real: Vec<Vec<f32>>,
    /// Integer columns, one per variable of the model's `int` table.
    pub int: Vec<Vec<u32>>,
}

/// Mutable view of one delivery block of a population's neuron state.
pub struct NeuronBlockMut<'a> {
    /// Population-local index of the block's first neuron.
    pub first: usize,
    /// Real-valued columns restricted to the block.
    pub real: Vec<&'a mut [f32]>,
    /// Integer columns restricted to the block.
    pub int: Vec<&'a mut [u32]>,
}

impl NeuronBlockMut<'_> {
    /// Number of neurons in the block.
    pub fn len(&self) -> usize {
        self.real
            .first()
            .map(|c| c.len())
            .or_else(|| self.int.first().map(|c| c.len()))
            .unwrap_or(0)
    }

    /// Whether the block has no neurons.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NeuronState {
    /// State of `n` neurons with `real` and `int` columns, all zero.
    pub fn zeros(n: usize, real: usize, int: usize) -> Self {
        Self {
            real: vec![vec![0.0; n]; real],
            int: vec![vec![0; n]; int],
        }
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.real
            .first()
            .map(Vec::len)
            .or_else(|| self.int.first().map(Vec::len))
            .unwrap_or(0)
    }

    /// Whether the population is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits every column into blocks of `block` neurons and returns one view per block.
    pub fn blocks_mut(&mut self, block: usize) -> Vec<NeuronBlockMut<'_>> {
        let n = self.len();
        let nb = n.div_ceil(block);
        let mut out: Vec<NeuronBlockMut<'_>> = (0..nb)
            .map(|b| NeuronBlockMut {
                first: b * block,
                real: Vec::with_capacity(self.real.len()),
                int: Vec::with_capacity(self.int.len()),
            })
            .collect();
        for col in &mut self.real {
            for (b, chunk) in col.chunks_mut(block).enumerate() {
                out[b].real.push(chunk);
            }
        }
        for col in &mut self.int {
            for (b, chunk) in col.chunks_mut(block).enumerate() {
                out[b].int.push(chunk);
            }
        }
        out
    }
}
