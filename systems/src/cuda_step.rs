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
//! all populations and one `deliver_static` for all projections. Steps run in batches of
//! [`BATCH`]: every kernel gets the step's place `k` in its batch and works on step
//! `*clock + k`, and one `advance_clock` moves the device's clock on at the batch's end. So
//! a batch is the same launch sequence every time: it is captured once as a CUDA graph
//! (one per half of the spike record) and each batch is one graph launch.
//!
//! `compact_spikes` appends each step's spike list to its batch's half of the record, with
//! the step's offsets in the half's header. One copy per batch brings the header and the
//! head of the list back into page-locked memory (the header alone where no spike recorder
//! reads the lists: the counts serve the summary). The host waits for a batch, launches the
//! next into the other half (never past [`RunHorizon`]), and hands the first batch's steps
//! to the populations' [`Spikes`] one by one, where the CPU's recording systems take them.
//! Where a state recorder samples, batches are one step long and the recorded columns come
//! back into [`NeuronState`] after their step.
//!
//! Each batch's graph times its first step phase by phase with event nodes, and events
//! around the graph time the whole batch: [`DevicePhaseTimes`] keeps the means.
//! `MYELIN_CUDA_GRAPH=0` runs the batches launch by launch; `MYELIN_CUDA_BATCH=n` sets the
//! batch length.
//!
//! The device's `deliver_static` adds with atomics, so spike trains may drift from the CPU's
//! by float summation order (the connectivity and the input are the same, see DESIGN.md).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use cudarc::driver::sys::{
    CUdevice_attribute, CUevent_flags, CUevent_record_flags, CUgraphInstantiate_flags,
    CUstreamCaptureMode, CUstreamCaptureStatus,
};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaGraph, CudaModule, CudaSlice, CudaStream, DevicePtr,
    DeviceRepr, DriverError, LaunchArgs, LaunchConfig, PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use myelin_components::{
    Connectivity, DcInput, ExternalCurrent, NeuronState, PlasticityState, PoissonInput, Projection,
    SpikeRecorder, Spikes, StableId, StateRecorder, SynapticInput, WeightRecorder,
};
use myelin_engine::{
    ActiveBackend, Backend, BackendError, DevicePhaseTimes, KernelSource, Plasticity, RunHorizon,
    RunSeed, SimClock, SimStep, SimSystems, cuda,
};
use rayon::prelude::*;

use crate::cuda_tables::{
    self, DeliveryProjection, FlatCsr, FlatPlastic, NeuronPopulation, PlasticProjection,
    PoissonSource,
};
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
/// Steps per batch: the device runs a batch of steps as one CUDA graph, and their spike
/// lists come back in one transfer. Batches start at multiples of it (and stop at the
/// run's horizon), so the session's chunks of steps are whole batches. One step per batch
/// where a state recorder samples, whose columns come back after their step.
/// `MYELIN_CUDA_BATCH` sets another.
const BATCH: u32 = 50;
/// The most list entries a half of the record holds (it holds every neuron of every step
/// of a batch): larger networks run shorter batches.
const RECORD_ENTRIES: usize = 1 << 25;
/// Spikes of a batch copied back with its offsets in the batch's one transfer; more take a
/// second.
const LIST_CHUNK: usize = 16384;
/// Without graphs, every this many steps one step is timed phase by phase, launch by
/// launch (with graphs, each graph times its first step).
const PHASE_SAMPLE: u64 = 2000;
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

/// Stamps a target neuron's spike history holds on the device (at most the steps of two
/// catch-up periods and the longest delay, which is all the CPU keeps): a neuron firing
/// more often than 256 times a second for two seconds overflows it, and the run stops with
/// an error naming the projection.
const HISTORY_STAMPS: u64 = 512;

/// The plastic projections (STDP, plasticity/stdp.cu): their table, the kernels of a step
/// in launch order, and one status word per projection (bit 0: a history overflowed).
struct PlasticLaunch {
    table: CudaSlice<u64>,
    rows: u32,
    names: Vec<String>,
    status: CudaSlice<u32>,
    deliver: CudaFunction,
    after_spikes: CudaFunction,
    record_post: CudaFunction,
    catch_up: CudaFunction,
    catch_up_done: CudaFunction,
    /// Threads the per-neuron kernels need: the most targets or sources of a projection.
    widest: u32,
    /// Each projection's entity and its weights on the device (block after block, as
    /// `FlatCsr`), for the weight recorders.
    weights: Vec<(Entity, CudaSlice<f32>)>,
}

/// A weight recorder of a plastic projection: the projection's weights come back into its
/// `Connectivity` at the end of each step it samples.
struct Weighed {
    plastic: usize,
    interval: u64,
}

