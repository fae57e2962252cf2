//! Running a scene from a file to an output folder: what `myelin run` does, callable from
//! programs (and examples that add their own plugins).

mod ranks;
mod resume;
mod session;
pub mod sweep;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use myelin_engine::{Backend, BackendError, BuildError, Simulation};
use myelin_io::checkpoint::CheckpointError;
use myelin_io::{IoError, LoadedScene, SceneError, load_scene};
use serde::Serialize;

pub use ranks::{RankSummary, fail, is_root, mpi_init};
pub use resume::{ResumeOptions, find_checkpoint, resume_run};
use session::{CheckpointPolicy, Session};

/// Files a run writes into its output folder; a folder holding any of them holds a
/// previous run's results.
pub const OUTPUT_FILES: [&str; 3] = ["recordings.h5", "summary.json", "scene.ron"];

/// How to run a scene.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output folder (default `out/SCENE_STEM`).
    pub out: Option<PathBuf>,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Seed overriding the scene's.
    pub seed: Option<u64>,
    /// Simulated time [ms] overriding the scene's.
    pub duration: Option<f64>,
    /// Replace a previous run's results in the output folder.
    pub overwrite: bool,
    /// Show a progress bar on standard error (hidden when it is not a terminal).
    pub progress: bool,
    /// Simulated time between checkpoints [ms] (none when `None`); a checkpoint is also
    /// written at the end of the run.
    pub checkpoint_every: Option<f64>,
    /// Folder of the checkpoints (default `OUT/checkpoints`).
    pub checkpoint_dir: Option<PathBuf>,
    /// Number of checkpoints kept (the newest; default [`DEFAULT_KEEP`]).
    pub keep: usize,
    /// Spike exchange between MPI ranks (used only with several ranks).
    pub comm: myelin_distributed::CommMode,
    /// Where the kernels run (the CPU, or a GPU with the `cuda` feature).
    pub backend: Backend,
}

/// Checkpoints kept by default.
pub const DEFAULT_KEEP: usize = 2;

/// Name of the checkpoint folder inside the output folder.
pub const CHECKPOINT_SUBDIR: &str = "checkpoints";

/// Name of the lock file a running simulation holds in its output folder.
pub const LOCK_FILE: &str = ".myelin.lock";

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: None,
            threads: None,
            seed: None,
            duration: None,
            overwrite: false,
            progress: true,
            checkpoint_every: None,
            checkpoint_dir: None,
            keep: DEFAULT_KEEP,
            comm: myelin_distributed::CommMode::default(),
            backend: Backend::Cpu,
        }
    }
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scene file is unreadable or invalid.
    #[error("{0}")]
    Scene(#[from] SceneError),
    /// Building the network failed.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// Writing outputs failed.
    #[error("{0}")]
    Io(#[from] IoError),
    /// The output folder holds a previous run's results.
    #[error(
        "output folder {dir} already holds results of a previous run ({file}); choose another --out or pass --overwrite"
    )]
    OutputExists {
        /// The folder.
        dir: PathBuf,
        /// The file found there.
        file: String,
    },
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Fs {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An option is invalid.
    #[error("{0}")]
    Option(String),
    /// Writing or reading a checkpoint failed.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// A projection's warm start cannot be used.
    #[error("{}: projections[{index}] (\"{name}\"): warm start: {message}", scene.display())]
    WarmStart {
        /// The scene file.
        scene: PathBuf,
        /// Index of the projection in the scene.
        index: usize,
        /// Name of the projection.
        name: String,
        /// What is wrong, naming the checkpoint file and both sizes.
        message: String,
    },
    /// Another process is running a simulation into the same output folder.
    #[error(
        "output folder {} is in use by another myelin process (it holds {}); wait for it to end",
        dir.display(),
        dir.join(LOCK_FILE).display()
    )]
    InUse {
        /// The folder.
        dir: PathBuf,
    },
    /// The folder to write checkpoints to holds checkpoints of an earlier run.
    #[error(
        "checkpoint folder {} already holds checkpoints of an earlier run; continue it with `myelin resume {}`, or pass --overwrite to start over",
        dir.display(),
        dir.display()
    )]
    CheckpointsExist {
        /// The folder.
        dir: PathBuf,
    },
    /// A run could not be resumed (nothing was simulated).
    #[error("cannot resume from {}: {source}", from.display())]
    Resume {
        /// The checkpoint file or folder.
        from: PathBuf,
        /// Why.
        source: Box<RunError>,
    },
}

