//! Resuming a run from a checkpoint, and warm-starting projections from one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use myelin_components::DELIVERY_BLOCK;
use myelin_engine::{Simulation, SuppliedConnectivity};
use myelin_io::checkpoint::{
    Checkpoint, CheckpointError, RunInfo, list_checkpoints, read_checkpoint, read_projection,
};
use myelin_io::{LoadedScene, RecordingWriter, Scene, parse_scene};

use super::session::{CheckpointPolicy, RECORDINGS, Session, absolute_dir, run_meta};
use super::{CHECKPOINT_SUBDIR, RunError, RunSummary, in_pool, rank_lock, simulation_with};

/// How to resume a run.
#[derive(Clone, Debug)]
pub struct ResumeOptions {
    /// Simulated time to run from the checkpoint [ms] (default: to the run's end).
    pub duration: Option<f64>,
    /// The run's output folder (default: the one the checkpoint names, or the folder
    /// holding the checkpoint folder).
    pub out: Option<PathBuf>,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
    /// Simulated time between checkpoints [ms] (default: the run's).
    pub checkpoint_every: Option<f64>,
    /// Folder of new checkpoints (default: the folder of the checkpoint resumed from).
    pub checkpoint_dir: Option<PathBuf>,
    /// Checkpoints kept (default: the run's).
    pub keep: Option<usize>,
    /// Spike exchange between MPI ranks (used only with several ranks).
    pub comm: myelin_distributed::CommMode,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        Self {
            duration: None,
            out: None,
            threads: None,
            progress: true,
            checkpoint_every: None,
            checkpoint_dir: None,
            keep: None,
            comm: myelin_distributed::CommMode::default(),
        }
    }
}

