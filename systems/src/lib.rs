#![doc = include_str!("../README.md")]

pub mod connectivity;
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod cuda_step;
#[cfg(any(feature = "cuda", test))]
mod cuda_tables;
pub mod delivery;
pub mod inputs;
pub mod neurons;
pub mod plasticity;
pub mod recording;

use std::ops::Range;

use bevy_app::{PluginGroup, PluginGroupBuilder};
use bevy_ecs::prelude::*;
use myelin_components::{RingBlockMut, SynapticInput};

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

/// The per-block work of a step's phase that writes ring buffers (Poisson input, static
/// delivery): every block of every population that has a range in `targets` (sorted by
/// population), paired with that range of `items`. Allocates the work list only.
pub(crate) fn ring_blocks_with<'a, T>(
    rings: impl IntoIterator<Item = (Entity, Mut<'a, SynapticInput>)>,
    targets: &[(Entity, Range<usize>)],
    items: &'a [T],
) -> Vec<(RingBlockMut<'a>, &'a [T])> {
    let mut work = Vec::new();
    for (e, ring) in rings {
        if let Ok(k) = targets.binary_search_by_key(&e, |t| t.0) {
            let list = &items[targets[k].1.clone()];
            work.extend(ring.into_inner().blocks_mut().map(|b| (b, list)));
        }
    }
    work
}
