//! The simulation app.

use bevy_app::{App, Plugins};
use bevy_ecs::prelude::*;

use crate::build::{BuildReport, build_network};
use crate::clock::SimClock;
use crate::error::BuildError;
use crate::network::NetworkSpec;
use crate::registry::ModelRegistry;
use crate::schedule::{SimStep, configure};

/// The step up to which the simulation will certainly run: the end of the current
/// [`Simulation::run_steps`] call, or the later end promised by [`Simulation::plan_until`].
/// Systems that work ahead of the clock, as the GPU's batches of steps do, never go past
/// it, so the state there is that of the step reached.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunHorizon(pub u64);

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
        self.run_steps(1);
    }

    /// Advances by `n` steps. [`RunHorizon`] holds the step this call stops at, or the
    /// later one promised with [`Self::plan_until`].
    pub fn run_steps(&mut self, n: u64) {
        let w = self.app.world_mut();
        let end = w.resource::<SimClock>().step + n;
        let planned = w.get_resource::<RunHorizon>().map_or(0, |h| h.0);
        w.insert_resource(RunHorizon(end.max(planned)));
        for _ in 0..n {
            w.run_schedule(SimStep);
            w.resource_mut::<SimClock>().step += 1;
        }
    }

    /// Promises that the simulation will be run at least to `step` (a session's end), so
    /// that work-ahead systems (the GPU's batches) may go past the end of each
    /// [`Self::run_steps`] call up to it. A simulation stopped before `step` may then have
    /// its device state ahead of its clock.
    pub fn plan_until(&mut self, step: u64) {
        self.app.world_mut().insert_resource(RunHorizon(step));
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