/// CUDA events between the phases of a sampled step and around a batch's graph (one set
/// per half of the record), and the sums of their intervals.
struct PhaseEvents {
    marks: [[CudaEvent; 5]; 2],
    around: [[CudaEvent; 2]; 2],
    sums_ms: [f64; 4],
    sampled: u64,
    /// Device time of the batches launched as graphs, and their steps.
    graph_ms: f64,
    graph_sampled: u64,
}

/// A batch of steps launched on the device: its half of the record, its first step, its
/// steps, whether one of its steps was timed phase by phase, whether it ran as a graph.
#[derive(Clone, Copy, Debug)]
struct Batch {
    half: usize,
    first: u64,
    len: u32,
    timed: bool,
    graph: bool,
}

/// The batch whose steps the host is handing out, taken out of its landing once: every
/// step's offsets (`n_pops + 1` each) and the batch's spike list (empty where no spike
/// recorder reads it). The vectors keep their capacity from batch to batch.
#[derive(Default)]
struct Handed {
    batch: Option<Batch>,
    offsets: Vec<u32>,
    list: Vec<u32>,
}

/// The network on the device, and the kernels that step it.
pub struct DeviceNet {
    stream: Arc<CudaStream>,
    _modules: Vec<Arc<CudaModule>>,
    device: String,
    clock: CudaSlice<u64>,
    bitmap: CudaSlice<u32>,
    pop_word: CudaSlice<u32>,
    /// Per half: a batch's offsets (`batch` rows of one per population and the end), then
    /// its steps' spike lists one after another (compact_spikes).
    records: [CudaSlice<u32>; 2],
    /// Per half: the head of the record copied back (page-locked).
    landings: [PinnedHostSlice<u32>; 2],
    /// Per half: recorded on the stream after the batch's copy back.
    done: [CudaEvent; 2],
    /// Per half: a whole batch as a CUDA graph.
    graphs: [Option<CudaGraph>; 2],
    /// Steps per batch.
    batch: u32,
    /// Whether the spike lists come back (a spike recorder reads them), or only the counts.
    lists: bool,
    /// The half the next batch goes to.
    next_half: usize,
    /// Launched and not yet handed out, oldest first (two at most).
    in_flight: VecDeque<Batch>,
    current: Handed,
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
    plastic: Option<PlasticLaunch>,
    /// Why the run cannot go on, found after a batch (a spike history overflowed).
    failure: Option<String>,
    /// The weight recorders of plastic projections.
    weighed: Vec<Weighed>,
    /// Blocks of `stdp_deliver` and `stdp_catch_up` per plastic projection.
    plastic_blocks: u32,
    /// The buffers the tables point into (`Upload::keep`), freed with the network.
    _kept: Vec<Box<dyn Any>>,
    seed: u64,
    phases: PhaseEvents,
    /// Seconds the upload took, of which compiling and loading the kernels, and the bytes
    /// it copied.
    upload_s: f64,
    compile_s: f64,
    upload_bytes: usize,
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

/// Records `event` on `stream`; while the stream is captured into a graph, as an event
/// node of the graph (an external record), so each launch of the graph records it.
fn mark(event: &CudaEvent, stream: &CudaStream) -> Result<(), DriverError> {
    let mut status = CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE;
    #[expect(
        unsafe_code,
        reason = "cudarc has no safe call for event nodes in a captured graph"
    )]
    // SAFETY: the stream and the event are live handles of the same context (the DeviceNet
    // owns both), and `status` is a valid place for the driver to write.
    unsafe {
        cudarc::driver::sys::cuStreamIsCapturing(stream.cu_stream(), &mut status).result()?;
        if status == CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_ACTIVE {
            cudarc::driver::sys::cuEventRecordWithFlags(
                event.cu_event(),
                stream.cu_stream(),
                CUevent_record_flags::CU_EVENT_RECORD_EXTERNAL as u32,
            )
            .result()
        } else {
            event.record(stream)
        }
    }
}

fn function(m: &Arc<CudaModule>, name: &str) -> Result<CudaFunction, BackendError> {
    m.load_function(name)
        .map_err(driver(&format!("finding kernel {name}")))
}

/// Copies to the device, counting the bytes, and keeps the buffers that tables point into.
struct Upload<'a> {
    stream: &'a Arc<CudaStream>,
    bytes: usize,
    kept: Vec<Box<dyn Any>>,
}

/// A projection's [`FlatCsr`] on the device: the addresses of its arrays (kept by the
/// [`Upload`]), and its weights, which the caller keeps or reads back.
struct DeviceCsr {
    row_base: u64,
    row_ptr: u64,
    syn_base: u64,
    target: u64,
    delay: u64,
    weight: CudaSlice<f32>,
}

