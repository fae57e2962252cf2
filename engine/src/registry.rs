//! The registry of models by scene name, filled by plugins.

use std::collections::BTreeMap;

use bevy_app::App;
use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use myelin_components::{Column, NeuronState};
use myelin_components::{
    Connectivity, DELIVERY_BLOCK, PlasticityState, PostSpikes, SynapseColumn, TraceKind,
};

use crate::construct::{ConnectionRule, RuleContext};
use crate::model::{
    InputContext, InputModel, NeuronModel, Neurons, Plasticity, PlasticityRule, VarSpec,
};
use crate::params::{ParamIssue, ParamSpec, Params};

/// What a neuron-model plugin registers.
#[derive(Clone)]
pub struct NeuronEntry {
    /// Scene name.
    pub name: &'static str,
    /// Parameter table.
    pub parameters: &'static [ParamSpec],
    /// Real state variables.
    pub real: &'static [VarSpec],
    /// Integer state variables.
    pub int: &'static [VarSpec],
    /// Prepares the model, inserts it and a default state on the population entity, and
    /// returns each real variable's storage offset.
    pub spawn: fn(&Params, f64, usize, &mut EntityWorldMut<'_>) -> Result<Vec<f64>, ParamIssue>,
    /// Checks cross-parameter constraints without spawning.
    pub check: fn(&Params, f64) -> Result<(), ParamIssue>,
}

impl NeuronEntry {
    /// The entry of model `M`.
    pub fn of<M: NeuronModel>() -> Self {
        Self {
            name: M::NAME,
            parameters: M::PARAMETERS,
            real: M::REAL_STATE,
            int: M::INT_STATE,
            spawn: |params, dt, n, e| {
                let m = M::new(params, dt)?;
                let mut state = NeuronState::zeros(n, M::REAL_STATE.len(), M::INT_STATE.len());
                let mut offsets = Vec::with_capacity(M::REAL_STATE.len());
                for (v, col) in state.real.iter_mut().enumerate() {
                    let off = m.offset(v);
                    col.fill((m.initial(v) - off) as f32);
                    offsets.push(off);
                }
                e.insert((Neurons(m), state));
                Ok(offsets)
            },
            check: |params, dt| M::new(params, dt).map(|_| ()),
        }
    }

