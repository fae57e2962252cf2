//! The simulation app.

use bevy_app::{App, Plugins};
use bevy_ecs::prelude::*;

use crate::build::{BuildReport, build_network};
use crate::clock::SimClock;
use crate::error::BuildError;
use crate::network::NetworkSpec;
use crate::registry::ModelRegistry;
use crate::schedule::{SimStep, configure};

/// A simulation: a bevy [`App`] holding the network as entities, advanced one step at a time
/// by the [`SimStep`] schedule.
pub struct Simulation {
    app: App,
    built: bool,
}

impl Simulation {
    /// An empty simulation with time step `dt` [ms]. Add plugins, then [`Self::build`].
    pub fn new(dt: f64) -> Self {
        let mut app = App::new();
        configure(&mut app);
        app.init_resource::<ModelRegistry>();
        app.insert_resource(SimClock { dt, step: 0 });
        Self { app, built: false }
    }

    /// Adds plugins (neuron models, inputs, rules, systems).
    pub fn add_plugins<M>(&mut self, plugins: impl Plugins<M>) -> &mut Self {
        self.app.add_plugins(plugins);
        self
    }

    /// The registry of models the plugins registered.
    pub fn registry(&self) -> &ModelRegistry {
        self.app.world().resource::<ModelRegistry>()
    }

    /// Builds the network of `spec` (validating it first). Its `dt` must equal the
    /// simulation's.
    pub fn build(&mut self, spec: &NetworkSpec) -> Result<BuildReport, BuildError> {
        if self.built {
            return Err(BuildError::AlreadyBuilt);
        }
        self.app.world_mut().resource_mut::<SimClock>().dt = spec.dt;
        let r = build_network(self.app.world_mut(), spec)?;
        self.built = true;
        Ok(r)
    }

    /// Advances by one step.
    pub fn step(&mut self) {
        let w = self.app.world_mut();
        w.run_schedule(SimStep);
        w.resource_mut::<SimClock>().step += 1;
    }

    /// Advances by `n` steps.
    pub fn run_steps(&mut self, n: u64) {
        for _ in 0..n {
            self.step();
        }
    }

    /// The clock.
    pub fn clock(&self) -> SimClock {
        *self.app.world().resource::<SimClock>()
    }

    /// The world, to read state.
    pub fn world(&self) -> &World {
        self.app.world()
    }

    /// The world, to change state.
    pub fn world_mut(&mut self) -> &mut World {
        self.app.world_mut()
    }

    /// The app, for plugins that need it.
    pub fn app_mut(&mut self) -> &mut App {
        &mut self.app
    }
}