/// Reads the checkpoint to resume from: `from` itself when it is a file; when it is a
/// folder, its newest usable checkpoint, passing over unusable ones (damaged, truncated,
/// corrupted), whose file and reason are returned, newest first.
pub fn find_checkpoint(from: &Path) -> Result<(Checkpoint, Vec<String>), RunError> {
    if !from.is_dir() {
        return read_checkpoint(from)
            .map(|c| (c, Vec::new()))
            .map_err(|e| with_earlier_hint(from, e));
    }
    let list = list_checkpoints(from)?;
    let mut skipped = Vec::new();
    for (_, path) in list.iter().rev() {
        match read_checkpoint(path) {
            Ok(c) => return Ok((c, skipped)),
            Err(e) if e.is_unusable_file() => skipped.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    let why = if skipped.is_empty() {
        "it holds no checkpoint-*.h5 file".to_string()
    } else {
        format!("none is usable:\n  {}", skipped.join("\n  "))
    };
    Err(RunError::Option(format!(
        "no checkpoint to resume from in {}: {why}",
        from.display()
    )))
}

/// The error of an unusable checkpoint file, pointing at the newest earlier checkpoint
/// of the same folder (which stays usable).
fn with_earlier_hint(file: &Path, e: CheckpointError) -> RunError {
    if !e.is_unusable_file() {
        return e.into();
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let earlier = list_checkpoints(dir)
        .unwrap_or_default()
        .into_iter()
        .rfind(|(_, p)| p.file_name() < file.file_name());
    match earlier {
        Some((_, p)) => RunError::Option(format!(
            "{e}\nan earlier checkpoint is {}: `myelin resume {}` (or give the folder to take the newest usable one)",
            p.display(),
            p.display()
        )),
        None => e.into(),
    }
}

/// Resumes the run a checkpoint belongs to (`from`: a checkpoint file, or a folder of
/// them: see [`find_checkpoint`]), with the built-in plugins and those `extend` adds: the
/// network is rebuilt from the scene text stored in the checkpoint with the stored
/// connectivity, every state is restored, the run's recording is reopened and cut back
/// to the checkpoint, and the simulation continues to the run's end (or for
/// `opts.duration`), appending to the recording and checkpointing as the run did. The
/// output folder then holds the same recordings as an uninterrupted run's.
///
/// Errors before anything is simulated are [`RunError::Resume`].
pub fn resume_run(
    from: &Path,
    opts: &ResumeOptions,
    extend: impl Fn(&mut Simulation) + Sync,
) -> Result<RunSummary, RunError> {
    in_pool(opts.threads, |threads| {
        let setup = |e: RunError| RunError::Resume {
            from: from.to_path_buf(),
            source: Box::new(e),
        };
        let mut session = restore_session(from, opts, threads, &extend).map_err(setup)?;
        let root = super::ranks::communicator().rank() == 0;
        session.simulate(opts.progress && root)?;
        session.finish()
    })
}

fn restore_session(
    from: &Path,
    opts: &ResumeOptions,
    threads: usize,
    extend: &(dyn Fn(&mut Simulation) + Sync),
) -> Result<Session, RunError> {
    let t0 = Instant::now();
    super::ranks::check_launch()?;
    let comm = super::ranks::communicator();
    let several = comm.size() > 1;
    let (mut ckpt, skipped) = if several {
        let (ckpt, skipped) = find_checkpoint(&super::ranks::resume_dir(from, &*comm)?)?;
        super::ranks::check_same_step(&*comm, ckpt.step)?;
        (ckpt, skipped)
    } else {
        find_checkpoint(from)?
    };
    let mut scene = stored_scene(&ckpt, extend)?;
    scene.seed = ckpt.seed;
    let end_step = match opts.duration {
        Some(d) => {
            super::check_duration(d)?;
            ckpt.step + (d / ckpt.dt).round() as u64
        }
        None => default_end(&ckpt, &scene),
    };
    scene.duration = end_step as f64 * ckpt.dt;
    let out = output_dir(&ckpt, opts.out.as_deref())?;
    let root = comm.rank() == 0;
    let lock = rank_lock(&out, root)?;
    let policy = resume_policy(&ckpt, opts, &out)?;

    let mut sim = simulation_with(scene.dt, extend);
    sim.world_mut().insert_resource(ckpt.take_connectivity());
    let spec = scene.network();
    if several && let Some(why) = super::ranks::unsupported(&spec) {
        return Err(RunError::Option(why));
    }
    let (ranked, report) = super::ranks::build(
        &mut sim,
        &spec,
        &ckpt.run.scene_file,
        comm,
        several,
        opts.comm,
    )?;
    let positions = ckpt.positions();
    let mut run = ckpt.run.clone();
    ckpt.restore(sim.world_mut())?;

    run.end_step = end_step;
    run.out_dir = out.display().to_string();
    if let Some(p) = &policy {
        run.checkpoint_every_steps = p.every_steps;
        run.checkpoint_dir = p.dir.display().to_string();
        run.keep = p.keep as u64;
    }
    let writer = if root {
        Some(RecordingWriter::resume(
            &out.join(RECORDINGS),
            &run_meta(&run, &scene),
            &positions,
            sim.world_mut(),
        )?)
    } else {
        None
    };
    let construction_s = t0.elapsed().as_secs_f64();
    let mut session = Session::restored(
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
        ranked,
    );
    session.skipped = skipped;
    Ok(session)
}

/// Where a resumed run ends without `--duration`: the run's planned end, or, when the
/// checkpoint is already there (a finished run), the end of the scene's own duration.
fn default_end(ckpt: &Checkpoint, scene: &Scene) -> u64 {
    let planned = ckpt.run.end_step;
    if ckpt.step < planned {
        return planned;
    }
    let scene_end = (scene.duration / ckpt.dt).round() as u64;
    scene_end.max(ckpt.step)
}

/// The scene stored in a checkpoint, parsed and validated against the registry.
fn stored_scene(
    ckpt: &Checkpoint,
    extend: &(dyn Fn(&mut Simulation) + Sync),
) -> Result<Scene, RunError> {
    let label = PathBuf::from(format!(
        "{} (scene stored in {})",
        ckpt.run.scene_file,
        ckpt.file.display()
    ));
    let scene = parse_scene(&label, &ckpt.run.scene_source)?;
    let sim = simulation_with(scene.dt, extend);
    let errors = myelin_engine::validate(&scene.network(), sim.registry());
    if !errors.is_empty() {
        return Err(RunError::Build(myelin_engine::BuildError::Spec(errors)));
    }
    if scene.dt != ckpt.dt {
        return Err(CheckpointError::Mismatch {
            file: ckpt.file.clone(),
            message: format!(
                "its scene has dt {} ms but the checkpoint {} ms",
                scene.dt, ckpt.dt
            ),
        }
        .into());
    }
    Ok(scene)
}

/// The run's output folder: `given`, else the one the checkpoint names if it exists, else
/// the folder holding the checkpoint's folder when that holds the run's recording.
fn output_dir(ckpt: &Checkpoint, given: Option<&Path>) -> Result<PathBuf, RunError> {
    if let Some(dir) = given {
        return absolute_dir(dir);
    }
    let stored = PathBuf::from(&ckpt.run.out_dir);
    if stored.is_dir() {
        return Ok(stored);
    }
    let beside = ckpt
        .file
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == CHECKPOINT_SUBDIR))
        .and_then(Path::parent)
        .filter(|o| {
            o.join(RECORDINGS).exists() || myelin_io::partial_path(&o.join(RECORDINGS)).exists()
        });
    match beside {
        Some(o) => absolute_dir(o),
        None => Err(RunError::Option(format!(
            "the run's output folder {} does not exist; pass --out with the folder holding its {RECORDINGS}",
            stored.display()
        ))),
    }
}

/// The checkpoint policy of a resumed run: the options, else the run's own, with new
/// checkpoints beside the one resumed from by default.
fn resume_policy(
    ckpt: &Checkpoint,
    opts: &ResumeOptions,
    out: &Path,
) -> Result<Option<CheckpointPolicy>, RunError> {
    let run: &RunInfo = &ckpt.run;
    let every_ms = opts.checkpoint_every.or_else(|| {
        (run.checkpoint_every_steps > 0).then_some(run.checkpoint_every_steps as f64 * ckpt.dt)
    });
    let dir = opts.checkpoint_dir.clone().or_else(|| {
        let parent = ckpt.file.parent()?;
        // A rank's file sits in `rank-NNNNN/` of the run's checkpoint folder.
        let is_rank_dir = parent
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("rank-"));
        Some(if is_rank_dir {
            parent.parent().unwrap_or(parent).to_path_buf()
        } else {
            parent.to_path_buf()
        })
    });
    let keep = opts.keep.unwrap_or_else(|| (run.keep as usize).max(1));
    CheckpointPolicy::new(every_ms, dir, keep, out, ckpt.dt)
}

