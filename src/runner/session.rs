//! A run in progress: the simulation, its recording and its checkpoints, from the start or
//! from a checkpoint to the end of the run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bevy_ecs::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use myelin_components::{Population, Spikes, SynapticInput};
use myelin_engine::{BuildReport, DevicePhaseTimes, PhaseTimers, SimSystems, Simulation};
use myelin_io::checkpoint::{
    RunInfo, checkpoint_file_name, list_checkpoints, prune_checkpoints, write_checkpoint,
};
use myelin_io::{LoadedScene, RecordingWriter, RunMeta, Scene};

use super::ranks::Ranked;
use super::{CHECKPOINT_SUBDIR, PopulationSummary, RunError, RunSummary, write_atomic};

/// Simulated time between progress updates and recording flushes [ms].
const CHUNK_MS: f64 = 10.0;

/// Name of the recording in the output folder.
pub(super) const RECORDINGS: &str = "recordings.h5";

/// When and where a run writes checkpoints.
#[derive(Clone, Debug)]
pub(super) struct CheckpointPolicy {
    /// Steps between checkpoints; they fall on the multiples of it (and at the end).
    pub every_steps: u64,
    /// Folder (absolute).
    pub dir: PathBuf,
    /// Newest checkpoints kept.
    pub keep: usize,
}

impl CheckpointPolicy {
    /// The policy of `--checkpoint-every MS [--checkpoint-dir DIR] [--keep N]` for a run
    /// into `out` with time step `dt` [ms]; `None` without `every_ms`. Creates the folder.
    pub fn new(
        every_ms: Option<f64>,
        dir: Option<PathBuf>,
        keep: usize,
        out: &Path,
        dt: f64,
    ) -> Result<Option<Self>, RunError> {
        let Some(ms) = every_ms else { return Ok(None) };
        if !(ms > 0.0 && ms.is_finite()) {
            return Err(RunError::Option(format!(
                "--checkpoint-every {ms} ms must be positive"
            )));
        }
        let every_steps = (ms / dt).round() as u64;
        if every_steps == 0 {
            return Err(RunError::Option(format!(
                "--checkpoint-every {ms} ms is shorter than one time step ({dt} ms)"
            )));
        }
        if keep == 0 {
            return Err(RunError::Option(
                "--keep must be at least 1 (the newest checkpoint)".into(),
            ));
        }
        let dir = dir.unwrap_or_else(|| out.join(CHECKPOINT_SUBDIR));
        Ok(Some(Self {
            every_steps,
            dir: absolute_dir(&dir)?,
            keep,
        }))
    }

    /// Makes sure a run from the start does not mix its checkpoints with an earlier run's:
    /// refuses a folder holding checkpoints, or, with `overwrite`, removes them.
    pub fn prepare_fresh(&self, overwrite: bool) -> Result<(), RunError> {
        if list_checkpoints(&self.dir)?.is_empty() {
            return Ok(());
        }
        if !overwrite {
            return Err(RunError::CheckpointsExist {
                dir: self.dir.clone(),
            });
        }
        prune_checkpoints(&self.dir, 0)?;
        Ok(())
    }

    /// Whether a checkpoint is due after `step` steps of a run ending at `end`.
    fn due(&self, step: u64, end: u64) -> bool {
        step.is_multiple_of(self.every_steps) || step == end
    }
}

