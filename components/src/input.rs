use bevy_ecs::prelude::*;

/// A Poisson generator feeding every selected neuron of its target population an
/// independent Poisson spike train (NEST's `poisson_generator` connected one-to-all).
///
/// At each step the number of events per neuron is Poisson with mean `rate * dt`, drawn
/// from the counter-based stream keyed by (seed, input, neuron, step); they arrive
/// `delay` steps later with weight `weight` each.
#[derive(Component, Clone, Debug)]
pub struct PoissonInput {
    /// Target population entity.
    pub target: Entity,
    /// Target neurons (population-local, ascending); `None` means all.
    pub neurons: Option<Vec<u32>>,
    /// Mean events per neuron per step (`rate [Hz] * dt [ms] / 1000`).
    pub lambda: f64,
    /// Thresholds of the per-step count for 32-bit uniforms, tabulated once (see
    /// `myelin_engine::rng::poisson_thresholds`; empty when `lambda` is large enough for
    /// PTRS).
    pub thresholds: Vec<u32>,
    /// Weight per event [pA or mV].
    pub weight: f32,
    /// Delay [steps].
    pub delay: u16,
    /// First step that emits (inclusive).
    pub start: u64,
    /// Step at which emission stops (exclusive).
    pub stop: u64,
}

/// A DC current generator: `amplitude` is added to the external current of every selected
/// neuron during the steps `start..stop`.
#[derive(Component, Clone, Debug)]
pub struct DcInput {
    /// Target population entity.
    pub target: Entity,
    /// Target neurons (population-local, ascending); `None` means all.
    pub neurons: Option<Vec<u32>>,
    /// Current [pA].
    pub amplitude: f32,
    /// First step with current (inclusive).
    pub start: u64,
    /// First step without current (exclusive end).
    pub stop: u64,
}

/// A spike generator: emits spikes at given times into every selected neuron of its
/// target population (NEST's `spike_generator` connected one-to-all).
///
/// A spike at time `t` [ms] counts as emitted in step `t / dt - 1` (as a neuron's spike
/// at time `t` is) and arrives `delay` steps later.
#[derive(Component, Clone, Debug)]
pub struct SpikeGeneratorInput {
    /// Target population entity.
    pub target: Entity,
    /// Target neurons (population-local, ascending); `None` means all.
    pub neurons: Option<Vec<u32>>,
    /// Emission steps, ascending.
    pub steps: Vec<u64>,
    /// Weight per spike [pA or mV].
    pub weight: f32,
    /// Delay [steps].
    pub delay: u16,
    /// Index of the next spike to emit in `steps`.
    pub cursor: usize,
}