/// The connectivity of every warm-started projection of a scene, read from its
/// checkpoint and checked against the scene (sizes, time step, block size).
pub(super) fn warm_starts(
    loaded: &LoadedScene,
    scene: &Scene,
) -> Result<SuppliedConnectivity, RunError> {
    let mut out = SuppliedConnectivity::default();
    let base = loaded.path.parent().unwrap_or(Path::new(""));
    for (k, j) in scene.projections.iter().enumerate() {
        let Some(ws) = &j.warm_start else { continue };
        let name = j
            .name
            .clone()
            .unwrap_or_else(|| format!("{}->{}", j.source, j.target));
        let err = |message: String| RunError::WarmStart {
            scene: loaded.path.clone(),
            index: k,
            name: name.clone(),
            message,
        };
        let file = base.join(&ws.checkpoint);
        let wanted = ws.projection.clone().unwrap_or_else(|| name.clone());
        let stored = read_projection(&file, &wanted).map_err(|e| err(e.to_string()))?;
        let size = |pop: &str| {
            scene
                .populations
                .iter()
                .find(|p| p.name == pop)
                .map_or(0, |p| p.size)
        };
        let (n_source, n_target) = (size(&j.source), size(&j.target));
        let here = format!("{}: projection \"{wanted}\"", file.display());
        if stored.n_source != n_source || stored.n_target != n_target {
            return Err(err(format!(
                "{here} connects {} -> {} neurons (populations \"{}\" -> \"{}\" there), but the scene's \"{}\" -> \"{}\" have {n_source} -> {n_target}",
                stored.n_source, stored.n_target, stored.source, stored.target, j.source, j.target
            )));
        }
        if stored.dt != scene.dt {
            return Err(err(format!(
                "{here} has delays in steps of dt = {} ms, the scene's dt is {} ms",
                stored.dt, scene.dt
            )));
        }
        if stored.block_size != DELIVERY_BLOCK {
            return Err(err(format!(
                "{here} uses delivery blocks of {} neurons, this build {DELIVERY_BLOCK}",
                stored.block_size
            )));
        }
        out.0.insert(k, stored.connectivity);
    }
    Ok(out)
}
