//! The CUDA backend's step (feature `cuda`). The network is built on the CPU exactly as for
//! the CPU backend (same seed, same connectivity), then [`upload`] copies it to the device
//! once: neuron state, ring buffers, external currents, each projection's per-block CSR end
//! to end, the inputs with their thresholds, and the tables of [`crate::cuda_tables`] that
//! point into them.
//!
//! A step on the device is a fixed sequence of launches on one stream, in the CPU's phase
//! order: memsets of the driven currents, `dc_input` per DC input, `poisson_input` per
//! layer of Poisson inputs (inputs onto one population in separate layers, in scene order),
//! one `<model>_update` per neuron model for all its populations, one `compact_spikes` for
//! all populations, one `deliver_static` for all projections, and `advance_clock`. The step
//! number lives on the device (`clock`) and every kernel checks its own input windows, so
//! the sequence never changes: it is captured once as a CUDA graph and each step launches
//! that graph. The host then copies back the spike list (one transfer of
//! [`SPIKE_CHUNK`] entries, a second only when more neurons spiked) and hands it to the
//! populations' [`Spikes`], where the CPU's recording systems take it.
//!
//! Every [`PHASE_SAMPLE`]th step runs launch by launch with CUDA events between the phases:
//! [`DevicePhaseTimes`] keeps their means. `MYELIN_CUDA_GRAPH=0` runs every step launch by
//! launch.
//!
//! The device's `deliver_static` adds with atomics, so spike trains may drift from the CPU's
//! by float summation order (the connectivity and the input are the same, see DESIGN.md).

use std::sync::Arc;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use cudarc::driver::sys::{
    CUdevice_attribute, CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode,
};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaGraph, CudaModule, CudaSlice, CudaStream, DevicePtr,
    DeviceRepr, DriverError, LaunchArgs, LaunchConfig, PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use myelin_components::{
    Connectivity, DcInput, ExternalCurrent, NeuronState, PlasticityState, PoissonInput, Projection,
    Spikes, StableId, StateRecorder, SynapticInput,
};
use myelin_engine::{
    ActiveBackend, Backend, BackendError, DevicePhaseTimes, KernelSource, RunSeed, SimClock,
    SimStep, SimSystems, cuda,
};

use crate::cuda_tables::{self, DeliveryProjection, FlatCsr, NeuronPopulation, PoissonSource};
use crate::neurons::DeviceModels;

/// Threads per block of the per-neuron kernels.
const THREADS: u32 = 256;
/// Threads of `compact_spikes`' one block (`COMPACT_THREADS` in recording.cu).
const COMPACT_THREADS: u32 = 1024;
/// The most thread blocks of `deliver_static` per projection (eight warps each; the warps
/// stride over the step's rows). Fewer where the projections are many: the launch is kept
/// to about [`DELIVERY_BLOCKS_PER_SM`] blocks per multiprocessor, so that it runs in one
/// wave.
const DELIVERY_BLOCKS: u32 = 16;
const DELIVERY_BLOCKS_PER_SM: u32 = 4;
/// Spikes copied back with the per-population offsets in the step's one transfer.
const SPIKE_CHUNK: usize = 4096;
/// Every this many steps, one step runs launch by launch and is timed phase by phase.
const PHASE_SAMPLE: u64 = 100;
/// The phases the events separate, in step order.
const PHASES: [&str; 4] = ["inputs", "update", "compact", "deliver"];
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

/// A population's buffers on the device (the tables point into them).
struct Pop {
    entity: Entity,
    /// Its first word in the spike bitmap.
    word: u32,
    consts: CudaSlice<f32>,
    real: CudaSlice<f32>,
    int: CudaSlice<u32>,
    ring: CudaSlice<f32>,
    slots: u32,
    current: CudaSlice<f32>,
    driven: bool,
    /// Neurons.
    n: u32,
}

/// A state recorder's column, copied back at the end of each step it samples.
struct Sampled {
    pop: usize,
    real: bool,
    column: usize,
    interval: u64,
}

