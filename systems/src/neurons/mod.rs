//! Neuron models and the generic integrate system.
//!
//! Each model is integrated exactly (exponential propagators, as NEST does): between input
//! events the subthreshold dynamics are linear, so one step is a matrix-vector product
//! whose entries ([`propagators`]) are computed once from the parameters and `dt`.

/// The CUDA kernel of the built-in model `$name`: `systems/src/neurons/$name.cu`, entry point
/// `${name}_update`, compiled without fused multiply-adds (it follows the CPU kernel
/// operation for operation).
macro_rules! neuron_kernel {
    ($name:literal) => {
        Some(myelin_engine::KernelSource {
            file: concat!("systems/src/neurons/", $name, ".cu"),
            entries: &[concat!($name, "_update")],
            source: include_str!(concat!($name, ".cu")),
            fmad: false,
        })
    };
}

mod iaf_psc_alpha;
mod iaf_psc_delta;
mod iaf_psc_exp;
pub mod propagators;

use std::marker::PhantomData;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use myelin_components::{
    DELIVERY_BLOCK, ExternalCurrent, NeuronState, Spikes, StableId, SynapticInput,
};
use myelin_engine::{
    KernelSource, LocalNeurons, NeuronModel, Neurons, RegistryAppExt, SimClock, SimStep,
    SimSystems, on_cpu,
};

pub use iaf_psc_alpha::IafPscAlpha;
pub use iaf_psc_delta::IafPscDelta;
pub use iaf_psc_exp::IafPscExp;

/// Registers neuron model `M` under its scene name and adds its update to
/// [`SimSystems::Integrate`].
pub struct NeuronModelPlugin<M>(PhantomData<fn() -> M>);

impl<M> Default for NeuronModelPlugin<M> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<M: NeuronModel> Plugin for NeuronModelPlugin<M> {
    fn build(&self, app: &mut App) {
        app.register_neuron_model::<M>().add_systems(
            SimStep,
            integrate::<M>.in_set(SimSystems::Integrate).run_if(on_cpu),
        );
        app.init_resource::<DeviceModels>();
        app.world_mut()
            .resource_mut::<DeviceModels>()
            .0
            .push(device_populations::<M>);
    }
}

/// The device kernel of one population: its entity, the model's kernel (`None`: the model
/// has none) and the constants the kernel reads.
pub type DevicePopulation = (Entity, &'static str, Option<KernelSource>, Vec<f32>);

/// For every registered model, the function that lists its populations' device kernels
/// (a GPU backend cannot name the model types, which only their plugins know).
#[derive(Resource, Default)]
pub struct DeviceModels(pub Vec<fn(&mut World) -> Vec<DevicePopulation>>);

impl DeviceModels {
    /// Every population's device kernel, whatever its model.
    pub fn populations(world: &mut World) -> Vec<DevicePopulation> {
        let fns = world
            .get_resource::<DeviceModels>()
            .map(|d| d.0.clone())
            .unwrap_or_default();
        fns.iter().flat_map(|f| f(world)).collect()
    }
}

fn device_populations<M: NeuronModel>(world: &mut World) -> Vec<DevicePopulation> {
    let mut q = world.query::<(Entity, &Neurons<M>)>();
    q.iter(world)
        .map(|(e, m)| (e, M::NAME, M::CUDA_KERNEL, m.0.device_constants()))
        .collect()
}

/// Advances every population of model `M` by one step: for every delivery block (of all
/// such populations, in parallel) the model's kernel reads the ring-buffer slot of this
/// step, which is then cleared, and collects spikes; the blocks' spikes are concatenated
/// in block order. Under [`LocalNeurons`] (an MPI rank's part) only the blocks holding a
/// local neuron are updated: the others receive no input and their spikes are not this
/// rank's to emit.
pub fn integrate<M: NeuronModel>(
    clock: Res<SimClock>,
    local: Option<Res<LocalNeurons>>,
    mut q: Query<(
        &Neurons<M>,
        &mut NeuronState,
        &mut SynapticInput,
        &ExternalCurrent,
        &mut Spikes,
        &StableId,
    )>,
) {
    let step = clock.step;
    let mut pops: Vec<_> = q
        .iter_mut()
        .map(|(m, s, i, c, sp, id)| {
            let range = local.as_ref().and_then(|l| l.0.get(id.0 as usize).cloned());
            (
                &m.0,
                s.into_inner(),
                i.into_inner(),
                c,
                sp.into_inner(),
                range,
            )
        })
        .collect();
    {
        let mut work = Vec::with_capacity(pops.iter().map(|p| p.2.blocks()).sum());
        for (m, state, input, current, spikes, range) in pops.iter_mut() {
            let blocks = state.blocks_mut(DELIVERY_BLOCK);
            let rings = input.blocks_mut();
            for (k, ((nb, rb), (cur, out))) in blocks
                .zip(rings)
                .zip(
                    current
                        .values
                        .chunks(DELIVERY_BLOCK)
                        .zip(spikes.per_block.iter_mut()),
                )
                .enumerate()
            {
                if let Some(r) = range
                    && (r.end <= k * DELIVERY_BLOCK || r.start >= (k + 1) * DELIVERY_BLOCK)
                {
                    out.clear();
                    continue;
                }
                work.push((*m, nb, rb, cur, out));
            }
        }
        myelin_engine::for_each_block(work, |(m, mut nb, mut rb, cur, out)| {
            out.clear();
            let (ex, inh) = rb.slot_mut(step);
            m.update(&mut nb, ex, inh, cur, out);
            ex.fill(0.0);
            inh.fill(0.0);
        });
    }
    for (_, _, _, _, spikes, _) in pops.iter_mut() {
        spikes.gather();
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A harness that runs one neuron of a model with given inputs, for closed-form tests.

    use myelin_components::NeuronState;
    use myelin_engine::{NeuronModel, ParamValue, Params};
    use std::collections::BTreeMap;

    /// One neuron of model `M` with the given parameters.
    pub struct OneNeuron<M: NeuronModel> {
        pub model: M,
        pub state: NeuronState,
    }

    impl<M: NeuronModel> OneNeuron<M> {
        pub fn new(params: &[(&str, f64)], dt: f64) -> Self {
            let given: BTreeMap<String, ParamValue> = params
                .iter()
                .map(|(k, v)| (k.to_string(), ParamValue::Number(*v)))
                .collect();
            let p = Params::resolve(M::PARAMETERS, &given).expect("valid test parameters");
            let model = M::new(&p, dt).expect("valid test model");
            let mut state = NeuronState::zeros(1, M::REAL_STATE.len(), M::INT_STATE.len());
            for v in 0..M::REAL_STATE.len() {
                state.real[v][0] = (model.initial(v) - model.offset(v)) as f32;
            }
            Self { model, state }
        }

        /// One step with `ex`/`inh` arriving this step and external current `i_ext` [pA];
        /// returns whether the neuron spiked.
        pub fn step(&mut self, ex: f32, inh: f32, i_ext: f32) -> bool {
            let mut out = Vec::new();
            let mut block = self.state.blocks_mut(1).next().expect("one neuron");
            self.model
                .update(&mut block, &[ex], &[inh], &[i_ext], &mut out);
            !out.is_empty()
        }

        /// Real variable `v` in the user's unit.
        pub fn get(&self, v: usize) -> f64 {
            f64::from(self.state.real[v][0]) + self.model.offset(v)
        }
    }
}