impl RunError {
    /// Whether the error happened while setting up a resume, before anything was simulated
    /// (a batch then starts the job over); not when another process holds the folder.
    pub fn is_resume_setup(&self) -> bool {
        matches!(self, Self::Resume { source, .. } if !matches!(**source, Self::InUse { .. }))
    }
}

/// Per population results.
#[derive(Clone, Debug, Serialize)]
pub struct PopulationSummary {
    /// Name.
    pub name: String,
    /// Neurons.
    pub neurons: usize,
    /// Spikes emitted during the run.
    pub spikes: u64,
    /// Mean rate [Hz].
    pub rate_hz: f64,
}

/// What a run did, as printed and written to `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Scene name.
    pub scene: String,
    /// Scene file.
    pub scene_file: String,
    /// SHA-256 of the scene file.
    pub scene_hash: String,
    /// Seed used.
    pub seed: u64,
    /// Time step [ms].
    pub dt_ms: f64,
    /// Simulated time [ms].
    pub duration_ms: f64,
    /// Worker threads.
    pub threads: usize,
    /// Neurons.
    pub neurons: usize,
    /// Synapses.
    pub synapses: usize,
    /// Bytes of connectivity.
    pub synapse_bytes: usize,
    /// Bytes of ring buffers.
    pub ring_bytes: usize,
    /// Bytes of the pending-arrival lists at the end of the run (their high-water mark:
    /// lists keep their capacity).
    pub pending_bytes: usize,
    /// Construction time [s]: total and its phases.
    pub construction_s: f64,
    /// Creating populations [s].
    pub create_s: f64,
    /// Drawing connectivity [s].
    pub connect_s: f64,
    /// Preparing buffers, inputs and recorders [s].
    pub prepare_s: f64,
    /// Simulation wall time [s].
    pub simulation_s: f64,
    /// Wall time per simulated time.
    pub real_time_factor: f64,
    /// Time per phase [s], in schedule order.
    pub phases_s: Vec<(String, f64)>,
    /// Per population results.
    pub populations: Vec<PopulationSummary>,
    /// Output folder.
    pub out_dir: String,
    /// Simulated time at which this process resumed the run from a checkpoint [ms]
    /// (`None` for a run from the start).
    pub resumed_from_ms: Option<f64>,
    /// Checkpoints written by this process.
    pub checkpoints_written: usize,
    /// Wall time spent writing them [s].
    pub checkpoint_s: f64,
    /// Size of the last one [bytes].
    pub checkpoint_bytes: u64,
    /// The last checkpoint written.
    pub last_checkpoint: Option<String>,
    /// Checkpoints passed over because they were unusable (file and reason), newest first.
    pub skipped_checkpoints: Vec<String>,
    /// MPI ranks that ran it (1: a single process).
    pub ranks: usize,
    /// Where the kernels ran (`cpu` or `cuda`).
    pub backend: String,
    /// Spike exchange between ranks (`collective` or `p2p`; absent on one process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Per rank: neurons, synapses, construction and simulation time, exchange timers
    /// (pack, wait, exchange, unpack, deliver); empty on one process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_rank: Vec<RankSummary>,
    /// On the GPU: the device and its time per step by phase (absent on the CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceSummary>,
}

