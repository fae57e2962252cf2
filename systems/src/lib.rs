#![doc = include_str!("../README.md")]

pub mod connectivity;
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod cuda_step;
pub mod delivery;
pub mod inputs;
pub mod neurons;
pub mod plasticity;
pub mod recording;

use bevy_app::{PluginGroup, PluginGroupBuilder};

/// Every built-in model, input, rule and system.
pub struct MyelinPlugins;

impl PluginGroup for MyelinPlugins {
    fn build(self) -> PluginGroupBuilder {
        PluginGroupBuilder::start::<Self>()
            .add(neurons::NeuronModelPlugin::<neurons::IafPscExp>::default())
            .add(neurons::NeuronModelPlugin::<neurons::IafPscAlpha>::default())
            .add(neurons::NeuronModelPlugin::<neurons::IafPscDelta>::default())
            .add(inputs::PoissonGeneratorPlugin)
            .add(inputs::DcGeneratorPlugin)
            .add(inputs::SpikeGeneratorPlugin)
            .add(connectivity::ConnectivityPlugin)
            .add(delivery::DeliveryPlugin)
            .add(plasticity::PlasticityCorePlugin)
            .add(plasticity::PlasticityRulePlugin::<plasticity::stdp::Stdp>::default())
            .add(plasticity::PlasticityRulePlugin::<
                plasticity::stdp::StdpNnSymm,
            >::default())
            .add(plasticity::PlasticityRulePlugin::<
                plasticity::stdp::StdpNnPreCentered,
            >::default())
            .add(plasticity::PlasticityRulePlugin::<
                plasticity::stdp::StdpNnRestr,
            >::default())
            .add(plasticity::PlasticityRulePlugin::<
                plasticity::power_law::StdpPl,
            >::default())
            .add(recording::RecordingPlugin)
    }
}
