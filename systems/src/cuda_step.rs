//! The CUDA backend's step (feature `cuda`). The network is built on the CPU exactly as for
//! the CPU backend (same seed, same connectivity), then [`upload`] copies it to the device
//! once: neuron state, ring buffers, external currents, each projection's per-block CSR end
//! to end, and the inputs with their thresholds. Every step then runs on the device in the
//! CPU's phase order: inputs (`dc_input`, `poisson_input`, in scene order), each
//! population's `<model>_update`, `compact_spikes`, and `deliver_static` for every
//! projection. Only the spike lists come back, into the populations' [`Spikes`], where
//! the CPU's recording systems take them.
//!
//! The device's `deliver_static` adds with atomics, so spike trains may drift from the CPU's
//! by float summation order (the connectivity and the input are the same, see DESIGN.md).

use std::sync::Arc;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchArgs,
    LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use myelin_components::{
    Connectivity, DcInput, ExternalCurrent, NeuronState, PlasticityState, PoissonInput, Projection,
    Spikes, StableId, SynapticInput,
};
use myelin_engine::{
    ActiveBackend, Backend, BackendError, KernelSource, RunSeed, SimClock, SimStep, SimSystems,
    cuda,
};

use crate::neurons::DeviceModels;

/// Threads per block of the per-neuron kernels.
const THREADS: u32 = 256;
/// Threads of `compact_spikes`' one block (`COMPACT_THREADS` in recording.cu).
const COMPACT_THREADS: u32 = 1024;
/// The virtual architecture the kernels are compiled for (the driver JIT-compiles the PTX
/// for the device).
const ARCH: &str = "compute_80";

/// Runs the simulation's kernels on the GPU: replaces the CPU's input, neuron-update and
/// delivery systems (which stand down under [`ActiveBackend`]) with [`device_step`].
pub struct CudaStepPlugin;

impl Plugin for CudaStepPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ActiveBackend(Backend::Cuda))
            .add_systems(SimStep, device_step.in_set(SimSystems::Integrate));
    }
}

struct Pop {
    entity: Entity,
    n: u32,
    kernel: CudaFunction,
    consts: CudaSlice<f32>,
    real: CudaSlice<f32>,
    int: CudaSlice<u32>,
    ring: CudaSlice<f32>,
    slots: u32,
    current: CudaSlice<f32>,
    driven: bool,
    words: CudaSlice<u32>,
    spikes: CudaSlice<u32>,
    count: CudaSlice<u32>,
}

struct Proj {
    source: usize,
    target: usize,
    n_blocks: u32,
    row_base: CudaSlice<u64>,
    row_ptr: CudaSlice<u32>,
    syn_base: CudaSlice<u64>,
    target_index: CudaSlice<u16>,
    weight: CudaSlice<f32>,
    delay: CudaSlice<u16>,
}

struct Selection {
    neurons: Option<CudaSlice<u32>>,
    n: u32,
}

struct Poisson {
    id: u32,
    pop: usize,
    thresholds: CudaSlice<u32>,
    n_thresholds: u32,
    lambda: f64,
    weight: f32,
    delay: u32,
    start: u64,
    stop: u64,
    sel: Selection,
}

struct Dc {
    id: u32,
    pop: usize,
    amplitude: f32,
    start: u64,
    stop: u64,
    sel: Selection,
}

/// The network on the device, and the kernels that step it.
pub struct DeviceNet {
    stream: Arc<CudaStream>,
    _modules: Vec<Arc<CudaModule>>,
    poisson_fn: CudaFunction,
    dc_fn: CudaFunction,
    compact_fn: CudaFunction,
    deliver_fn: CudaFunction,
    pops: Vec<Pop>,
    projs: Vec<Proj>,
    poisson: Vec<Poisson>,
    dcs: Vec<Dc>,
    seed: u64,
}

fn driver(op: &str) -> impl FnOnce(DriverError) -> BackendError + '_ {
    move |e| BackendError::Driver {
        op: op.to_string(),
        message: e.to_string(),
    }
}