/// Where a GPU run's steps spent their time on the device (CUDA events on every 100th
/// step, which runs launch by launch; the other steps run as one CUDA graph each).
#[derive(Clone, Debug, Serialize)]
pub struct DeviceSummary {
    /// The GPU's name.
    pub name: String,
    /// Whether the steps ran as CUDA graphs.
    pub graph: bool,
    /// Steps timed phase by phase.
    pub sampled_steps: u64,
    /// Mean device time per timed step of each phase [µs], in step order.
    pub phases_us_per_step: Vec<(String, f64)>,
    /// Mean device time of a whole step launched as its CUDA graph [µs] (absent without
    /// a graph).
    pub graph_step_us: Option<f64>,
    /// Seconds the network took to reach the device (counted in the construction time).
    pub upload_s: f64,
    /// Seconds of the upload spent compiling and loading the kernels.
    pub compile_s: f64,
    /// MiB the upload copied.
    pub upload_mib: f64,
}

impl RunSummary {
    /// The summary as the table `myelin run` prints.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scene          {} ({}), seed {}, dt {} ms, {} thread(s), {} backend",
            self.scene, self.scene_file, self.seed, self.dt_ms, self.threads, self.backend
        );
        let _ = writeln!(s, "neurons        {}", group(self.neurons as u64));
        let _ = writeln!(
            s,
            "synapses       {} ({:.1} MiB connectivity, {:.1} MiB ring buffers, {:.1} MiB pending arrivals)",
            group(self.synapses as u64),
            mib(self.synapse_bytes),
            mib(self.ring_bytes),
            mib(self.pending_bytes)
        );
        let _ = writeln!(
            s,
            "construction   {:.3} s (create {:.3} s, connect {:.3} s, prepare {:.3} s)",
            self.construction_s, self.create_s, self.connect_s, self.prepare_s
        );
        let _ = writeln!(
            s,
            "simulation     {:.3} s for {} ms simulated: real-time factor {:.3}",
            self.simulation_s,
            ms_text(self.duration_ms - self.resumed_from_ms.unwrap_or(0.0)),
            self.real_time_factor
        );
        let phases: Vec<String> = self
            .phases_s
            .iter()
            .filter(|(_, t)| *t > 0.0005)
            .map(|(n, t)| format!("{n} {t:.3} s"))
            .collect();
        let _ = writeln!(s, "phases         {}", phases.join(", "));
        if let Some(comm) = &self.comm {
            let t =
                |f: &dyn Fn(&RankSummary) -> f64| self.per_rank.iter().map(f).fold(0.0, f64::max);
            let _ = writeln!(
                s,
                "ranks          {} ({comm} exchange); slowest rank: pack {:.3} s, wait {:.3} s, exchange {:.3} s, unpack {:.3} s, deliver {:.3} s",
                self.ranks,
                t(&|r| r.timers.pack_s),
                t(&|r| r.timers.wait_s),
                t(&|r| r.timers.exchange_s),
                t(&|r| r.timers.unpack_s),
                t(&|r| r.timers.deliver_s)
            );
        }
        if let Some(d) = &self.device {
            let phases: Vec<String> = d
                .phases_us_per_step
                .iter()
                .map(|(n, t)| format!("{n} {t:.1} µs"))
                .collect();
            let _ = writeln!(
                s,
                "device         {}{}: per step {} (mean of {} timed steps){}",
                d.name,
                if d.graph { ", CUDA graph" } else { "" },
                phases.join(", "),
                d.sampled_steps,
                d.graph_step_us
                    .map(|g| format!("; a step as the graph {g:.1} µs"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "upload         {:.3} s of the construction (kernels compiled and loaded in {:.3} s, {:.1} MiB copied)",
                d.upload_s, d.compile_s, d.upload_mib
            );
        }
        let _ = writeln!(s, "output         {}", self.out_dir);
        if let Some(t) = self.resumed_from_ms {
            let _ = writeln!(s, "resumed        from the checkpoint at {} ms", ms_text(t));
        }
        if let Some(last) = &self.last_checkpoint {
            let _ = writeln!(
                s,
                "checkpoints    {} written in {:.3} s ({:.1} MiB each), last {last}",
                self.checkpoints_written,
                self.checkpoint_s,
                mib(self.checkpoint_bytes as usize)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>12} {:>10}",
            "population", "neurons", "spikes", "rate [Hz]"
        );
        for p in &self.populations {
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>12} {:>10.3}",
                p.name, p.neurons, p.spikes, p.rate_hz
            );
        }
        s
    }
}

