use bevy_ecs::prelude::*;
use smallvec::SmallVec;

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

/// The columns of one block's view ([`NeuronBlockMut`]): a list of slices, held inline for
/// up to eight columns (more spill to the heap), so that the neuron update's views of every
/// block allocate nothing in a step. Build one with `collect()`; index or destructure it as
/// a slice (`let [v, u] = &mut block.real[..]`).
pub type Columns<'a, T> = SmallVec<[&'a mut [T]; 8]>;

/// Mutable view of one delivery block of a population's neuron state.
pub struct NeuronBlockMut<'a> {
    /// Population-local index of the block's first neuron.
    pub first: usize,
    /// Real-valued columns restricted to the block.
    pub real: Columns<'a, f32>,
    /// Integer columns restricted to the block.
    pub int: Columns<'a, u32>,
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

    /// Splits every column into blocks of `block` neurons: one view per block, in block
    /// order.
    pub fn blocks_mut(
        &mut self,
        block: usize,
    ) -> impl ExactSizeIterator<Item = NeuronBlockMut<'_>> {
        let blocks = self.len().div_ceil(block);
        let mut real: SmallVec<[_; 8]> =
            self.real.iter_mut().map(|c| c.chunks_mut(block)).collect();
        let mut int: SmallVec<[_; 8]> = self.int.iter_mut().map(|c| c.chunks_mut(block)).collect();
        (0..blocks).map(move |b| NeuronBlockMut {
            first: b * block,
            real: real
                .iter_mut()
                .map(|c| c.next().expect("a column per block"))
                .collect(),
            int: int
                .iter_mut()
                .map(|c| c.next().expect("a column per block"))
                .collect(),
        })
    }
}