fn grid(threads: u64) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            threads.div_ceil(u64::from(THREADS)).clamp(1, 1 << 20) as u32,
            1,
            1,
        ),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn launch(mut args: LaunchArgs<'_>, cfg: LaunchConfig) -> Result<(), DriverError> {
    #[expect(
        unsafe_code,
        reason = "a kernel launch: the driver cannot check the arguments"
    )]
    // SAFETY: every launch passes the arguments in the order, number and types of the
    // kernel's signature in its .cu source, device buffers of the sizes the kernel indexes
    // (a population's n neurons, its rings of `slots` slots, a projection's CSR), all on one
    // stream, so no launch sees another's buffers half-written.
    unsafe { args.launch(cfg) }.map(|_| ())
}

/// Loads the kernels of `source` into `ctx`.
fn module(ctx: &Arc<CudaContext>, source: &KernelSource) -> Result<Arc<CudaModule>, BackendError> {
    let ptx = cuda::compile(source, ARCH)?;
    ctx.load_module(Ptx::from_src(ptx))
        .map_err(driver(&format!("loading the kernels of {}", source.file)))
}

fn function(m: &Arc<CudaModule>, name: &str) -> Result<CudaFunction, BackendError> {
    m.load_function(name)
        .map_err(driver(&format!("finding kernel {name}")))
}