/// A time in ms without floating-point noise (at most 6 decimals, trailing zeros cut).
fn ms_text(ms: f64) -> String {
    let s = format!("{ms:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A simulation with every built-in plugin and those `extend` adds.
pub fn simulation_with(dt: f64, extend: impl FnOnce(&mut Simulation)) -> Simulation {
    let mut sim = Simulation::new(dt);
    sim.add_plugins(myelin_systems::MyelinPlugins);
    extend(&mut sim);
    sim
}

/// Loads and validates a scene against the built-in models and those `extend` adds,
/// including its warm starts (each checkpoint's projection is read, verified and checked
/// against the scene's sizes).
///
/// A sweep file (see [`sweep`]) is checked too: every job scene it expands to is validated,
/// and the base scene is returned.
pub fn check_scene(
    path: &Path,
    extend: impl FnOnce(&mut Simulation),
) -> Result<LoadedScene, RunError> {
    let sim = simulation_with(0.1, extend);
    let loaded = if is_sweep_file(path) {
        let exp = sweep::load(path).map_err(RunError::Option)?;
        sweep::validate(&exp, sim.registry()).map_err(RunError::Option)?;
        load_scene(&exp.base, sim.registry())?
    } else {
        load_scene(path, sim.registry())?
    };
    resume::warm_starts(&loaded, &loaded.scene)?;
    Ok(loaded)
}

/// Whether the file at `path` is a sweep file (an unreadable file is not).
fn is_sweep_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| sweep::is_sweep(&t))
}

/// Refuses an output folder that holds a previous run's results (unless `overwrite`).
pub fn check_output_dir(dir: &Path, overwrite: bool) -> Result<(), RunError> {
    if overwrite {
        return Ok(());
    }
    for f in OUTPUT_FILES {
        if dir.join(f).exists() {
            return Err(RunError::OutputExists {
                dir: dir.to_path_buf(),
                file: f.to_string(),
            });
        }
    }
    Ok(())
}

/// Runs the scene at `path` with the built-in plugins and those `extend` adds: loads and
/// validates it, builds the network (taking warm-started projections from their
/// checkpoints), simulates with a progress bar, writes recordings to
/// `OUT/recordings.h5`, the summary to `OUT/summary.json` and a copy of the scene to
/// `OUT/scene.ron`, and, with `opts.checkpoint_every`, checkpoints along the way. Results
/// of an earlier run in `OUT` are refused unless `opts.overwrite`; they are replaced only
/// once the new run has finished.
pub fn run_scene(
    path: &Path,
    opts: &RunOptions,
    extend: impl Fn(&mut Simulation) + Sync,
) -> Result<RunSummary, RunError> {
    in_pool(opts.threads, |threads| {
        run_in_pool(path, opts, threads, &extend)
    })
}