/// Creates `dir` and returns its absolute path.
pub(super) fn absolute_dir(dir: &Path) -> Result<PathBuf, RunError> {
    std::fs::create_dir_all(dir).map_err(|source| RunError::Fs {
        what: "cannot create folder",
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::canonicalize(dir).map_err(|source| RunError::Fs {
        what: "cannot resolve folder",
        path: dir.to_path_buf(),
        source,
    })
}

/// What checkpointing did in this process.
#[derive(Clone, Debug, Default)]
struct CheckpointLog {
    written: usize,
    seconds: f64,
    bytes: u64,
    last: Option<PathBuf>,
}

/// A built (or restored) simulation with its recording, run to `run.end_step`.
pub(super) struct Session {
    pub sim: Simulation,
    /// What checkpoints record about the run.
    pub run: RunInfo,
    /// The scene with the run's overrides (seed, duration) applied.
    pub scene: Scene,
    /// The scene file named in the summary.
    pub scene_file: String,
    pub out: PathBuf,
    pub policy: Option<CheckpointPolicy>,
    /// The recordings; on ranks other than 0 of a distributed run, none (rank 0 writes).
    pub writer: Option<RecordingWriter>,
    pub threads: usize,
    /// The output folder's lock, held for the session's life.
    pub lock: std::fs::File,
    pub report: BuildReport,
    pub construction_s: f64,
    /// Step this process started simulating from.
    pub start_step: u64,
    pub resumed: bool,
    pub skipped: Vec<String>,
    simulation_s: f64,
    log: CheckpointLog,
    /// This rank's share of a distributed run (`None` on one process).
    ranked: Option<Ranked>,
}

impl Session {
    /// A session of a run from the start, its network just built: creates the recording.
    pub fn fresh(
        sim: Simulation,
        loaded: &LoadedScene,
        scene: &Scene,
        out: PathBuf,
        end_step: u64,
        policy: Option<CheckpointPolicy>,
        threads: usize,
        lock: std::fs::File,
        report: BuildReport,
        construction_s: f64,
        ranked: Option<Ranked>,
    ) -> Result<Self, RunError> {
        // Checkpoints record the folder absolutely; the summary names it as given.
        let run = run_info(
            loaded,
            scene,
            &absolute_dir(&out)?,
            end_step,
            policy.as_ref(),
        );
        let root = ranked.as_ref().is_none_or(|r| r.comm.rank() == 0);
        let writer = if root {
            Some(RecordingWriter::create(
                &out.join(RECORDINGS),
                &run_meta(&run, scene),
            )?)
        } else {
            None
        };
        Ok(Self {
            sim,
            run,
            scene: scene.clone(),
            scene_file: loaded.path.display().to_string(),
            out,
            policy,
            writer,
            threads,
            lock,
            report,
            construction_s,
            start_step: 0,
            resumed: false,
            skipped: Vec::new(),
            simulation_s: 0.0,
            log: CheckpointLog::default(),
            ranked,
        })
    }

    /// A session continuing a restored simulation (the writer reopened).
    pub fn restored(
        sim: Simulation,
        run: RunInfo,
        scene: Scene,
        out: PathBuf,
        policy: Option<CheckpointPolicy>,
        writer: Option<RecordingWriter>,
        threads: usize,
        lock: std::fs::File,
        report: BuildReport,
        construction_s: f64,
        ranked: Option<Ranked>,
    ) -> Self {
        let start_step = sim.clock().step;
        Self {
            scene_file: run.scene_file.clone(),
            sim,
            run,
            scene,
            out,
            policy,
            writer,
            threads,
            lock,
            report,
            construction_s,
            start_step,
            resumed: true,
            skipped: Vec::new(),
            simulation_s: 0.0,
            log: CheckpointLog::default(),
            ranked,
        }
    }

    /// Simulates to the end of the run, flushing the recording every [`CHUNK_MS`] and
    /// writing checkpoints where the policy says.
    pub fn simulate(&mut self, progress: bool) -> Result<(), RunError> {
        let end = self.run.end_step;
        let dt = self.sim.clock().dt;
        let chunk = self.sim.clock().steps(CHUNK_MS).max(1);
        let bar = progress_bar(progress, end);
        // Between chunks only the recording is written (no checkpoint reads device state
        // on the GPU backend), so a device may run ahead to the run's end.
        if self.policy.is_none() {
            self.sim.plan_until(end);
        }
        let t0 = Instant::now();
        loop {
            let step = self.sim.clock().step;
            bar.set_position(step);
            if step >= end {
                break;
            }
            let mut next = (step + chunk).min(end);
            if let Some(p) = &self.policy {
                next = next.min((step / p.every_steps + 1) * p.every_steps);
            }
            match &mut self.ranked {
                Some(r) => {
                    r.run_steps(&mut self.sim, next - step);
                    r.gather_recordings(self.sim.world_mut());
                }
                None => self.sim.run_steps(next - step),
            }
            if let Some(w) = &mut self.writer {
                w.flush(self.sim.world_mut())?;
            }
            if self.policy.as_ref().is_some_and(|p| p.due(next, end)) {
                self.checkpoint()?;
            }
            let wall = t0.elapsed().as_secs_f64();
            let simulated = (next - self.start_step) as f64 * dt;
            bar.set_message(format!(
                "{:.1}/{:.1} ms simulated, {wall:.1} s wall, real-time factor {:.2}",
                next as f64 * dt,
                end as f64 * dt,
                wall / (simulated / 1000.0)
            ));
        }
        self.simulation_s = t0.elapsed().as_secs_f64() - self.log.seconds;
        bar.finish_and_clear();
        Ok(())
    }

    /// Writes a checkpoint of the current step (after a flush) and prunes old ones.
    fn checkpoint(&mut self) -> Result<(), RunError> {
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let t = Instant::now();
        let positions = match &mut self.writer {
            Some(w) => {
                w.sync()?;
                w.positions()
            }
            None => Default::default(),
        };
        let step = self.sim.clock().step;
        let stats = match &self.ranked {
            // On several ranks: one file per rank in `rank-NNNNN/`, and a manifest.
            Some(r) => {
                let dir = super::ranks::rank_dir(&policy.dir, r.comm.rank());
                std::fs::create_dir_all(&dir).map_err(|source| RunError::Fs {
                    what: "cannot create checkpoint folder",
                    path: dir.clone(),
                    source,
                })?;
                let ex = r.exchanger.as_ref().expect("prepared after the build");
                ex.restore_dense_rows(self.sim.world_mut());
                let path = dir.join(checkpoint_file_name(step));
                let written = write_checkpoint(&path, self.sim.world(), &self.run, &positions);
                ex.drop_dense_rows(self.sim.world_mut());
                let stats = written?;
                prune_checkpoints(&dir, policy.keep)?;
                r.comm.barrier();
                if r.comm.rank() == 0 {
                    super::ranks::write_manifest(&policy.dir, r, step)?;
                }
                stats
            }
            None => {
                let path = policy.dir.join(checkpoint_file_name(step));
                let stats = write_checkpoint(&path, self.sim.world(), &self.run, &positions)?;
                prune_checkpoints(&policy.dir, policy.keep)?;
                stats
            }
        };
        self.log.written += 1;
        self.log.seconds += t.elapsed().as_secs_f64();
        self.log.bytes = stats.bytes;
        self.log.last = Some(stats.path);
        Ok(())
    }

    /// Closes the recording (renaming it into place) and writes the summary and the scene.
    pub fn finish(self) -> Result<RunSummary, RunError> {
        let Self {
            mut sim,
            run,
            scene,
            scene_file,
            out,
            writer,
            threads,
            lock,
            report,
            construction_s,
            start_step,
            resumed,
            skipped,
            simulation_s,
            log,
            ranked,
            ..
        } = self;
        if let Some(w) = writer {
            w.finish()?;
        }
        let dt = scene.dt;
        let end = sim.clock().step;
        let duration_ms = end as f64 * dt;
        let simulated_here_ms = (end - start_step) as f64 * dt;
        let world = sim.world_mut();
        let (synapses, per_rank) = match &ranked {
            Some(r) => {
                let per_rank = r.rank_summaries(
                    construction_s,
                    simulation_s,
                    report.synapses,
                    report.synapse_bytes,
                );
                (r.sum_counts(world, report.synapses), per_rank)
            }
            None => (report.synapses, Vec::new()),
        };
        let populations = population_summaries(world, duration_ms);
        let pending_bytes = world
            .query::<&SynapticInput>()
            .iter(world)
            .map(SynapticInput::pending_bytes)
            .sum();
        let timers = world.resource::<PhaseTimers>();
        let mut phases_s: Vec<(String, f64)> = SimSystems::ALL
            .iter()
            .map(|&p| (p.name().to_string(), timers.get(p).as_secs_f64()))
            .collect();
        // On several ranks the exchange (pack, wait, send, unpack) and the delivery of each
        // window run between steps: this rank's times join their phases.
        if let Some(t) = ranked
            .as_ref()
            .and_then(|r| r.exchanger.as_ref())
            .map(|e| &e.timers)
        {
            for (name, v) in &mut phases_s {
                match name.as_str() {
                    "exchange" => *v += t.pack_s + t.wait_s + t.exchange_s + t.unpack_s,
                    "deliver" => *v += t.deliver_s,
                    _ => {}
                }
            }
        }
        let device =
            world
                .get_resource::<DevicePhaseTimes>()
                .map(|d| crate::runner::DeviceSummary {
                    name: d.device.clone(),
                    graph: d.graph,
                    sampled_steps: d.sampled_steps,
                    phases_us_per_step: d
                        .per_step_s
                        .iter()
                        .map(|&(n, t)| (n.to_string(), t * 1e6))
                        .collect(),
                    graph_step_us: d.graph_step_s.map(|t| t * 1e6),
                    upload_s: d.upload_s,
                    compile_s: d.compile_s,
                    upload_mib: d.upload_bytes as f64 / (1024.0 * 1024.0),
                });
        let summary = RunSummary {
            scene: run.scene_name.clone(),
            scene_file,
            scene_hash: run.scene_hash.clone(),
            seed: scene.seed,
            dt_ms: dt,
            duration_ms,
            threads,
            neurons: report.neurons,
            synapses,
            synapse_bytes: report.synapse_bytes,
            ring_bytes: report.ring_bytes,
            pending_bytes,
            construction_s,
            create_s: report.create_s,
            connect_s: report.connect_s,
            prepare_s: report.prepare_s,
            simulation_s,
            real_time_factor: if simulated_here_ms > 0.0 {
                simulation_s / (simulated_here_ms / 1000.0)
            } else {
                0.0
            },
            phases_s,
            populations,
            out_dir: out.display().to_string(),
            resumed_from_ms: resumed.then_some(start_step as f64 * dt),
            checkpoints_written: log.written,
            checkpoint_s: log.seconds,
            checkpoint_bytes: log.bytes,
            last_checkpoint: log.last.map(|p| p.display().to_string()),
            skipped_checkpoints: skipped,
            ranks: ranked.as_ref().map_or(1, |r| r.comm.size()),
            backend: sim
                .world()
                .get_resource::<myelin_engine::ActiveBackend>()
                .map_or(myelin_engine::Backend::Cpu, |b| b.0)
                .to_string(),
            comm: ranked
                .as_ref()
                .and_then(|r| r.exchanger.as_ref())
                .map(|e| e.mode().name().to_string()),
            per_rank,
            device,
        };
        if ranked.as_ref().is_some_and(|r| r.comm.rank() != 0) {
            drop(lock);
            return Ok(summary);
        }
        let json = serde_json::to_string_pretty(&summary)
            .map_err(|e| RunError::Option(format!("cannot serialise the run summary: {e}")))?;
        write_atomic(&out.join("summary.json"), json.as_bytes())?;
        write_atomic(&out.join("scene.ron"), run.scene_source.as_bytes())?;
        drop(lock);
        Ok(summary)
    }
}

/// Per population spike counts and rates over `duration_ms`, in scene order.
fn population_summaries(world: &mut World, duration_ms: f64) -> Vec<PopulationSummary> {
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
    pops.into_iter().map(|(_, p)| p).collect()
}

fn progress_bar(progress: bool, total: u64) -> ProgressBar {
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    if !progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// What checkpoints of a run from the start record about it.
fn run_info(
    loaded: &LoadedScene,
    scene: &Scene,
    out: &Path,
    end_step: u64,
    policy: Option<&CheckpointPolicy>,
) -> RunInfo {
    RunInfo {
        scene_name: scene.name.clone().unwrap_or_else(|| loaded.name()),
        scene_file: loaded.path.display().to_string(),
        scene_source: loaded.source.clone(),
        scene_hash: loaded.hash.clone(),
        end_step,
        out_dir: out.display().to_string(),
        checkpoint_every_steps: policy.map_or(0, |p| p.every_steps),
        checkpoint_dir: policy.map_or_else(String::new, |p| p.dir.display().to_string()),
        keep: policy.map_or(0, |p| p.keep as u64),
        myelin_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The recording's metadata of a run.
pub(super) fn run_meta(run: &RunInfo, scene: &Scene) -> RunMeta {
    RunMeta {
        scene_name: run.scene_name.clone(),
        scene_hash: run.scene_hash.clone(),
        seed: scene.seed,
        dt: scene.dt,
        myelin_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}
