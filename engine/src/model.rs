//! The plugin seams for neuron models and inputs.

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use myelin_components::NeuronBlockMut;

use crate::params::{ParamIssue, ParamSpec, Params};

/// A state variable of a neuron model.
#[derive(Clone, Copy, Debug)]
pub struct VarSpec {
    /// Name in scenes and recordings, e.g. `"V_m"`.
    pub name: &'static str,
    /// Unit, e.g. `"mV"`.
    pub unit: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A neuron model: its parameter table, its state variables and its update kernel.
///
/// The engine stores the state as struct-of-arrays ([`myelin_components::NeuronState`]),
/// one column per variable in the order of [`Self::REAL_STATE`] and [`Self::INT_STATE`],
/// and calls [`Self::update`] once per step for every delivery block of every population of
/// this model, possibly on several threads at once. Register a model with
/// `NeuronModelPlugin::<M>` (crate `myelin-systems`).
pub trait NeuronModel: Send + Sync + Sized + 'static {
    /// Scene name, e.g. `"iaf_psc_exp"`.
    const NAME: &'static str;
    /// Parameter table.
    const PARAMETERS: &'static [ParamSpec];
    /// Real-valued state variables (recordable).
    const REAL_STATE: &'static [VarSpec];
    /// Integer state variables (e.g. refractory counters [steps]).
    const INT_STATE: &'static [VarSpec] = &[];

    /// Prepares the model (propagators, counts in steps) from validated parameters and the
    /// time step [ms]. Errors name the offending parameter (cross-parameter constraints).
    fn new(params: &Params, dt: f64) -> Result<Self, ParamIssue>;

    /// The value (in the variable's unit) every neuron starts with unless the scene
    /// draws one, for real variable `var`.
    fn initial(&self, var: usize) -> f64;

    /// What a stored value of real variable `var` must be offset by to be in the user's
    /// unit (e.g. `E_L` when the potential is stored relative to rest). Default 0.
    fn offset(&self, _var: usize) -> f64 {
        0.0
    }

    /// Advances the neurons of one block by one step.
    ///
    /// `input_ex` and `input_in` hold the summed weights arriving this step per neuron on
    /// the excitatory and inhibitory channels; `current` the external current [pA]. Push the
    /// population-local index (`block.first + j`) of each neuron that spikes, ascending.
    fn update(
        &self,
        block: &mut NeuronBlockMut<'_>,
        input_ex: &[f32],
        input_in: &[f32],
        current: &[f32],
        spikes: &mut Vec<u32>,
    );
}

/// The component holding a population's prepared neuron model.
#[derive(Component)]
pub struct Neurons<M: NeuronModel>(pub M);

/// What an input model is given to spawn itself.
#[derive(Clone, Debug)]
pub struct InputContext {
    /// Time step [ms].
    pub dt: f64,
    /// Run seed.
    pub seed: u64,
    /// Stable id of the input (its index among the scene's inputs).
    pub id: u32,
    /// Target population entity.
    pub target: Entity,
    /// Target population size.
    pub target_size: usize,
    /// Target neurons (ascending); `None` for all.
    pub neurons: Option<Vec<u32>>,
}

/// An input (stimulation device) model.
pub trait InputModel: Send + Sync + 'static {
    /// Scene name, e.g. `"poisson_generator"`.
    const NAME: &'static str;
    /// Parameter table.
    const PARAMETERS: &'static [ParamSpec];
    /// Checks beyond the table (e.g. on-grid spike times); errors name the parameter.
    fn check(_params: &Params, _dt: f64) -> Result<(), ParamIssue> {
        Ok(())
    }
    /// Longest delay [steps] of the events it sends into ring buffers (0 for none).
    fn max_delay(params: &Params, dt: f64) -> u16;
    /// Whether it drives its target's external current (DC-like inputs).
    const DRIVES_CURRENT: bool = false;
    /// Inserts its components on the input's entity.
    fn spawn(params: &Params, ctx: &InputContext, entity: &mut EntityWorldMut<'_>);
}
