//! The plugin seams for neuron models, inputs and plasticity rules.

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use myelin_components::{
    NeuronBlockMut, PlasticityState, PostBlock, PreView, RingBlockMut, SynapseBlock, TraceKind,
};

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

    /// The model's CUDA kernel ([`crate::KernelSource`]), an NVRTC source beside the CPU
    /// kernel. It defines `<model>_neuron`, one neuron's step with the signature of
    /// `iaf_psc_exp_neuron` that follows [`Self::update`] operation for operation, and
    /// `MYELIN_NEURON_KERNEL(<model>)` (the device prelude), which makes the entry point
    /// `<model>_update`. `None`: the model runs on the CPU only.
    const CUDA_KERNEL: Option<crate::KernelSource> = None;

    /// The constants the CUDA kernel reads (its argument `c`), in the order its source
    /// documents. Integers (counts of steps) are passed exactly as floats below 2^24.
    fn device_constants(&self) -> Vec<f32> {
        Vec::new()
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

/// What a plasticity kernel is given to deliver one step's spikes through one target block.
#[derive(Clone, Copy, Debug)]
pub struct PlasticStep<'a> {
    /// The current step `s`; its spikes have stamp `s + 1` (time `(s + 1) dt`).
    pub step: u64,
    /// Source neurons that spiked this step (population-local), ascending.
    pub spikes: &'a [u32],
}

/// Mutable view of a plastic projection's synapses onto one target block: the synapse
/// block (weights mutable) and the rule's per-synapse columns of that block.
pub struct PlasticSynapses<'a> {
    /// The block (row pointers, targets, weights, delays).
    pub block: &'a mut SynapseBlock,
    /// The rule's per-synapse variables of this block, in its table order.
    pub state: Vec<&'a mut [f32]>,
}

/// A synaptic plasticity rule: how a plastic projection updates its weights and delivers
/// its spikes. The engine calls it through [`Plasticity`]; implement [`PlasticityRule`] and
/// register the rule with `PlasticityRulePlugin::<R>` (crate `myelin-systems`).
///
/// Every step, for every target block of every plastic projection (in parallel over
/// blocks, in scene order within a block), [`Self::deliver`] updates the synapses of this
/// step's spiking sources and adds their (new) weights into the target's ring buffers;
/// then [`Self::after_delivery`] updates the per-source state once. Every
/// [`PlasticityKernel::catch_up_every`]-th step, sources whose pending pairings reach back
/// further than that get [`Self::catch_up`], so that the post-spike history never needs to
/// hold more than two such periods plus the longest delay.
pub trait PlasticityKernel: std::any::Any + Send + Sync + 'static {
    /// Updates the weights of the synapses of `at.spikes` onto one target block and
    /// delivers them into the block's ring buffers (channel by the sign of the new weight,
    /// `delay` steps ahead). `post` is the target block's spike history and trace.
    fn deliver(
        &self,
        at: PlasticStep<'_>,
        syn: &mut PlasticSynapses<'_>,
        pre: &PreView<'_>,
        post: &PostBlock<'_>,
        ring: &mut RingBlockMut<'_>,
    );

    /// Updates the per-source state after this step's spikes were delivered through every
    /// block (e.g. presynaptic traces and last spike times).
    fn after_delivery(&self, at: PlasticStep<'_>, state: &mut PlasticityState);

    /// The sources whose pending pairings reach back before stamp `before` (they have
    /// neither spiked nor been caught up since); ascending.
    fn stale_sources(&self, _state: &PlasticityState, _before: u64) -> Vec<u32> {
        Vec::new()
    }

    /// Applies to the synapses of `at.spikes` (stale sources) onto one block the pairings
    /// with postsynaptic spikes that reached the synapse up to stamp `at.step + 1`, without
    /// a presynaptic spike.
    fn catch_up(
        &self,
        _at: PlasticStep<'_>,
        _syn: &mut PlasticSynapses<'_>,
        _pre: &PreView<'_>,
        _post: &PostBlock<'_>,
    ) {
    }

    /// Marks `at.spikes` (stale sources) as caught up to stamp `at.step + 1`.
    fn after_catch_up(&self, _at: PlasticStep<'_>, _state: &mut PlasticityState) {}
}

/// A plasticity rule as a plugin registers it: scene name, parameter table, state tables and
/// a kernel prepared from validated parameters.
pub trait PlasticityRule: PlasticityKernel + Sized {
    /// Scene name, e.g. `"stdp"`.
    const NAME: &'static str;
    /// Parameter table.
    const PARAMETERS: &'static [ParamSpec];
    /// Per-synapse variables (`f32`, stored beside the weights).
    const SYNAPSE_STATE: &'static [VarSpec] = &[];
    /// Real per-source-neuron variables (`f64`).
    const PRE_STATE: &'static [VarSpec] = &[];
    /// Integer per-source-neuron variables (`u64`, e.g. spike stamps).
    const PRE_STEPS: &'static [VarSpec] = &[];

    /// Prepares the rule from validated parameters and the time step [ms]; errors name the
    /// offending parameter (cross-parameter constraints).
    fn new(params: &Params, dt: f64) -> Result<Self, ParamIssue>;

    /// Checks that the projection's weights, which lie in `[low, high]`, suit the rule
    /// (bounds, sign); the message names the values.
    fn check_weights(&self, _low: f64, _high: f64) -> Result<(), String> {
        Ok(())
    }

    /// The postsynaptic trace the rule reads and its time constant [ms].
    fn post_trace(&self) -> (TraceKind, f64) {
        (TraceKind::None, 1.0)
    }

    /// Initial value of per-synapse variable `var`.
    fn initial_synapse(&self, _var: usize) -> f32 {
        0.0
    }

    /// Initial value of real per-source variable `var`.
    fn initial_pre(&self, _var: usize) -> f64 {
        0.0
    }
}

/// The component holding a plastic projection's prepared rule.
#[derive(Component)]
pub struct Plasticity(pub Box<dyn PlasticityKernel>);