impl Upload<'_> {
    fn copy<T: DeviceRepr>(&mut self, v: &[T], what: &str) -> Result<CudaSlice<T>, BackendError> {
        self.bytes += std::mem::size_of_val(v);
        self.stream
            .clone_htod(v)
            .map_err(driver(&format!("copying {what} to the device")))
    }

    /// Keeps `s` with the network; its device address.
    fn hold<T: 'static>(&mut self, s: CudaSlice<T>) -> u64 {
        let a = addr(&s, self.stream);
        self.kept.push(Box::new(s));
        a
    }

    /// Copies `v` for a table to point into and keeps it with the network; its device
    /// address, or 0 (a null pointer, which no kernel reads) for an empty `v`.
    fn keep<T: DeviceRepr + 'static>(&mut self, v: &[T], what: &str) -> Result<u64, BackendError> {
        if v.is_empty() {
            return Ok(0);
        }
        let s = self.copy(v, what)?;
        Ok(self.hold(s))
    }

    /// A projection's CSR on the device.
    fn csr(&mut self, f: &FlatCsr) -> Result<DeviceCsr, BackendError> {
        Ok(DeviceCsr {
            row_base: self.keep(&f.row_base, "connectivity")?,
            row_ptr: self.keep(&f.row_ptr, "connectivity")?,
            syn_base: self.keep(&f.syn_base, "connectivity")?,
            target: self.keep(&f.target, "connectivity")?,
            delay: self.keep(&f.delay, "connectivity")?,
            weight: self.copy(&f.weight, "weights")?,
        })
    }
}

/// Thread blocks per projection of a launch over `n` projections with a warp per row:
/// about [`DELIVERY_BLOCKS_PER_SM`] per multiprocessor in all (one wave), at most
/// [`DELIVERY_BLOCKS`] each.
fn blocks_per_projection(sms: i32, n: u32) -> u32 {
    (DELIVERY_BLOCKS_PER_SM * sms.max(1) as u32 / n.max(1)).clamp(1, DELIVERY_BLOCKS)
}

/// The device address of `s`.
fn addr<T>(s: &CudaSlice<T>, stream: &CudaStream) -> u64 {
    s.device_ptr(stream).0
}

