#![doc = include_str!("../README.md")]

mod backend;
mod build;
mod clock;
mod construct;
mod error;
mod model;
mod network;
mod params;
mod registry;
pub mod rng;
mod schedule;
mod sim;
mod validate;

pub use backend::{
    ActiveBackend, Backend, BackendError, DEVICE_PRELUDE, DeviceInfo, DevicePhaseTimes,
    KernelSource, cuda, on_cpu,
};
pub use build::{
    BuildReport, DeliveryPlan, LocalNeurons, PopulationIndex, SuppliedConnectivity, build_network,
    check_connectivity,
};
pub use clock::{RunSeed, SimClock};
pub use construct::{
    ArrayPool, ConnectionRule, RuleContext, build_connectivity, build_connectivity_local,
    delay_steps,
};
pub use error::{BuildError, PathSeg, SpecError, SpecPath};
pub use model::{
    InputContext, InputModel, NeuronModel, Neurons, PlasticStep, PlasticSynapses, Plasticity,
    PlasticityKernel, PlasticityRule, VarSpec,
};
pub use network::{
    Dist, InputSpec, NetworkSpec, PlasticitySpec, PopulationSpec, ProjectionSpec, RecorderSpec,
    Selection, WarmStart,
};
pub use params::{ParamIssue, ParamKind, ParamSpec, ParamValue, Params, Range};
pub use registry::{
    InputEntry, ModelRegistry, NeuronEntry, PlasticityEntry, RegistryAppExt, RuleEntry,
    plasticity_state,
};
pub use schedule::{PhaseTimers, SimStep, SimSystems, for_each_block};
pub use sim::{RunHorizon, Simulation};
pub use validate::validate;

/// Commonly used items of the engine.
pub mod prelude {
    pub use crate::{
        ConnectionRule, InputModel, ModelRegistry, NetworkSpec, NeuronModel, Neurons, ParamSpec,
        Params, Range, RegistryAppExt, SimClock, SimStep, SimSystems, Simulation, VarSpec,
    };
}
