use bevy_ecs::prelude::*;

/// Simulation time: a fixed step `dt` and the index of the step being computed.
///
/// During step `step` the state advances from `step * dt` to `(step + 1) * dt`; a spike
/// emitted in it has time `(step + 1) * dt`, as in NEST.
#[derive(Resource, Clone, Copy, Debug)]
pub struct SimClock {
    /// Time step [ms].
    pub dt: f64,
    /// Index of the current step (the number of steps completed before it).
    pub step: u64,
}

impl SimClock {
    /// Simulated time completed [ms].
    pub fn time_ms(&self) -> f64 {
        self.step as f64 * self.dt
    }

    /// Number of whole steps in `ms` milliseconds (rounded to nearest).
    pub fn steps(&self, ms: f64) -> u64 {
        (ms / self.dt).round().max(0.0) as u64
    }
}

/// The seed of the run: every random stream is keyed by it.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSeed(pub u64);
