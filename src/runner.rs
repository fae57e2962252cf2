//! Running a scene from a file to an output folder: what `myelin run` does, callable from
//! programs (and examples that add their own plugins).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bevy_ecs::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use myelin_components::{Population, Spikes};
use myelin_engine::{BuildError, BuildReport, PhaseTimers, SimSystems, Simulation};
use myelin_io::{IoError, LoadedScene, RecordingWriter, RunMeta, SceneError, load_scene};
use serde::Serialize;

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
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: None,
            threads: None,
            seed: None,
            duration: None,
            overwrite: false,
            progress: true,
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
}

impl RunSummary {
    /// The summary as the table `myelin run` prints.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scene          {} ({}), seed {}, dt {} ms, {} thread(s)",
            self.scene, self.scene_file, self.seed, self.dt_ms, self.threads
        );
        let _ = writeln!(s, "neurons        {}", group(self.neurons as u64));
        let _ = writeln!(
            s,
            "synapses       {} ({:.1} MiB connectivity, {:.1} MiB ring buffers)",
            group(self.synapses as u64),
            mib(self.synapse_bytes),
            mib(self.ring_bytes)
        );
        let _ = writeln!(
            s,
            "construction   {:.3} s (create {:.3} s, connect {:.3} s, prepare {:.3} s)",
            self.construction_s, self.create_s, self.connect_s, self.prepare_s
        );
        let _ = writeln!(
            s,
            "simulation     {:.3} s for {} ms simulated: real-time factor {:.3}",
            self.simulation_s, self.duration_ms, self.real_time_factor
        );
        let phases: Vec<String> = self
            .phases_s
            .iter()
            .filter(|(_, t)| *t > 0.0005)
            .map(|(n, t)| format!("{n} {t:.3} s"))
            .collect();
        let _ = writeln!(s, "phases         {}", phases.join(", "));
        let _ = writeln!(s, "output         {}", self.out_dir);
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

/// Loads and validates a scene against the built-in models and those `extend` adds.
pub fn check_scene(
    path: &Path,
    extend: impl FnOnce(&mut Simulation),
) -> Result<LoadedScene, RunError> {
    let sim = simulation_with(0.1, extend);
    Ok(load_scene(path, sim.registry())?)
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

/// Simulated time between progress updates and recording flushes [ms].
const CHUNK_MS: f64 = 10.0;

/// Runs the scene at `path` with the built-in plugins and those `extend` adds: loads and
/// validates it, builds the network, simulates with a progress bar, writes recordings to
/// `OUT/recordings.h5`, the summary to `OUT/summary.json` and a copy of the scene to
/// `OUT/scene.ron`. Results of an earlier run in `OUT` are refused unless
/// `opts.overwrite`; they are replaced only once the new run has finished.
pub fn run_scene(
    path: &Path,
    opts: &RunOptions,
    extend: impl Fn(&mut Simulation) + Sync,
) -> Result<RunSummary, RunError> {
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(RunError::Option("--threads must be at least 1".into()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| RunError::Option(format!("cannot start {threads} threads: {e}")))?;
    pool.install(|| run_in_pool(path, opts, threads, &extend))
}

fn run_in_pool(
    path: &Path,
    opts: &RunOptions,
    threads: usize,
    extend: &(dyn Fn(&mut Simulation) + Sync),
) -> Result<RunSummary, RunError> {
    let loaded = check_scene(path, extend)?;
    let mut scene = loaded.scene.clone();
    if let Some(s) = opts.seed {
        scene.seed = s;
    }
    if let Some(d) = opts.duration {
        if !(d > 0.0 && d.is_finite()) {
            return Err(RunError::Option(format!(
                "--duration {d} ms must be positive"
            )));
        }
        scene.duration = d;
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "scene".to_string(), |s| s.to_string_lossy().into_owned());
    let scene_name = scene.name.clone().unwrap_or_else(|| stem.clone());
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&stem));
    check_output_dir(&out, opts.overwrite)?;
    std::fs::create_dir_all(&out).map_err(|source| RunError::Fs {
        what: "cannot create output folder",
        path: out.clone(),
        source,
    })?;

    let mut sim = simulation_with(scene.dt, extend);
    let t0 = Instant::now();
    let report: BuildReport = sim.build(&scene.network())?;
    let construction_s = t0.elapsed().as_secs_f64();

    let meta = RunMeta {
        scene_name: scene_name.clone(),
        scene_hash: loaded.hash.clone(),
        seed: scene.seed,
        dt: scene.dt,
        myelin_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut writer = RecordingWriter::create(&out.join("recordings.h5"), &meta)?;

    let total = sim.clock().steps(scene.duration);
    let chunk = sim.clock().steps(CHUNK_MS).max(1);
    let bar = if opts.progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    if !opts.progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:40} {msg}").expect("valid template"));
    let t1 = Instant::now();
    let mut done = 0;
    while done < total {
        let n = chunk.min(total - done);
        sim.run_steps(n);
        done += n;
        writer.flush(sim.world_mut())?;
        let wall = t1.elapsed().as_secs_f64();
        let simulated = done as f64 * scene.dt;
        bar.set_position(done);
        bar.set_message(format!(
            "{simulated:.1}/{:.1} ms simulated, {wall:.1} s wall, real-time factor {:.2}",
            scene.duration,
            wall / (simulated / 1000.0)
        ));
    }
    let simulation_s = t1.elapsed().as_secs_f64();
    bar.finish_and_clear();
    writer.finish()?;

    let duration_ms = total as f64 * scene.dt;
    let world = sim.world_mut();
    let mut pops: Vec<(u64, PopulationSummary)> = world
        .query::<(&Population, &Spikes)>()
        .iter(world)
        .map(|(p, s)| {
            let rate = if duration_ms > 0.0 {
                s.total as f64 / p.size as f64 / (duration_ms / 1000.0)
            } else {
                0.0
            };
            (
                p.first_id,
                PopulationSummary {
                    name: p.name.clone(),
                    neurons: p.size,
                    spikes: s.total,
                    rate_hz: rate,
                },
            )
        })
        .collect();
    pops.sort_by_key(|(id, _)| *id);
    let timers = world.resource::<PhaseTimers>();
    let phases_s = SimSystems::ALL
        .iter()
        .map(|&p| (p.name().to_string(), timers.get(p).as_secs_f64()))
        .collect();
    let summary = RunSummary {
        scene: scene_name,
        scene_file: path.display().to_string(),
        scene_hash: loaded.hash.clone(),
        seed: scene.seed,
        dt_ms: scene.dt,
        duration_ms,
        threads,
        neurons: report.neurons,
        synapses: report.synapses,
        synapse_bytes: report.synapse_bytes,
        ring_bytes: report.ring_bytes,
        construction_s,
        create_s: report.create_s,
        connect_s: report.connect_s,
        prepare_s: report.prepare_s,
        simulation_s,
        real_time_factor: if duration_ms > 0.0 {
            simulation_s / (duration_ms / 1000.0)
        } else {
            0.0
        },
        phases_s,
        populations: pops.into_iter().map(|(_, p)| p).collect(),
        out_dir: out.display().to_string(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    write_atomic(&out.join("summary.json"), json.as_bytes())?;
    write_atomic(&out.join("scene.ron"), loaded.source.as_bytes())?;
    Ok(summary)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
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
