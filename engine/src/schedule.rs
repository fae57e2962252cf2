//! The schedule of one simulation step and its phases.

use std::time::{Duration, Instant};

use bevy_app::App;
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
use rayon::prelude::*;

/// The schedule that advances the simulation by one step.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimStep;

/// The phases of one step, run in this order. Systems of one phase work per population or
/// projection and parallelise inside (rayon).
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Inputs write into ring buffers and external currents. Before: nothing. After: the
    /// neuron update reads what they wrote.
    Inputs,
    /// Neuron updates and spike detection. Before: inputs. After: spikes are final for the
    /// step.
    Integrate,
    /// Spike exchange between ranks (empty in one process). Before: integrate.
    Exchange,
    /// Delivery of spikes into delay ring buffers. Before: exchange (all spikes known).
    Deliver,
    /// Plasticity (weight updates, rewiring). Before: delivery, so the step's weights were
    /// used unchanged.
    Plasticity,
    /// Recording of spikes and state. Before: plasticity.
    Record,
    /// Checkpoint slot. Last.
    Checkpoint,
}

impl SimSystems {
    /// All phases, in order.
    pub const ALL: [SimSystems; 7] = [
        Self::Inputs,
        Self::Integrate,
        Self::Exchange,
        Self::Deliver,
        Self::Plasticity,
        Self::Record,
        Self::Checkpoint,
    ];

    /// Lower-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inputs => "inputs",
            Self::Integrate => "integrate",
            Self::Exchange => "exchange",
            Self::Deliver => "deliver",
            Self::Plasticity => "plasticity",
            Self::Record => "record",
            Self::Checkpoint => "checkpoint",
        }
    }
}

/// Boundaries between phases, where the timers lap.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PhaseBoundary(usize);

/// Wall time spent in each phase, summed over steps.
#[derive(Resource, Debug, Default, Clone)]
pub struct PhaseTimers {
    /// Time per phase, in the order of [`SimSystems::ALL`].
    pub total: [Duration; 7],
    last: Option<Instant>,
}

impl PhaseTimers {
    /// Time spent in `phase`.
    pub fn get(&self, phase: SimSystems) -> Duration {
        self.total[SimSystems::ALL
            .iter()
            .position(|&p| p == phase)
            .expect("phase is in ALL")]
    }
}

fn lap<const K: usize>(mut t: ResMut<PhaseTimers>) {
    let now = Instant::now();
    if K > 0
        && let Some(last) = t.last
    {
        t.total[K - 1] += now - last;
    }
    t.last = Some(now);
}

/// Adds the step schedule with its chained phases and timers to `app`.
pub(crate) fn configure(app: &mut App) {
    let mut schedule = Schedule::new(SimStep);
    schedule.set_executor(SingleThreadedExecutor::new());
    app.add_schedule(schedule);
    app.init_resource::<PhaseTimers>();
    app.configure_sets(
        SimStep,
        (
            PhaseBoundary(0),
            SimSystems::Inputs,
            PhaseBoundary(1),
            SimSystems::Integrate,
            PhaseBoundary(2),
            SimSystems::Exchange,
            PhaseBoundary(3),
            SimSystems::Deliver,
            PhaseBoundary(4),
            SimSystems::Plasticity,
            PhaseBoundary(5),
            SimSystems::Record,
            PhaseBoundary(6),
            SimSystems::Checkpoint,
            PhaseBoundary(7),
        )
            .chain(),
    );
    app.add_systems(
        SimStep,
        (
            lap::<0>.in_set(PhaseBoundary(0)),
            lap::<1>.in_set(PhaseBoundary(1)),
            lap::<2>.in_set(PhaseBoundary(2)),
            lap::<3>.in_set(PhaseBoundary(3)),
            lap::<4>.in_set(PhaseBoundary(4)),
            lap::<5>.in_set(PhaseBoundary(5)),
            lap::<6>.in_set(PhaseBoundary(6)),
            lap::<7>.in_set(PhaseBoundary(7)),
        ),
    );
}

/// Runs `f` on every per-block work item of a step's phase (inputs, neuron update,
/// delivery, plasticity), in parallel, one block per rayon task.
///
/// Left to itself, rayon splits a loop only a few times (as I read its adaptive splitter:
/// about twice per thread, and again when a worker steals), so with two threads and about
/// 80 blocks a task holds a run of consecutive blocks, some 20 by that reading, that no
/// other worker can take once it has started. Blocks differ in cost (each population's
/// last block is short, in-degrees differ), so at the end of every phase one worker waited
/// for the other. With one block per task a worker that runs out takes any block not yet
/// started: in the microcircuit the workers' idle time in the three main phases fell from
/// 1.40–2.24 s to 0.64–0.89 s a 300 ms run (`docs/performance.md`, "one block per task";
/// the idle time was measured, the splits were not counted). Each item is still
/// handled by one task, so results do not depend on the number of threads.
pub fn for_each_block<T: Send>(blocks: Vec<T>, f: impl Fn(T) + Sync + Send) {
    blocks.into_par_iter().with_max_len(1).for_each(f);
}