/// One launch of a kernel over a table of populations or inputs, their thread blocks one
/// after another (`row_of_block` in the prelude).
struct TableLaunch {
    function: CudaFunction,
    table: CudaSlice<u64>,
    rows: u32,
    /// Thread blocks of the launch, all rows together.
    blocks: u32,
}

struct Dc {
    amplitude: f32,
    pop: usize,
    neurons: Option<CudaSlice<u32>>,
    n: u32,
    start: u64,
    stop: u64,
}

/// Buffers the tables point into, kept alive with the network.
#[derive(Default)]
struct Kept {
    u16s: Vec<CudaSlice<u16>>,
    u32s: Vec<CudaSlice<u32>>,
    u64s: Vec<CudaSlice<u64>>,
    f32s: Vec<CudaSlice<f32>>,
}

/// CUDA events between the phases of a sampled step, and the sums of their intervals.
struct PhaseEvents {
    marks: [CudaEvent; 5],
    sums_ms: [f64; 4],
    sampled: u64,
    /// Device time of whole steps launched as the graph, and how many were timed.
    graph_ms: f64,
    graph_sampled: u64,
}

/// The network on the device, and the kernels that step it.
pub struct DeviceNet {
    stream: Arc<CudaStream>,
    _modules: Vec<Arc<CudaModule>>,
    device: String,
    clock: CudaSlice<u64>,
    bitmap: CudaSlice<u32>,
    pop_word: CudaSlice<u32>,
    /// `compact_spikes`' output: the offsets per population, then the list.
    spikes: CudaSlice<u32>,
    pops: Vec<Pop>,
    updates: Vec<TableLaunch>,
    poisson: Vec<TableLaunch>,
    dcs: Vec<Dc>,
    dc_fn: CudaFunction,
    compact_fn: CudaFunction,
    advance_fn: CudaFunction,
    deliver_fn: CudaFunction,
    projections: Option<(CudaSlice<u64>, u32)>,
    /// The state recorders' columns.
    sampled: Vec<Sampled>,
    /// Blocks of `deliver_static` per projection.
    deliver_blocks: u32,
    _kept: Kept,
    seed: u64,
    /// The head of `spikes` copied back each step.
    landing: PinnedHostSlice<u32>,
    graph: Option<CudaGraph>,
    phases: PhaseEvents,
}

fn driver(op: &str) -> impl FnOnce(DriverError) -> BackendError + '_ {
    move |e| BackendError::Driver {
        op: op.to_string(),
        message: e.to_string(),
    }
}

/// `blocks` blocks of [`THREADS`] threads in one dimension.
fn flat_grid(blocks: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks.max(1), 1, 1),
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
    // kernel's signature in its .cu source; device buffers and tables (cuda_tables, whose
    // layouts the sources assert) of the sizes the kernel indexes (a population's n
    // neurons, its rings of `slots` slots, a projection's CSR), all kept alive by the
    // DeviceNet and used on its one stream, so no launch sees another's buffers
    // half-written.
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

/// Copies to the device, counting the bytes.
struct Upload<'a> {
    stream: &'a Arc<CudaStream>,
    bytes: usize,
}

impl Upload<'_> {
    fn copy<T: DeviceRepr>(&mut self, v: &[T], what: &str) -> Result<CudaSlice<T>, BackendError> {
        self.bytes += std::mem::size_of_val(v);
        self.stream
            .clone_htod(v)
            .map_err(driver(&format!("copying {what} to the device")))
    }
}

/// The device address of `s`.
fn addr<T>(s: &CudaSlice<T>, stream: &CudaStream) -> u64 {
    s.device_ptr(stream).0
}