/// Runs `f` in a rayon pool of `threads` threads (default: all cores).
fn in_pool<T>(
    threads: Option<usize>,
    f: impl FnOnce(usize) -> Result<T, RunError> + Send,
) -> Result<T, RunError>
where
    T: Send,
{
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(RunError::Option("--threads must be at least 1".into()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| RunError::Option(format!("cannot start {threads} threads: {e}")))?;
    pool.install(|| f(threads))
}

fn run_in_pool(
    path: &Path,
    opts: &RunOptions,
    threads: usize,
    extend: &(dyn Fn(&mut Simulation) + Sync),
) -> Result<RunSummary, RunError> {
    if is_sweep_file(path) {
        return Err(RunError::Option(format!(
            "{} is a sweep file; run it with `myelin batch {}`",
            path.display(),
            path.display()
        )));
    }
    let loaded = load_scene(path, simulation_with(0.1, extend).registry())?;
    let mut scene = loaded.scene.clone();
    if let Some(s) = opts.seed {
        scene.seed = s;
    }
    if let Some(d) = opts.duration {
        check_duration(d)?;
        scene.duration = d;
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "scene".to_string(), |s| s.to_string_lossy().into_owned());
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&stem));
    ranks::check_launch()?;
    let comm = ranks::communicator();
    let (root, several) = (comm.rank() == 0, comm.size() > 1);
    if several && let Some(why) = ranks::unsupported(&scene.network()) {
        return Err(RunError::Option(format!("{}: {why}", path.display())));
    }
    let on_gpu = opts.backend == Backend::Cuda;
    let backend_error = |e: BackendError| RunError::Option(e.to_string());
    if on_gpu {
        opts.backend.ensure_available().map_err(backend_error)?;
        let why = if several {
            Some("it runs in one process (run without mpirun)".to_string())
        } else if opts.checkpoint_every.is_some() {
            Some(
                "checkpoints need the state back from the device, which it does not yet copy"
                    .to_string(),
            )
        } else {
            myelin_systems::cuda::unsupported(&scene.network())
        };
        if let Some(why) = why {
            let e = BackendError::Unsupported(why);
            return Err(RunError::Option(format!("{}: {e}", path.display())));
        }
    }
    if root {
        check_output_dir(&out, opts.overwrite)?;
    }
    create_dir(&out)?;
    let lock = rank_lock(&out, root)?;
    let policy = CheckpointPolicy::new(
        opts.checkpoint_every,
        opts.checkpoint_dir.clone(),
        opts.keep,
        &out,
        scene.dt,
    )?;
    if let Some(p) = &policy {
        p.prepare_fresh(opts.overwrite)?;
    }
    let mut sim = simulation_with(scene.dt, extend);
    if on_gpu {
        myelin_systems::cuda::attach(&mut sim).map_err(backend_error)?;
    }
    let supplied = resume::warm_starts(&loaded, &scene)?;
    if !supplied.0.is_empty() {
        sim.world_mut().insert_resource(supplied);
    }
    let t0 = Instant::now();
    let spec = scene.network();
    let (ranked, report) = ranks::build(
        &mut sim,
        &spec,
        &path.display().to_string(),
        comm,
        several,
        opts.comm,
    )?;
    if on_gpu {
        // Construction on the GPU backend: the same network built on the CPU, then copied.
        myelin_systems::cuda::upload(&mut sim).map_err(backend_error)?;
    }
    let construction_s = t0.elapsed().as_secs_f64();
    let end_step = sim.clock().steps(scene.duration);
    let mut session = Session::fresh(
        sim,
        &loaded,
        &scene,
        out,
        end_step,
        policy,
        threads,
        lock,
        report,
        construction_s,
        ranked,
    )?;
    session.simulate(opts.progress && root)?;
    session.finish()
}

/// Checks a `--duration` value [ms].
fn check_duration(d: f64) -> Result<(), RunError> {
    if !(d > 0.0 && d.is_finite()) {
        return Err(RunError::Option(format!(
            "--duration {d} ms must be positive"
        )));
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(|source| RunError::Fs {
        what: "cannot create output folder",
        path: dir.to_path_buf(),
        source,
    })
}

/// The lock a rank holds during a run: rank 0 alone locks the output folder (it writes the
/// outputs); the others hold a temporary file of their own only to satisfy the session's
/// shape.
pub(crate) fn rank_lock(out: &Path, root: bool) -> Result<std::fs::File, RunError> {
    if root {
        lock_output(out)
    } else {
        tempfile::tempfile().map_err(|source| RunError::Fs {
            what: "cannot create a temporary file",
            path: std::env::temp_dir(),
            source,
        })
    }
}

/// Takes the exclusive lock of an output folder (held until the returned file is dropped
/// or the process ends), refusing a folder another process is writing into.
pub fn lock_output(dir: &Path) -> Result<std::fs::File, RunError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| RunError::Fs {
            what: "cannot create the lock file",
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RunError::InUse {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(RunError::Fs {
            what: "cannot lock",
            path,
            source,
        }),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|source| RunError::Fs {
        what: "cannot write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| RunError::Fs {
        what: "cannot rename into",
        path: path.to_path_buf(),
        source,
    })
}