    /// Index of a real or integer variable: `(is_real, index)`.
    pub fn variable(&self, name: &str) -> Option<(bool, usize)> {
        self.real
            .iter()
            .position(|v| v.name == name)
            .map(|i| (true, i))
            .or_else(|| {
                self.int
                    .iter()
                    .position(|v| v.name == name)
                    .map(|i| (false, i))
            })
    }
}

/// What an input plugin registers.
#[derive(Clone)]
pub struct InputEntry {
    /// Scene name.
    pub name: &'static str,
    /// Parameter table.
    pub parameters: &'static [ParamSpec],
    /// Checks beyond the table.
    pub check: fn(&Params, f64) -> Result<(), ParamIssue>,
    /// Longest delay [steps].
    pub max_delay: fn(&Params, f64) -> u16,
    /// Whether it drives the external current.
    pub drives_current: bool,
    /// Inserts its components.
    pub spawn: fn(&Params, &InputContext, &mut EntityWorldMut<'_>),
}

impl InputEntry {
    /// The entry of input model `I`.
    pub fn of<I: InputModel>() -> Self {
        Self {
            name: I::NAME,
            parameters: I::PARAMETERS,
            check: I::check,
            max_delay: I::max_delay,
            drives_current: I::DRIVES_CURRENT,
            spawn: I::spawn,
        }
    }
}

/// What a connectivity-rule plugin registers.
#[derive(Clone)]
pub struct RuleEntry {
    /// Scene name, e.g. `"fixed_indegree"`.
    pub name: &'static str,
    /// Parameter table.
    pub parameters: &'static [ParamSpec],
    /// Checks the parameters against the populations (e.g. an in-degree larger than the
    /// source population without multapses).
    pub check: fn(&Params, &RuleContext) -> Result<(), ParamIssue>,
    /// Creates the rule (may precompute per-target counts).
    pub create: fn(&Params, &RuleContext) -> Box<dyn ConnectionRule>,
}

/// What a plasticity-rule plugin registers.
#[derive(Clone)]
pub struct PlasticityEntry {
    /// Scene name, e.g. `"stdp"`.
    pub name: &'static str,
    /// Parameter table.
    pub parameters: &'static [ParamSpec],
    /// Per-synapse variables.
    pub synapse: &'static [VarSpec],
    /// Real per-source variables.
    pub pre: &'static [VarSpec],
    /// Integer per-source variables.
    pub pre_steps: &'static [VarSpec],
    /// Checks cross-parameter constraints (time step `dt` [ms]).
    pub check: fn(&Params, f64) -> Result<(), ParamIssue>,
    /// Checks a weight range `[low, high]` against the rule (parameters, `dt`, `low`,
    /// `high`).
    pub check_weights: fn(&Params, f64, f64, f64) -> Result<(), String>,
    /// Prepares the rule and inserts it and its initial state on a projection entity
    /// (parameters, `dt`, the projection's connectivity, the target population's size).
    pub spawn:
        fn(&Params, f64, &Connectivity, usize, &mut EntityWorldMut<'_>) -> Result<(), ParamIssue>,
}

impl PlasticityEntry {
    /// The entry of rule `R`.
    pub fn of<R: PlasticityRule>() -> Self {
        Self {
            name: R::NAME,
            parameters: R::PARAMETERS,
            synapse: R::SYNAPSE_STATE,
            pre: R::PRE_STATE,
            pre_steps: R::PRE_STEPS,
            check: |params, dt| R::new(params, dt).map(|_| ()),
            check_weights: |params, dt, low, high| match R::new(params, dt) {
                Ok(r) => r.check_weights(low, high),
                Err(_) => Ok(()),
            },
            spawn: |params, dt, conn, n_target, e| {
                let r = R::new(params, dt)?;
                let state = plasticity_state(&r, dt, conn, n_target);
                e.insert((Plasticity(Box::new(r)), state));
                Ok(())
            },
        }
    }
}

/// The state a plastic projection of rule `r` starts with: its per-synapse, per-source and
/// postsynaptic columns at their initial values for connectivity `conn` onto `n_target`
/// neurons, with time step `dt` [ms].
pub fn plasticity_state<R: PlasticityRule>(
    r: &R,
    dt: f64,
    conn: &Connectivity,
    n_target: usize,
) -> PlasticityState {
    let synapse = R::SYNAPSE_STATE
        .iter()
        .enumerate()
        .map(|(v, spec)| SynapseColumn {
            name: spec.name.into(),
            unit: spec.unit.into(),
            blocks: conn
                .blocks()
                .map(|b| vec![r.initial_synapse(v); b.len()])
                .collect(),
        })
        .collect();
    let pre = R::PRE_STATE
        .iter()
        .enumerate()
        .map(|(v, spec)| Column {
            name: spec.name.into(),
            unit: spec.unit.into(),
            values: vec![r.initial_pre(v); conn.n_source],
        })
        .collect();
    let pre_steps = R::PRE_STEPS
        .iter()
        .map(|spec| Column {
            name: spec.name.into(),
            unit: spec.unit.into(),
            values: vec![0; conn.n_source],
        })
        .collect();
    let (kind, tau) = r.post_trace();
    let decay = if kind == TraceKind::None {
        0.0
    } else {
        (-dt / tau).exp()
    };
    let post = PostSpikes::new(
        n_target,
        DELIVERY_BLOCK,
        usize::from(conn.max_delay),
        decay,
        kind,
    );
    PlasticityState {
        rule: R::NAME.into(),
        synapse,
        pre,
        pre_steps,
        post,
    }
}

/// Every model, input and rule known to a simulation, by scene name.
#[derive(Resource, Clone, Default)]
pub struct ModelRegistry {
    /// Neuron models.
    pub neurons: BTreeMap<&'static str, NeuronEntry>,
    /// Inputs.
    pub inputs: BTreeMap<&'static str, InputEntry>,
    /// Connectivity rules.
    pub rules: BTreeMap<&'static str, RuleEntry>,
    /// Plasticity (learning) rules.
    pub plasticity: BTreeMap<&'static str, PlasticityEntry>,
}

impl ModelRegistry {
    /// Names of the neuron models, for messages.
    pub fn neuron_names(&self) -> String {
        self.neurons.keys().copied().collect::<Vec<_>>().join(", ")
    }
    /// Names of the inputs, for messages.
    pub fn input_names(&self) -> String {
        self.inputs.keys().copied().collect::<Vec<_>>().join(", ")
    }
    /// Names of the rules, for messages.
    pub fn rule_names(&self) -> String {
        self.rules.keys().copied().collect::<Vec<_>>().join(", ")
    }
    /// Names of the plasticity rules, for messages.
    pub fn plasticity_names(&self) -> String {
        self.plasticity
            .keys()
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Registration methods on the bevy [`App`], for plugins.
pub trait RegistryAppExt {
    /// Registers a neuron model's scene name and tables (its systems are added by the
    /// plugin).
    fn register_neuron_model<M: NeuronModel>(&mut self) -> &mut Self;
    /// Registers an input model.
    fn register_input<I: InputModel>(&mut self) -> &mut Self;
    /// Registers a connectivity rule.
    fn register_rule(&mut self, entry: RuleEntry) -> &mut Self;
    /// Registers a plasticity rule's scene name and tables (its systems are added by the
    /// plugin).
    fn register_plasticity<R: PlasticityRule>(&mut self) -> &mut Self;
}

impl RegistryAppExt for App {
    fn register_neuron_model<M: NeuronModel>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<ModelRegistry>()
            .neurons
            .insert(M::NAME, NeuronEntry::of::<M>());
        self
    }
    fn register_input<I: InputModel>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<ModelRegistry>()
            .inputs
            .insert(I::NAME, InputEntry::of::<I>());
        self
    }
    fn register_rule(&mut self, entry: RuleEntry) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<ModelRegistry>()
            .rules
            .insert(entry.name, entry);
        self
    }
    fn register_plasticity<R: PlasticityRule>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<ModelRegistry>()
            .plasticity
            .insert(R::NAME, PlasticityEntry::of::<R>());
        self
    }
}