/// Builds the [`DeviceNet`] of the network in `world` (built on the CPU) on device 0 and
/// keeps it in the world for [`device_step`]. Returns the bytes uploaded.
pub fn upload(world: &mut World) -> Result<usize, BackendError> {
    let info = cuda::probe()?;
    let ctx = CudaContext::new(0).map_err(driver("opening device 0"))?;
    #[expect(
        unsafe_code,
        reason = "cudarc's per-buffer events are not needed on one stream, and would break graph capture"
    )]
    // SAFETY: every allocation, copy and launch of the DeviceNet goes to its one stream, in
    // order; the host reads results only after synchronising with that stream; buffers are
    // freed only with the DeviceNet.
    unsafe {
        ctx.disable_event_tracking();
    }
    // Not the legacy default stream: it cannot be captured into a graph.
    let stream = ctx.new_stream().map_err(driver("creating a stream"))?;
    let mut up = Upload {
        stream: &stream,
        bytes: 0,
    };
    let mut modules = Vec::new();
    let inputs = module(&ctx, &crate::inputs::CUDA_KERNEL)?;
    let compact = module(&ctx, &crate::recording::CUDA_KERNEL)?;
    let deliver = module(&ctx, &crate::delivery::CUDA_KERNEL)?;
    let (poisson_fn, dc_fn) = (
        function(&inputs, "poisson_input")?,
        function(&inputs, "dc_input")?,
    );
    let (compact_fn, advance_fn) = (
        function(&compact, "compact_spikes")?,
        function(&compact, "advance_clock")?,
    );
    let deliver_fn = function(&deliver, "deliver_static")?;
    modules.extend([inputs, compact, deliver]);
    let mut kept = Kept::default();

    // Populations, in stable order; each owns whole words of one spike bitmap.
    let mut models = DeviceModels::populations(world);
    models.sort_by_key(|(e, ..)| world.get::<StableId>(*e).map_or(u32::MAX, |s| s.0));
    let sizes: Vec<u32> = models
        .iter()
        .map(|(e, ..)| world.get::<SynapticInput>(*e).map_or(0, |i| i.len() as u32))
        .collect();
    let word_starts = cuda_tables::bitmap_words(&sizes);
    let mut pops = Vec::new();
    for ((entity, name, kernel, consts), &word) in models.iter().zip(&word_starts) {
        if kernel.is_none() {
            return Err(BackendError::Unsupported(format!(
                "neuron model {name} has no CUDA kernel"
            )));
        }
        let e = world.entity(*entity);
        let (state, input, current) = (
            e.get::<NeuronState>().expect("a population has state"),
            e.get::<SynapticInput>().expect("a population has rings"),
            e.get::<ExternalCurrent>()
                .expect("a population has a current"),
        );
        let int = if state.int.is_empty() {
            vec![0u32]
        } else {
            state.int.concat()
        };
        pops.push(Pop {
            entity: *entity,
            word,
            consts: up.copy(consts, "neuron constants")?,
            real: up.copy(&state.real.concat(), "neuron state")?,
            int: up.copy(&int, "neuron state")?,
            ring: up.copy(&input.folded(), "ring buffers")?,
            slots: input.slots() as u32,
            current: up.copy(&current.values, "external currents")?,
            driven: current.driven,
            n: sizes[pops.len()],
        });
    }
    let n_words = *word_starts.last().unwrap();
    let alloc = |len: usize, what: &str| {
        stream
            .alloc_zeros::<u32>(len.max(1))
            .map_err(driver(&format!("allocating {what}")))
    };
    let bitmap = alloc(n_words as usize, "the spike bitmap")?;
    let spikes = alloc(pops.len() + 1 + 32 * n_words as usize, "the spike list")?;
    let pop_word = up.copy(&word_starts, "the spike bitmap's layout")?;
    let mut clock = stream
        .alloc_zeros::<u64>(1)
        .map_err(driver("allocating the step counter"))?;
    stream
        .memcpy_htod(&[world.resource::<SimClock>().step], &mut clock)
        .map_err(driver("setting the step counter"))?;

    // One update launch per model, over its populations: each gets ceil(n / THREADS)
    // blocks after the previous one's.
    let mut updates: Vec<(KernelSource, Vec<u64>, u32, u32)> = Vec::new();
    for ((pop, (_, _, kernel, _)), &n) in pops.iter().zip(&models).zip(&sizes) {
        let source = kernel.expect("checked above");
        let at = updates.iter().position(|u| u.0 == source);
        let row = NeuronPopulation {
            first_block: at.map_or(0, |k| updates[k].3),
            c: addr(&pop.consts, &stream),
            real: addr(&pop.real, &stream),
            integer: addr(&pop.int, &stream),
            ring: addr(&pop.ring, &stream),
            current: addr(&pop.current, &stream),
            words: addr(&bitmap, &stream) + 4 * u64::from(pop.word),
            n,
            slots: pop.slots,
        };
        let blocks = n.div_ceil(THREADS);
        match at {
            Some(k) => {
                let u = &mut updates[k];
                u.1.extend(row.words());
                u.2 += 1;
                u.3 += blocks;
            }
            None => updates.push((source, row.words().to_vec(), 1, blocks)),
        }
    }
    let mut update_launches = Vec::new();
    for (source, table, rows, blocks) in updates {
        let m = module(&ctx, &source)?;
        update_launches.push(TableLaunch {
            function: function(&m, source.entries[0])?,
            table: up.copy(&table, "the population table")?,
            rows,
            blocks,
        });
        modules.push(m);
    }
    let index = |e: Entity| pops.iter().position(|p| p.entity == e);
    let mut q = world.query::<&StateRecorder>();
    let sampled: Vec<Sampled> = q
        .iter(world)
        .filter_map(|r| {
            Some(Sampled {
                pop: index(r.population)?,
                real: r.real,
                column: r.column,
                interval: r.interval.max(1),
            })
        })
        .collect();

    // Static projections, one table for the one delivery launch.
    let mut q = world.query::<(&Projection, &Connectivity, Option<&PlasticityState>)>();
    let mut proj_table = Vec::new();
    let mut n_proj = 0u32;
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
        let f = FlatCsr::of(c);
        if f.target.is_empty() {
            continue;
        }
        let (row_base, row_ptr, syn_base) = (
            up.copy(&f.row_base, "connectivity")?,
            up.copy(&f.row_ptr, "connectivity")?,
            up.copy(&f.syn_base, "connectivity")?,
        );
        let (tgt, weight, delay) = (
            up.copy(&f.target, "connectivity")?,
            up.copy(&f.weight, "connectivity")?,
            up.copy(&f.delay, "connectivity")?,
        );
        let row = DeliveryProjection {
            row_base: addr(&row_base, &stream),
            row_ptr: addr(&row_ptr, &stream),
            syn_base: addr(&syn_base, &stream),
            target: addr(&tgt, &stream),
            weight: addr(&weight, &stream),
            delay: addr(&delay, &stream),
            ring: addr(&pops[target].ring, &stream),
            n_blocks: c.n_blocks() as u32,
            source: source as u32,
            source_word: pops[source].word,
            slots: pops[target].slots,
        };
        proj_table.extend(row.words());
        n_proj += 1;
        kept.u64s.extend([row_base, syn_base]);
        kept.u32s.push(row_ptr);
        kept.u16s.extend([tgt, delay]);
        kept.f32s.push(weight);
    }
    let sms = ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .map_err(driver("reading the number of multiprocessors"))?;
    let deliver_blocks =
        (DELIVERY_BLOCKS_PER_SM * sms.max(1) as u32 / n_proj.max(1)).clamp(1, DELIVERY_BLOCKS);
    let projections = if n_proj > 0 {
        Some((up.copy(&proj_table, "the projection table")?, n_proj))
    } else {
        None
    };

    // Poisson inputs in scene order, in layers: the k-th input onto a population goes to
    // layer k, so one launch never adds twice to a neuron and each population gets its
    // inputs in the CPU's order.
    let mut q = world.query::<(&PoissonInput, &StableId)>();
    let mut inputs: Vec<(&StableId, &PoissonInput)> =
        q.iter(world).map(|(p, id)| (id, p)).collect();
    inputs.sort_by_key(|(id, _)| id.0);
    let mut layers: Vec<(Vec<u64>, u32, u32)> = Vec::new();
    let mut per_pop = vec![0usize; pops.len()];
    for &(id, p) in &inputs {
        let Some(pop) = index(p.target) else { continue };
        if p.lambda <= 0.0 {
            continue;
        }
        let thresholds = up.copy(
            if p.thresholds.is_empty() {
                &[0u32][..]
            } else {
                &p.thresholds[..]
            },
            "Poisson thresholds",
        )?;
        let (neurons, n) = match &p.neurons {
            Some(v) => {
                let d = up.copy(v, "an input's neurons")?;
                let a = addr(&d, &stream);
                kept.u32s.push(d);
                (a, v.len() as u32)
            }
            None => (0, sizes[pop]),
        };
        let k = per_pop[pop];
        per_pop[pop] += 1;
        if layers.len() == k {
            layers.push((Vec::new(), 0, 0));
        }
        let layer = &mut layers[k];
        let row = PoissonSource {
            first_block: layer.2,
            thresholds: addr(&thresholds, &stream),
            ring: addr(&pops[pop].ring, &stream),
            neurons,
            lambda: p.lambda,
            start: p.start,
            stop: p.stop,
            n_thresholds: p.thresholds.len() as u32,
            element: id.0,
            delay: u32::from(p.delay),
            slots: pops[pop].slots,
            n,
            weight: p.weight,
        };
        kept.u32s.push(thresholds);
        layer.0.extend(row.words());
        layer.1 += 1;
        layer.2 += n.div_ceil(THREADS);
    }
    let mut poisson = Vec::new();
    for (table, rows, blocks) in layers {
        poisson.push(TableLaunch {
            function: poisson_fn.clone(),
            table: up.copy(&table, "the Poisson table")?,
            rows,
            blocks,
        });
    }
    let mut dcs = Vec::new();
    let mut q = world.query::<(&DcInput, &StableId)>();
    let mut found: Vec<(&StableId, &DcInput)> = q.iter(world).map(|(d, id)| (id, d)).collect();
    found.sort_by_key(|(id, _)| id.0);
    for (_, d) in found {
        let Some(pop) = index(d.target) else { continue };
        let (neurons, n) = match &d.neurons {
            Some(v) => (Some(up.copy(v, "an input's neurons")?), v.len() as u32),
            None => (None, sizes[pop]),
        };
        dcs.push(Dc {
            amplitude: d.amplitude,
            pop,
            neurons,
            n,
            start: d.start,
            stop: d.stop,
        });
    }

    let head = (pops.len() + 1 + SPIKE_CHUNK).min(spikes.len());
    #[expect(
        unsafe_code,
        reason = "page-locked host memory for the per-step copy of the spikes"
    )]
    // SAFETY: the memory starts unset; it is read only after a copy from the device has
    // filled all `head` entries of it (DeviceNet::step).
    let landing = unsafe { ctx.alloc_pinned_with_flags::<u32>(head, 0) }
        .map_err(driver("allocating page-locked memory for the spikes"))?;
    let timing = || {
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(driver("creating timing events"))
    };
    let marks = [timing()?, timing()?, timing()?, timing()?, timing()?];
    stream
        .synchronize()
        .map_err(driver("finishing the upload"))?;
    let seed = world.get_resource::<RunSeed>().map_or(0, |s| s.0);
    let up_bytes = up.bytes;
    let mut net = DeviceNet {
        stream,
        _modules: modules,
        device: info.name,
        clock,
        bitmap,
        pop_word,
        spikes,
        pops,
        updates: update_launches,
        poisson,
        dcs,
        dc_fn,
        compact_fn,
        advance_fn,
        deliver_fn,
        projections,
        sampled,
        deliver_blocks,
        _kept: kept,
        seed,
        landing,
        graph: None,
        phases: PhaseEvents {
            marks,
            sums_ms: [0.0; 4],
            sampled: 0,
            graph_ms: 0.0,
            graph_sampled: 0,
        },
    };
    if std::env::var("MYELIN_CUDA_GRAPH").as_deref() != Ok("0") {
        net.graph = Some(net.capture().map_err(driver(
            "capturing the step as a CUDA graph (MYELIN_CUDA_GRAPH=0 runs without one)",
        ))?);
    }
    world.insert_resource(net.phase_times());
    world.insert_non_send(net);
    Ok(up_bytes)
}

