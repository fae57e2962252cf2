#![doc = include_str!("../README.md")]

pub mod connectivity;
pub mod delivery;
pub mod inputs;
pub mod neurons;
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
            .add(recording::RecordingPlugin)
    }
}
