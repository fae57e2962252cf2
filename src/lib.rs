#![doc = include_str!("../README.md")]

pub mod runner;

pub use myelin_components as components;
pub use myelin_distributed as distributed;
pub use myelin_engine as engine;
pub use myelin_io as io;
pub use myelin_systems as systems;

pub use myelin_engine::Simulation;
pub use myelin_systems::MyelinPlugins;

/// The items most programs that drive or extend Myelin need.
pub mod prelude {
    pub use crate::runner::{RunOptions, RunSummary, run_scene};
    pub use myelin_components::prelude::*;
    pub use myelin_engine::prelude::*;
    pub use myelin_systems::MyelinPlugins;
    pub use myelin_systems::neurons::NeuronModelPlugin;
}

pub mod analysis;
pub mod bench;