impl DeviceNet {
    /// Queues one step's launches on the stream; with `timed`, records the phase events
    /// between them.
    fn enqueue(&mut self, timed: bool) -> Result<(), DriverError> {
        let s = self.stream.clone();
        let mark = |k: usize, marks: &[CudaEvent; 5]| {
            if timed { marks[k].record(&s) } else { Ok(()) }
        };
        let null = 0u64;
        mark(0, &self.phases.marks)?;
        // Inputs, in scene order per kind (DC currents, then Poisson events), as the CPU.
        for p in self.pops.iter_mut().filter(|p| p.driven) {
            s.memset_zeros(&mut p.current)?;
        }
        for d in &self.dcs {
            let mut a = s.launch_builder(&self.dc_fn);
            a.arg(&d.amplitude).arg(&self.pops[d.pop].current);
            match &d.neurons {
                Some(v) => a.arg(v),
                None => a.arg(&null),
            };
            a.arg(&d.n).arg(&d.start).arg(&d.stop).arg(&self.clock);
            launch(a, flat_grid(d.n.div_ceil(THREADS)))?;
        }
        for l in &self.poisson {
            let mut a = s.launch_builder(&l.function);
            a.arg(&self.seed)
                .arg(&l.table)
                .arg(&l.rows)
                .arg(&self.clock);
            launch(a, flat_grid(l.blocks))?;
        }
        mark(1, &self.phases.marks)?;
        for l in &self.updates {
            let mut a = s.launch_builder(&l.function);
            a.arg(&l.table).arg(&l.rows).arg(&self.clock);
            launch(a, flat_grid(l.blocks))?;
        }
        mark(2, &self.phases.marks)?;
        let n_pops = self.pops.len() as u32;
        let mut a = s.launch_builder(&self.compact_fn);
        a.arg(&self.bitmap)
            .arg(&self.pop_word)
            .arg(&n_pops)
            .arg(&self.spikes);
        launch(
            a,
            LaunchConfig {
                grid_dim: (1, 1, 1),
                block_dim: (COMPACT_THREADS, 1, 1),
                shared_mem_bytes: 0,
            },
        )?;
        mark(3, &self.phases.marks)?;
        if let Some((table, n_proj)) = &self.projections {
            let mut a = s.launch_builder(&self.deliver_fn);
            a.arg(&self.spikes).arg(&n_pops).arg(table).arg(&self.clock);
            launch(
                a,
                LaunchConfig {
                    grid_dim: (self.deliver_blocks, *n_proj, 1),
                    block_dim: (THREADS, 1, 1),
                    shared_mem_bytes: 0,
                },
            )?;
        }
        let mut a = s.launch_builder(&self.advance_fn);
        a.arg(&self.clock);
        launch(a, LaunchConfig::for_num_elems(1))?;
        mark(4, &self.phases.marks)
    }

