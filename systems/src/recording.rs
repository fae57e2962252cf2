//! Recording: spikes and sampled state go into the recorders' buffers, which the output
//! writer (crate `myelin-io`) drains into HDF5.

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use myelin_components::{NeuronState, SpikeRecorder, Spikes, StateRecorder};
use myelin_engine::{SimClock, SimStep, SimSystems};

/// The device kernel that turns a spike bitmap into the sorted list of spiking neurons
/// (`compact_spikes`).
pub const CUDA_KERNEL: myelin_engine::KernelSource = myelin_engine::KernelSource {
    file: "systems/src/recording.cu",
    entries: &["compact_spikes", "advance_clock"],
    source: include_str!("recording.cu"),
    fmad: false,
};

/// Adds the recording systems to [`SimSystems::Record`].
pub struct RecordingPlugin;

impl Plugin for RecordingPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            SimStep,
            (record_spikes, record_state).in_set(SimSystems::Record),
        );
    }
}

/// Appends this step's spikes of each recorded population (or its selected neurons).
pub fn record_spikes(
    clock: Res<SimClock>,
    mut recorders: Query<&mut SpikeRecorder>,
    spikes: Query<&Spikes>,
) {
    for mut r in &mut recorders {
        let Ok(s) = spikes.get(r.population) else {
            continue;
        };
        if s.current.is_empty() {
            continue;
        }
        let r = &mut *r;
        let before = r.senders.len();
        match &r.mask {
            None => r.senders.extend_from_slice(&s.current),
            Some(m) => r
                .senders
                .extend(s.current.iter().copied().filter(|&i| m[i as usize])),
        }
        let added = r.senders.len() - before;
        r.steps.extend(std::iter::repeat_n(clock.step, added));
        r.recorded += added as u64;
    }
}

/// Samples the recorded variable at the end of every `interval`-th step.
pub fn record_state(
    clock: Res<SimClock>,
    mut recorders: Query<&mut StateRecorder>,
    states: Query<&NeuronState>,
) {
    for mut r in &mut recorders {
        if (clock.step + 1) % r.interval != 0 {
            continue;
        }
        let Ok(s) = states.get(r.population) else {
            continue;
        };
        let r = &mut *r;
        r.steps.push(clock.step);
        if r.real {
            let col = &s.real[r.column];
            r.values.extend(r.neurons.iter().map(|&i| col[i as usize]));
        } else {
            let col = &s.int[r.column];
            r.values
                .extend(r.neurons.iter().map(|&i| col[i as usize] as f32));
        }
    }
}