/// Builds the [`DeviceNet`] of the network in `world` (built on the CPU) on device 0 and
/// keeps it in the world for [`device_step`]. Returns the bytes uploaded.
pub fn upload(world: &mut World) -> Result<usize, BackendError> {
    let started = Instant::now();
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
        kept: Vec::new(),
    };

    // Populations, in stable order; each owns whole words of one spike bitmap.
    let mut models = DeviceModels::populations(world);
    models.sort_by_key(|(e, ..)| world.get::<StableId>(*e).map_or(u32::MAX, |s| s.0));

    // Every kernel source compiled at once (NVRTC runs on several threads), then loaded.
    let mut sources = vec![
        crate::inputs::CUDA_KERNEL,
        crate::recording::CUDA_KERNEL,
        crate::delivery::CUDA_KERNEL,
        crate::plasticity::stdp::CUDA_KERNEL,
    ];
    for (_, name, kernel, _) in &models {
        let Some(k) = kernel else {
            return Err(BackendError::Unsupported(format!(
                "neuron model {name} has no CUDA kernel"
            )));
        };
        if !sources.contains(k) {
            sources.push(*k);
        }
    }
    let ptx = sources
        .par_iter()
        .map(|s| cuda::compile(s, ARCH))
        .collect::<Result<Vec<_>, _>>()?;
    let mut modules = Vec::new();
    for (source, ptx) in sources.iter().zip(ptx) {
        modules.push(
            ctx.load_module(Ptx::from_src(ptx))
                .map_err(driver(&format!("loading the kernels of {}", source.file)))?,
        );
    }
    let compile_s = started.elapsed().as_secs_f64();
    let module_of = |k: &KernelSource| &modules[sources.iter().position(|s| s == k).unwrap()];
    let (inputs, compact, deliver) = (&modules[0], &modules[1], &modules[2]);
    let (poisson_fn, dc_fn) = (
        function(inputs, "poisson_input")?,
        function(inputs, "dc_input")?,
    );
    let (compact_fn, advance_fn) = (
        function(compact, "compact_spikes")?,
        function(compact, "advance_clock")?,
    );
    let deliver_fn = function(deliver, "deliver_static")?;

    let sizes: Vec<u32> = models
        .iter()
        .map(|(e, ..)| world.get::<SynapticInput>(*e).map_or(0, |i| i.len() as u32))
        .collect();
    let word_starts = cuda_tables::bitmap_words(&sizes);
    let mut pops = Vec::new();
    for ((entity, _, _, consts), &word) in models.iter().zip(&word_starts) {
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
        update_launches.push(TableLaunch {
            function: function(module_of(&source), source.entries[0])?,
            table: up.copy(&table, "the population table")?,
            rows,
            blocks,
        });
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
    // Their CSRs are laid end to end on several threads, then copied one by one.
    let mut q = world.query::<(
        Entity,
        &Projection,
        &Connectivity,
        Option<&PlasticityState>,
        Option<&Plasticity>,
    )>();
    let mut found = Vec::new();
    let mut learning = Vec::new();
    for (entity, j, c, state, rule) in q.iter(world) {
        let (Some(source), Some(target)) = (index(j.source), index(j.target)) else {
            continue;
        };
        match (state, rule) {
            (Some(state), Some(rule)) => {
                let device =
                    crate::plasticity::device_rule_of(rule.0.as_ref()).ok_or_else(|| {
                        BackendError::Unsupported(format!(
                            "projection {} learns with {}, which has no device kernel",
                            j.name, state.rule
                        ))
                    })?;
                learning.push((entity, j.name.clone(), source, target, c, state, device));
            }
            _ if !c.is_empty() => found.push((source, target, c)),
            _ => {}
        }
    }
    let flat: Vec<FlatCsr> = found.par_iter().map(|(.., c)| FlatCsr::of(c)).collect();
    let mut proj_table = Vec::new();
    let mut n_proj = 0u32;
    for ((source, target, c), f) in found.into_iter().zip(flat) {
        let csr = up.csr(&f)?;
        let row = DeliveryProjection {
            row_base: csr.row_base,
            row_ptr: csr.row_ptr,
            syn_base: csr.syn_base,
            target: csr.target,
            weight: up.hold(csr.weight),
            delay: csr.delay,
            ring: addr(&pops[target].ring, &stream),
            n_blocks: c.n_blocks() as u32,
            source: source as u32,
            source_word: pops[source].word,
            slots: pops[target].slots,
        };
        proj_table.extend(row.words());
        n_proj += 1;
    }
    let sms = ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .map_err(driver("reading the number of multiprocessors"))?;

    // Plastic projections: the same CSR, the rule's state laid out as stdp.cu reads it.
    let dt = world.resource::<SimClock>().dt;
    let period = world
        .get_resource::<crate::plasticity::PlasticitySettings>()
        .map_or(crate::plasticity::CATCH_UP_MS, |s| s.catch_up_ms);
    let period = ((period / dt).round() as u64).max(1);
    let mut plastic_table = Vec::new();
    let mut names = Vec::new();
    let mut widest = 1u32;
    let plastic_flat: Vec<FlatCsr> = learning
        .par_iter()
        .map(|(_, _, _, _, c, ..)| FlatCsr::of(c))
        .collect();
    let status = alloc(learning.len(), "the plasticity status")?;
    let mut weights = Vec::new();
    for ((entity, name, source, target, c, state, rule), f) in
        learning.into_iter().zip(plastic_flat)
    {
        let hist_cap = HISTORY_STAMPS.min(2 * period + u64::from(c.max_delay) + 1) as usize;
        let fp = FlatPlastic::of(state, hist_cap).ok_or_else(|| {
            BackendError::Unsupported(format!(
                "projection {name}: a spike history holds more than the device's {hist_cap} stamps"
            ))
        })?;
        let consts = rule.constants(state.post.decay);
        let csr = up.csr(&f)?;
        let weight = addr(&csr.weight, &stream);
        weights.push((entity, csr.weight));
        let row = PlasticProjection {
            row_base: csr.row_base,
            row_ptr: csr.row_ptr,
            syn_base: csr.syn_base,
            target: csr.target,
            weight,
            delay: csr.delay,
            syn_state: up.keep(&fp.syn_state, "per-synapse plasticity state")?,
            t_last: up.keep(&fp.t_last, "per-source plasticity state")?,
            paired_until: up.keep(&fp.paired_until, "per-source plasticity state")?,
            kplus: up.keep(&fp.kplus, "presynaptic traces")?,
            history: up.keep(&fp.history, "spike histories")?,
            hist_head: up.keep(&fp.hist_head, "spike histories")?,
            hist_len: up.keep(&fp.hist_len, "spike histories")?,
            trace: up.keep(&fp.trace, "postsynaptic traces")?,
            c: up.keep(&consts, "the rule's constants")?,
            decay: up.keep(&rule.decay, "the rule's decay table")?,
            ring: addr(&pops[target].ring, &stream),
            status: addr(&status, &stream) + 4 * names.len() as u64,
            catch_up_period: period,
            n_decay: rule.decay.len() as u32,
            pairing: rule.pairing,
            dependence: rule.dependence,
            n_blocks: c.n_blocks() as u32,
            source: source as u32,
            source_word: pops[source].word,
            target_pop: target as u32,
            target_word: pops[target].word,
            n_source: sizes[source],
            n_target: sizes[target],
            slots: pops[target].slots,
            tslots: state.post.slots as u32,
            hist_cap: hist_cap as u32,
            max_delay: u32::from(c.max_delay),
        };
        widest = widest.max(sizes[source]).max(sizes[target]);
        plastic_table.extend(row.words());
        names.push(name);
    }
    let plastic = if names.is_empty() {
        None
    } else {
        let m = module_of(&crate::plasticity::stdp::CUDA_KERNEL);
        Some(PlasticLaunch {
            table: up.copy(&plastic_table, "the plastic projection table")?,
            rows: names.len() as u32,
            names,
            status,
            deliver: function(m, "stdp_deliver")?,
            after_spikes: function(m, "stdp_after_spikes")?,
            record_post: function(m, "stdp_record_post")?,
            catch_up: function(m, "stdp_catch_up")?,
            catch_up_done: function(m, "stdp_catch_up_done")?,
            widest,
            weights,
        })
    };
    let mut q = world.query::<&WeightRecorder>();
    let weighed: Vec<Weighed> = q
        .iter(world)
        .filter_map(|r| {
            let p = plastic.as_ref()?;
            Some(Weighed {
                plastic: p.weights.iter().position(|(e, _)| *e == r.projection)?,
                interval: r.interval.max(1),
            })
        })
        .collect();
    let plastic_blocks = blocks_per_projection(sms, plastic.as_ref().map_or(1, |p| p.rows));
    let deliver_blocks = blocks_per_projection(sms, n_proj);
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
        // No thresholds: PTRS (the kernel reads them only when there are some).
        let thresholds = up.keep(&p.thresholds, "Poisson thresholds")?;
        let (neurons, n) = match &p.neurons {
            Some(v) => (up.keep(v, "an input's neurons")?, v.len() as u32),
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
            thresholds,
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

    // The batch's length, and the record of two batches (one handed out, one running).
    let neurons: usize = sizes.iter().map(|&n| n as usize).sum::<usize>().max(1);
    let batch = match std::env::var("MYELIN_CUDA_BATCH") {
        Ok(v) => v.parse::<u32>().ok().filter(|&b| b > 0).ok_or_else(|| {
            BackendError::Unsupported(format!(
                "MYELIN_CUDA_BATCH={v}: not a number of steps (1 or more)"
            ))
        })?,
        Err(_) => BATCH,
    };
    let batch = if sampled.is_empty() && weighed.is_empty() {
        batch.min((RECORD_ENTRIES / neurons).max(1) as u32)
    } else {
        1
    };
    let header = batch as usize * (pops.len() + 1);
    let list = batch as usize * neurons;
    let records = [
        alloc(header + list, "the spike record")?,
        alloc(header + list, "the spike record")?,
    ];
    // Without a spike recorder only the offsets come back (the spike counts of the summary):
    // the lists stay on the device.
    let lists = world.query::<&SpikeRecorder>().iter(world).next().is_some();
    let head = header + if lists { list.min(LIST_CHUNK) } else { 0 };
    let pinned = || {
        #[expect(
            unsafe_code,
            reason = "page-locked host memory for the copy of a batch's spikes"
        )]
        // SAFETY: the memory starts unset; it is read only after the copy of a batch has
        // filled all `head` entries of it and the batch's `done` event has passed.
        unsafe { ctx.alloc_pinned_with_flags::<u32>(head, 0) }
            .map_err(driver("allocating page-locked memory for the spikes"))
    };
    let landings = [pinned()?, pinned()?];
    let event = || {
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(driver("creating events"))
    };
    let marks = [
        [event()?, event()?, event()?, event()?, event()?],
        [event()?, event()?, event()?, event()?, event()?],
    ];
    let around = [[event()?, event()?], [event()?, event()?]];
    let done = [event()?, event()?];
    stream
        .synchronize()
        .map_err(driver("finishing the upload"))?;
    let seed = world.get_resource::<RunSeed>().map_or(0, |s| s.0);
    let (up_bytes, kept) = (up.bytes, up.kept);
    let mut net = DeviceNet {
        stream,
        _modules: modules,
        device: info.name,
        clock,
        bitmap,
        pop_word,
        records,
        landings,
        done,
        graphs: [None, None],
        batch,
        lists,
        next_half: 0,
        in_flight: VecDeque::new(),
        current: Handed::default(),
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
        plastic,
        failure: None,
        weighed,
        plastic_blocks,
        _kept: kept,
        seed,
        phases: PhaseEvents {
            marks,
            around,
            sums_ms: [0.0; 4],
            sampled: 0,
            graph_ms: 0.0,
            graph_sampled: 0,
        },
        upload_s: 0.0,
        compile_s,
        upload_bytes: up_bytes,
    };
    if std::env::var("MYELIN_CUDA_GRAPH").as_deref() != Ok("0") {
        for half in 0..2 {
            net.graphs[half] = Some(net.capture(half).map_err(driver(
                "capturing a batch of steps as a CUDA graph (MYELIN_CUDA_GRAPH=0 runs without one)",
            ))?);
        }
    }
    net.upload_s = started.elapsed().as_secs_f64();
    world.insert_resource(net.phase_times());
    world.insert_non_send(net);
    Ok(up_bytes)
}