    /// The step's launches captured once as a CUDA graph.
    fn capture(&mut self) -> Result<CudaGraph, DriverError> {
        let s = self.stream.clone();
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
        let queued = self.enqueue(false);
        // Capture ends whether or not a launch failed, so the stream is usable again.
        let graph = s.end_capture(CUgraphInstantiate_flags(0));
        queued?;
        let graph = graph?.ok_or(DriverError(
            cudarc::driver::sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
        ))?;
        graph.upload()?;
        Ok(graph)
    }

    fn phase_times(&self) -> DevicePhaseTimes {
        let n = self.phases.sampled.max(1) as f64;
        DevicePhaseTimes {
            device: self.device.clone(),
            graph: self.graph.is_some(),
            sampled_steps: self.phases.sampled,
            per_step_s: PHASES
                .iter()
                .zip(self.phases.sums_ms)
                .map(|(&name, ms)| (name, ms / n / 1e3))
                .collect(),
            graph_step_s: (self.phases.graph_sampled > 0)
                .then(|| self.phases.graph_ms / self.phases.graph_sampled as f64 / 1e3),
        }
    }

    /// One step on the device; the spike lists come back into the populations' [`Spikes`].
    fn step(&mut self, world: &mut World) -> Result<(), DriverError> {
        let step = world.resource::<SimClock>().step;
        let timed = step.is_multiple_of(PHASE_SAMPLE);
        // Halfway between phase samples, the whole graph is timed.
        let graph_timed = step % PHASE_SAMPLE == PHASE_SAMPLE / 2 && self.graph.is_some();
        let m = &self.phases.marks;
        match &self.graph {
            Some(g) if !timed => {
                if graph_timed {
                    m[0].record(&self.stream)?;
                }
                g.launch()?;
                if graph_timed {
                    m[4].record(&self.stream)?;
                }
            }
            _ => self.enqueue(timed)?,
        }
        let head = self.landing.len();
        self.stream
            .memcpy_dtoh(&self.spikes.slice(0..head), &mut self.landing)?;
        // With event tracking off (see `upload`), the page-locked slice records no event of
        // its own: the stream's synchronisation is what makes the copy visible.
        self.stream.synchronize()?;
        let got = self.landing.as_slice()?;
        let n_pops = self.pops.len();
        let total = got[n_pops] as usize;
        let rest;
        let list: &[u32] = if n_pops + 1 + total <= head {
            &got[n_pops + 1..n_pops + 1 + total]
        } else {
            rest = self
                .stream
                .clone_dtoh(&self.spikes.slice(n_pops + 1..n_pops + 1 + total))?;
            &rest
        };
        for (p, pop) in self.pops.iter().enumerate() {
            let (a, b) = (got[p] as usize, got[p + 1] as usize);
            if let Some(mut sp) = world.get_mut::<Spikes>(pop.entity) {
                let bit0 = pop.word * 32;
                sp.total += (b - a) as u64;
                sp.current.clear();
                sp.current.extend(list[a..b].iter().map(|&x| x - bit0));
            }
        }
        // The columns the state recorders sample at the end of this step come back into the
        // populations' NeuronState, where the CPU's record_state reads them.
        let mut copied = false;
        for r in self.sampled.iter().filter(|r| (step + 1) % r.interval == 0) {
            let pop = &self.pops[r.pop];
            let n = pop.n as usize;
            let column = r.column * n..(r.column + 1) * n;
            let Some(mut state) = world.get_mut::<NeuronState>(pop.entity) else {
                continue;
            };
            if r.real {
                let host = &mut state.real[r.column][..];
                self.stream.memcpy_dtoh(&pop.real.slice(column), host)?;
            } else {
                let host = &mut state.int[r.column][..];
                self.stream.memcpy_dtoh(&pop.int.slice(column), host)?;
            }
            copied = true;
        }
        if copied {
            self.stream.synchronize()?;
        }
        if timed {
            let m = &self.phases.marks;
            for k in 0..PHASES.len() {
                self.phases.sums_ms[k] += f64::from(m[k].elapsed_ms(&m[k + 1])?);
            }
            self.phases.sampled += 1;
            world.insert_resource(self.phase_times());
        }
        if graph_timed {
            let m = &self.phases.marks;
            self.phases.graph_ms += f64::from(m[0].elapsed_ms(&m[4])?);
            self.phases.graph_sampled += 1;
            world.insert_resource(self.phase_times());
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