/// Builds the [`DeviceNet`] of the network in `world` (built on the CPU) on device 0 and
/// keeps it in the world for [`device_step`].
pub fn upload(world: &mut World) -> Result<usize, BackendError> {
    cuda::probe()?;
    let ctx = CudaContext::new(0).map_err(driver("opening device 0"))?;
    let stream = ctx.default_stream();
    let mut modules = Vec::new();
    let mut up_bytes = 0usize;
    macro_rules! htod {
        ($v:expr, $what:expr) => {{
            let v = $v;
            up_bytes += std::mem::size_of_val(&v[..]);
            stream
                .clone_htod(&v[..])
                .map_err(driver(&format!("copying {} to the device", $what)))?
        }};
    }
    let inputs = module(&ctx, &crate::inputs::CUDA_KERNEL)?;
    let compact = module(&ctx, &crate::recording::CUDA_KERNEL)?;
    let deliver = module(&ctx, &crate::delivery::CUDA_KERNEL)?;
    let (poisson_fn, dc_fn) = (
        function(&inputs, "poisson_input")?,
        function(&inputs, "dc_input")?,
    );
    let compact_fn = function(&compact, "compact_spikes")?;
    let deliver_fn = function(&deliver, "deliver_static")?;
    modules.extend([inputs, compact, deliver]);

    let mut kernels: Vec<(&'static str, CudaFunction)> = Vec::new();
    let mut pops = Vec::new();
    let mut models = DeviceModels::populations(world);
    models.sort_by_key(|(e, ..)| world.get::<StableId>(*e).map_or(u32::MAX, |s| s.0));
    for (entity, name, kernel, consts) in models {
        let Some(source) = kernel else {
            return Err(BackendError::Unsupported(format!(
                "neuron model {name} has no CUDA kernel"
            )));
        };
        let f = match kernels.iter().find(|(n, _)| *n == name) {
            Some((_, f)) => f.clone(),
            None => {
                let m = module(&ctx, &source)?;
                let f = function(&m, source.entries[0])?;
                modules.push(m);
                kernels.push((name, f.clone()));
                f
            }
        };
        let e = world.entity(entity);
        let (state, input, current) = (
            e.get::<NeuronState>().expect("a population has state"),
            e.get::<SynapticInput>().expect("a population has rings"),
            e.get::<ExternalCurrent>()
                .expect("a population has a current"),
        );
        let n = input.len() as u32;
        let words = n.div_ceil(32).max(1) as usize;
        pops.push(Pop {
            entity,
            n,
            kernel: f,
            consts: htod!(consts, format!("the constants of {name}")),
            real: htod!(state.real.concat(), "neuron state"),
            int: htod!(
                if state.int.is_empty() {
                    vec![0u32]
                } else {
                    state.int.concat()
                },
                "neuron state"
            ),
            ring: htod!(input.folded(), "ring buffers"),
            slots: input.slots() as u32,
            current: htod!(current.values.clone(), "external currents"),
            driven: current.driven,
            words: stream
                .alloc_zeros::<u32>(words)
                .map_err(driver("allocating spike bitmaps"))?,
            spikes: stream
                .alloc_zeros::<u32>(n.max(1) as usize)
                .map_err(driver("allocating spike lists"))?,
            count: stream
                .alloc_zeros::<u32>(1)
                .map_err(driver("allocating spike counts"))?,
        });
    }
    let index = |e: Entity| pops.iter().position(|p| p.entity == e);

    let mut q = world.query::<(&Projection, &Connectivity, Option<&PlasticityState>)>();
    let mut projs = Vec::new();
    for (j, c, plastic) in q.iter(world) {
        if plastic.is_some() {
            return Err(BackendError::Unsupported(format!(
                "projection {} is plastic",
                j.name
            )));
        }
        let (Some(source), Some(target)) = (index(j.source), index(j.target)) else {
            continue;
        };
        let (mut row_base, mut syn_base) = (Vec::new(), Vec::new());
        let (mut row_ptr, mut tgt, mut weight, mut delay) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // The device holds the block layout, whichever layout the host has.
        for b in c.blocks() {
            row_base.push(row_ptr.len() as u64);
            syn_base.push(tgt.len() as u64);
            row_ptr.extend_from_slice(&b.row_ptr());
            for s in b.iter() {
                tgt.push(s.target);
                weight.push(s.weight);
                delay.push(s.delay);
            }
        }
        if tgt.is_empty() {
            continue;
        }
        projs.push(Proj {
            source,
            target,
            n_blocks: c.n_blocks() as u32,
            row_base: htod!(row_base, "connectivity"),
            row_ptr: htod!(row_ptr, "connectivity"),
            syn_base: htod!(syn_base, "connectivity"),
            target_index: htod!(tgt, "connectivity"),
            weight: htod!(weight, "connectivity"),
            delay: htod!(delay, "connectivity"),
        });
    }

    let selection = |neurons: &Option<Vec<u32>>, n: u32, up: &mut usize| {
        Ok::<_, BackendError>(match neurons {
            None => Selection { neurons: None, n },
            Some(v) => {
                *up += std::mem::size_of_val(&v[..]);
                Selection {
                    neurons: Some(
                        stream
                            .clone_htod(&v[..])
                            .map_err(driver("copying an input's neurons"))?,
                    ),
                    n: v.len() as u32,
                }
            }
        })
    };
    let mut poisson = Vec::new();
    let mut q = world.query::<(&PoissonInput, &StableId)>();
    for (p, id) in q.iter(world) {
        let Some(pop) = index(p.target) else { continue };
        poisson.push(Poisson {
            id: id.0,
            pop,
            thresholds: htod!(
                if p.thresholds.is_empty() {
                    vec![0u32]
                } else {
                    p.thresholds.clone()
                },
                "Poisson thresholds"
            ),
            n_thresholds: p.thresholds.len() as u32,
            lambda: p.lambda,
            weight: p.weight,
            delay: u32::from(p.delay),
            start: p.start,
            stop: p.stop,
            sel: selection(&p.neurons, pops[pop].n, &mut up_bytes)?,
        });
    }
    poisson.sort_by_key(|p| p.id);
    let mut dcs = Vec::new();
    let mut q = world.query::<(&DcInput, &StableId)>();
    for (d, id) in q.iter(world) {
        let Some(pop) = index(d.target) else { continue };
        dcs.push(Dc {
            id: id.0,
            pop,
            amplitude: d.amplitude,
            start: d.start,
            stop: d.stop,
            sel: selection(&d.neurons, pops[pop].n, &mut up_bytes)?,
        });
    }
    dcs.sort_by_key(|d| d.id);
    stream
        .synchronize()
        .map_err(driver("finishing the upload"))?;
    let seed = world.get_resource::<RunSeed>().map_or(0, |s| s.0);
    world.insert_non_send(DeviceNet {
        stream,
        _modules: modules,
        poisson_fn,
        dc_fn,
        compact_fn,
        deliver_fn,
        pops,
        projs,
        poisson,
        dcs,
        seed,
    });
    Ok(up_bytes)
}

impl DeviceNet {
    /// One step on the device; the spike lists come back into the populations' [`Spikes`].
    fn step(&mut self, world: &mut World) -> Result<(), DriverError> {
        let step = world.resource::<SimClock>().step;
        let s = &self.stream;
        let null = 0u64;
        // Inputs, in scene order per kind (DC currents, then Poisson events), as the CPU.
        for p in self.pops.iter_mut().filter(|p| p.driven) {
            s.memset_zeros(&mut p.current)?;
        }
        for d in self.dcs.iter().filter(|d| step >= d.start && step < d.stop) {
            let mut a = s.launch_builder(&self.dc_fn);
            a.arg(&d.amplitude).arg(&self.pops[d.pop].current);
            match &d.sel.neurons {
                Some(v) => a.arg(v),
                None => a.arg(&null),
            };
            a.arg(&d.sel.n);
            launch(a, grid(u64::from(d.sel.n)))?;
        }
        for p in self
            .poisson
            .iter()
            .filter(|p| step >= p.start && step < p.stop && p.lambda > 0.0)
        {
            let pop = &self.pops[p.pop];
            let mut a = s.launch_builder(&self.poisson_fn);
            a.arg(&self.seed)
                .arg(&p.id)
                .arg(&step)
                .arg(&p.thresholds)
                .arg(&p.n_thresholds)
                .arg(&p.lambda)
                .arg(&p.weight)
                .arg(&p.delay)
                .arg(&pop.ring)
                .arg(&pop.slots);
            match &p.sel.neurons {
                Some(v) => a.arg(v),
                None => a.arg(&null),
            };
            a.arg(&p.sel.n);
            launch(a, grid(u64::from(p.sel.n)))?;
        }
        // Neuron updates, then each population's spike list.
        for p in &self.pops {
            let mut a = s.launch_builder(&p.kernel);
            a.arg(&p.consts)
                .arg(&p.real)
                .arg(&p.int)
                .arg(&p.ring)
                .arg(&p.slots)
                .arg(&step)
                .arg(&p.current)
                .arg(&p.n)
                .arg(&p.words);
            launch(a, grid(u64::from(p.n)))?;
            let n_words = p.n.div_ceil(32);
            let mut a = s.launch_builder(&self.compact_fn);
            a.arg(&p.words).arg(&n_words).arg(&p.spikes).arg(&p.count);
            launch(
                a,
                LaunchConfig {
                    grid_dim: (1, 1, 1),
                    block_dim: (COMPACT_THREADS, 1, 1),
                    shared_mem_bytes: 0,
                },
            )?;
        }
        let mut counts = Vec::with_capacity(self.pops.len());
        for p in &self.pops {
            counts.push(s.clone_dtoh(&p.count)?[0]);
        }
        // Delivery: a warp per (spike, target block) row.
        for j in &self.projs {
            let k = counts[j.source];
            if k == 0 {
                continue;
            }
            let (src, tgt) = (&self.pops[j.source], &self.pops[j.target]);
            let mut a = s.launch_builder(&self.deliver_fn);
            a.arg(&src.spikes)
                .arg(&src.count)
                .arg(&j.n_blocks)
                .arg(&j.row_base)
                .arg(&j.row_ptr)
                .arg(&j.syn_base)
                .arg(&j.target_index)
                .arg(&j.weight)
                .arg(&j.delay)
                .arg(&tgt.ring)
                .arg(&tgt.slots)
                .arg(&step);
            launch(a, grid(u64::from(k) * u64::from(j.n_blocks) * 32))?;
        }
        // The spikes back, for recording and the rates.
        for (p, &k) in self.pops.iter().zip(&counts) {
            let list = if k > 0 {
                s.clone_dtoh(&p.spikes.slice(0..k as usize))?
            } else {
                Vec::new()
            };
            if let Some(mut sp) = world.get_mut::<Spikes>(p.entity) {
                sp.total += u64::from(k);
                sp.current = list;
            }
        }
        Ok(())
    }
}

/// The device's step, in [`SimSystems::Integrate`]: inputs, neuron updates, spike lists and
/// delivery on the device (see the module). A driver failure in the middle of a run stops
/// it with the driver's message.
pub fn device_step(world: &mut World) {
    let Some(mut net) = world.remove_non_send::<DeviceNet>() else {
        panic!(
            "the CUDA backend's network was not uploaded (call systems::cuda::upload after build)"
        );
    };
    if let Err(e) = net.step(world) {
        panic!(
            "the CUDA device failed during step {}: {e}",
            world.resource::<SimClock>().step
        );
    }
    world.insert_non_send(net);
}