impl DeviceNet {
    /// The device address of entry `i` of half `half`'s record.
    fn record_at(&self, half: usize, i: usize) -> u64 {
        addr(&self.records[half], &self.stream) + 4 * i as u64
    }

    /// Entries of a record before its list: the offsets of every step of a batch.
    fn header(&self) -> usize {
        self.batch as usize * (self.pops.len() + 1)
    }

    /// Queues the launches of step `k` of the batch in half `half` (the step `*clock + k`);
    /// with `timed`, records the phase events between them (as event nodes while a graph
    /// is captured).
    fn enqueue_step(&mut self, half: usize, k: u32, timed: bool) -> Result<(), DriverError> {
        let s = self.stream.clone();
        if timed {
            mark(&self.phases.marks[half][0], &s)?;
        }
        // Inputs, in scene order per kind (DC currents, then Poisson events), as the CPU.
        for p in self.pops.iter_mut().filter(|p| p.driven) {
            s.memset_zeros(&mut p.current)?;
        }
        let this = &*self;
        let mark = |i: usize| {
            if timed {
                mark(&this.phases.marks[half][i], &s)
            } else {
                Ok(())
            }
        };
        let null = 0u64;
        for d in &this.dcs {
            let mut a = s.launch_builder(&this.dc_fn);
            a.arg(&d.amplitude).arg(&this.pops[d.pop].current);
            match &d.neurons {
                Some(v) => a.arg(v),
                None => a.arg(&null),
            };
            a.arg(&d.n)
                .arg(&d.start)
                .arg(&d.stop)
                .arg(&this.clock)
                .arg(&k);
            launch(a, flat_grid(d.n.div_ceil(THREADS)))?;
        }
        for l in &this.poisson {
            let mut a = s.launch_builder(&l.function);
            a.arg(&this.seed)
                .arg(&l.table)
                .arg(&l.rows)
                .arg(&this.clock)
                .arg(&k);
            launch(a, flat_grid(l.blocks))?;
        }
        mark(1)?;
        for l in &this.updates {
            let mut a = s.launch_builder(&l.function);
            a.arg(&l.table).arg(&l.rows).arg(&this.clock).arg(&k);
            launch(a, flat_grid(l.blocks))?;
        }
        mark(2)?;
        // The step's offsets are row k of the record's header; its spikes follow the
        // previous step's in the list.
        let n_pops = this.pops.len() as u32;
        let row = |k: u32| this.record_at(half, k as usize * (n_pops as usize + 1));
        let first = row(k);
        let prev_end = if k == 0 {
            0
        } else {
            row(k - 1) + 4 * u64::from(n_pops)
        };
        let list = this.record_at(half, this.header());
        let mut a = s.launch_builder(&this.compact_fn);
        a.arg(&this.bitmap)
            .arg(&this.pop_word)
            .arg(&n_pops)
            .arg(&prev_end)
            .arg(&first)
            .arg(&list);
        launch(
            a,
            LaunchConfig {
                grid_dim: (1, 1, 1),
                block_dim: (COMPACT_THREADS, 1, 1),
                shared_mem_bytes: 0,
            },
        )?;
        mark(3)?;
        if let Some((table, n_proj)) = &this.projections {
            let mut a = s.launch_builder(&this.deliver_fn);
            a.arg(&first).arg(&list).arg(table).arg(&this.clock).arg(&k);
            launch(
                a,
                LaunchConfig {
                    grid_dim: (this.deliver_blocks, *n_proj, 1),
                    block_dim: (THREADS, 1, 1),
                    shared_mem_bytes: 0,
                },
            )?;
        }
        // Plastic projections after the static ones, in the CPU's order: delivery with the
        // weight updates, the per-source update, the postsynaptic spikes' histories and
        // traces, and the catch-up (whose kernels return at once on other steps).
        if let Some(p) = &this.plastic {
            let grid = |blocks: u32| LaunchConfig {
                grid_dim: (blocks.max(1), p.rows, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let per_neuron = grid(p.widest.div_ceil(THREADS));
            for (f, cfg) in [
                (&p.deliver, grid(this.plastic_blocks)),
                (&p.after_spikes, grid(1)),
                (&p.record_post, per_neuron),
            ] {
                let mut a = s.launch_builder(f);
                a.arg(&first)
                    .arg(&list)
                    .arg(&p.table)
                    .arg(&this.clock)
                    .arg(&k);
                launch(a, cfg)?;
            }
            for (f, cfg) in [
                (&p.catch_up, grid(this.plastic_blocks)),
                (&p.catch_up_done, per_neuron),
            ] {
                let mut a = s.launch_builder(f);
                a.arg(&p.table).arg(&this.clock).arg(&k);
                launch(a, cfg)?;
            }
        }
        mark(4)
    }

    /// Queues a batch of `len` steps in half `half` and moves the device's clock past them;
    /// step `timed` of it (if any) is timed phase by phase.
    fn enqueue_batch(
        &mut self,
        half: usize,
        len: u32,
        timed: Option<u32>,
    ) -> Result<(), DriverError> {
        for k in 0..len {
            self.enqueue_step(half, k, timed == Some(k))?;
        }
        let mut a = self.stream.launch_builder(&self.advance_fn);
        a.arg(&self.clock).arg(&len);
        launch(a, LaunchConfig::for_num_elems(1))
    }

    /// A whole batch in half `half`, captured once as a CUDA graph.
    fn capture(&mut self, half: usize) -> Result<CudaGraph, DriverError> {
        let s = self.stream.clone();
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
        // The first step's phases are timed inside the graph, on every launch of it.
        let queued = self.enqueue_batch(half, self.batch, Some(0));
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
            graph: self.graphs[0].is_some(),
            sampled_steps: self.phases.sampled,
            per_step_s: PHASES
                .iter()
                .zip(self.phases.sums_ms)
                .map(|(&name, ms)| (name, ms / n / 1e3))
                .collect(),
            graph_step_s: (self.phases.graph_sampled > 0)
                .then(|| self.phases.graph_ms / self.phases.graph_sampled as f64 / 1e3),
            upload_s: self.upload_s,
            compile_s: self.compile_s,
            upload_bytes: self.upload_bytes as u64,
        }
    }

    /// Launches the batch of `len` steps from `first` (the device's clock) into the next
    /// half, and its copy back.
    fn launch_batch(&mut self, first: u64, len: u32) -> Result<(), DriverError> {
        let half = self.next_half;
        self.next_half ^= 1;
        let graph = len == self.batch && self.graphs[half].is_some();
        let timed;
        if let (true, Some(g)) = (graph, &self.graphs[half]) {
            // The graph times its first step's phases itself.
            timed = true;
            self.phases.around[half][0].record(&self.stream)?;
            g.launch()?;
            self.phases.around[half][1].record(&self.stream)?;
        } else {
            // Without graphs, a step now and then is timed launch by launch (the times then
            // include the host's launches).
            let step = (0..len)
                .find(|&k| (first + u64::from(k)).is_multiple_of(PHASE_SAMPLE))
                .filter(|_| self.graphs[half].is_none());
            timed = step.is_some();
            self.enqueue_batch(half, len, step)?;
        }
        let head = self.landings[half].len();
        self.stream
            .memcpy_dtoh(&self.records[half].slice(0..head), &mut self.landings[half])?;
        self.done[half].record(&self.stream)?;
        self.in_flight.push_back(Batch {
            half,
            first,
            len,
            timed,
            graph,
        });
        Ok(())
    }

    /// The steps of the batch from `first`: to the next multiple of the batch length, and
    /// not past the run's horizon.
    fn batch_len(&self, first: u64, horizon: u64) -> u32 {
        let to_boundary = u64::from(self.batch) - first % u64::from(self.batch);
        to_boundary.min(horizon.saturating_sub(first)).max(1) as u32
    }

    /// Waits for the oldest batch in flight (it starts at `step`), takes its spikes and
    /// timings, brings back the state its step's recorders sample (batches of one step),
    /// and launches the next batch if the run goes on past it.
    fn take_batch(
        &mut self,
        world: &mut World,
        step: u64,
        horizon: u64,
    ) -> Result<(), DriverError> {
        self.current.batch = None;
        if self.in_flight.is_empty() {
            self.launch_batch(step, self.batch_len(step, horizon))?;
        }
        let b = self.in_flight.pop_front().expect("a batch was launched");
        assert_eq!(
            b.first, step,
            "the device's batches follow the host's steps (a step was run twice or skipped)"
        );
        self.done[b.half].synchronize()?;
        if let Some(p) = &self.plastic {
            let status = self.stream.clone_dtoh(&p.status)?;
            if let Some(i) = status.iter().position(|&s| s != 0) {
                self.failure = Some(format!(
                    "projection {}: a target neuron's spike history outgrew the device's \
                     {HISTORY_STAMPS} stamps (more spikes than that within two catch-up \
                     periods); run this scene with --backend cpu",
                    p.names[i]
                ));
            }
        }
        let rows = b.len as usize * (self.pops.len() + 1);
        let header = self.header();
        let got = self.landings[b.half].as_slice()?;
        let c = &mut self.current;
        c.offsets.clear();
        c.offsets.extend_from_slice(&got[..rows]);
        c.list.clear();
        if self.lists {
            let total = c.offsets[rows - 1] as usize;
            let in_landing = total.min(got.len() - header);
            c.list.extend_from_slice(&got[header..header + in_landing]);
            if total > in_landing {
                let rest = self.records[b.half].slice(header + in_landing..header + total);
                c.list.extend(self.stream.clone_dtoh(&rest)?);
            }
        }
        if b.timed {
            let m = &self.phases.marks[b.half];
            for p in 0..PHASES.len() {
                self.phases.sums_ms[p] += f64::from(m[p].elapsed_ms(&m[p + 1])?);
            }
            self.phases.sampled += 1;
        }
        if b.graph {
            let m = &self.phases.around[b.half];
            self.phases.graph_ms += f64::from(m[0].elapsed_ms(&m[1])?);
            self.phases.graph_sampled += u64::from(b.len);
        }
        if b.timed || b.graph {
            world.insert_resource(self.phase_times());
        }
        // The columns the state recorders sample at the end of this step come back into
        // the populations' NeuronState, where the CPU's record_state reads them (batches are
        // one step long where there are any, and the next is launched only after).
        let mut copied = false;
        for r in self
            .sampled
            .iter()
            .filter(|r| (step + 1).is_multiple_of(r.interval))
        {
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
        // Likewise the weights of the plastic projections that weight recorders sample, into
        // their Connectivity, where the CPU's record_weights reads them.
        for r in self
            .weighed
            .iter()
            .filter(|r| (step + 1).is_multiple_of(r.interval))
        {
            let Some(p) = &self.plastic else { break };
            let (entity, device) = &p.weights[r.plastic];
            let flat = self.stream.clone_dtoh(device)?;
            if let Some(mut conn) = world.get_mut::<Connectivity>(*entity) {
                let mut at = 0;
                for block in conn.blocks_mut() {
                    for k in 0..block.len() {
                        block.set_weight(k, flat[at + k]);
                    }
                    at += block.len();
                }
            }
        }
        if copied {
            self.stream.synchronize()?;
        }
        self.current.batch = Some(b);
        let next = b.first + u64::from(b.len);
        if next < horizon {
            self.launch_batch(next, self.batch_len(next, horizon))?;
        }
        Ok(())
    }

    /// One step on the device: the batch holding it is run (or was run ahead) and its
    /// spike lists come back into the populations' [`Spikes`].
    fn step(&mut self, world: &mut World) -> Result<(), DriverError> {
        let step = world.resource::<SimClock>().step;
        let horizon = world
            .get_resource::<RunHorizon>()
            .map_or(step + 1, |h| h.0)
            .max(step + 1);
        let holds = |b: &Batch| step < b.first + u64::from(b.len);
        if !self.current.batch.as_ref().is_some_and(holds) {
            self.take_batch(world, step, horizon)?;
        }
        let c = &self.current;
        let first = c.batch.expect("a batch is handed out").first;
        let n = self.pops.len() + 1;
        let k = (step - first) as usize;
        let offsets = &c.offsets[k * n..(k + 1) * n];
        for (p, pop) in self.pops.iter().enumerate() {
            let (a, b) = (offsets[p] as usize, offsets[p + 1] as usize);
            if let Some(mut sp) = world.get_mut::<Spikes>(pop.entity) {
                let bit0 = pop.word * 32;
                sp.total += (b - a) as u64;
                sp.current.clear();
                if self.lists {
                    sp.current.extend(c.list[a..b].iter().map(|&x| x - bit0));
                }
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
    if let Some(why) = net.failure.take() {
        panic!("{why}");
    }
    world.insert_non_send(net);
}
