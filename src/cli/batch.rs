//! `myelin batch`: runs the jobs of a sweep K at a time, each in its own `myelin` process
//! with periodic checkpoints, keeping a manifest; run again, it skips finished jobs and
//! resumes the others from their last checkpoint.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use myelin::io::checkpoint::list_checkpoints;
use myelin::runner::{CHECKPOINT_SUBDIR, LOCK_FILE};

use super::manifest::{JobRecord, JobState, MANIFEST_FILE, Manifest, PopRate};
use super::{BatchArgs, EXIT_CANNOT_RESUME};
use myelin::runner::sweep::{self, Expanded, Job};

/// How often running jobs are polled.
const POLL: Duration = Duration::from_millis(25);
/// How long to wait before looking again at jobs whose folder another process holds.
const BUSY_WAIT: Duration = Duration::from_millis(200);
/// Lock file of a batch folder (one batch process at a time).
const BATCH_LOCK: &str = ".myelin-batch.lock";
/// The scene file of a job, in its folder.
const JOB_SCENE: &str = "job.ron";
/// The log of a job's processes, in its folder.
const JOB_LOG: &str = "log.txt";

/// How a job's process was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fresh,
    Resume,
}

struct Running {
    idx: usize,
    child: Child,
    started: Instant,
    mode: Mode,
}

/// A batch in progress.
struct Batch {
    exp: Expanded,
    out: PathBuf,
    manifest: Manifest,
    threads: usize,
    keep: usize,
    quiet: bool,
    exe: PathBuf,
}

/// Runs the batch of `args` to the end; errors when a job failed.
pub fn run(args: &BatchArgs) -> Result<(), String> {
    let exp = sweep::load(&args.sweep)?;
    let registry = myelin::runner::simulation_with(0.1, |_| {});
    sweep::validate(&exp, registry.registry())?;
    let out = args
        .out
        .clone()
        .or_else(|| exp.sweep.out.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| {
            let stem = args
                .sweep
                .file_stem()
                .map_or_else(|| "batch".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from("out").join(stem)
        });
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("{}: cannot create the batch folder: {e}", out.display()))?;
    let _lock = lock_batch(&out)?;
    let manifest = open_manifest(&exp, &out)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the myelin executable to run jobs with: {e}"))?;
    let mut batch = Batch {
        threads: args.threads.or(exp.sweep.threads).unwrap_or(1),
        keep: exp.sweep.keep.unwrap_or(myelin::runner::DEFAULT_KEEP),
        exp,
        out,
        manifest,
        quiet: args.quiet,
        exe,
    };
    batch.prepare()?;
    batch.schedule(jobs)?;
    out!("{}", batch.table());
    let failed = batch
        .manifest
        .jobs
        .iter()
        .filter(|j| j.state != JobState::Done)
        .count();
    if failed > 0 {
        return Err(format!(
            "{failed} of {} jobs failed (see their {JOB_LOG} in {}); run the same command again to retry them",
            batch.manifest.jobs.len(),
            batch.out.display()
        ));
    }
    Ok(())
}

/// Holds the batch folder's lock for the batch's life.
fn lock_batch(out: &Path) -> Result<File, String> {
    let path = out.join(BATCH_LOCK);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: cannot create the lock file: {e}", path.display()))?;
    f.try_lock().map_err(|_| {
        format!(
            "another `myelin batch` is running in {} (it holds {})",
            out.display(),
            path.display()
        )
    })?;
    Ok(f)
}

/// The folder's manifest, or a new one; refuses a folder of another sweep.
fn open_manifest(exp: &Expanded, out: &Path) -> Result<Manifest, String> {
    let path = out.join(MANIFEST_FILE);
    match Manifest::load(&path)? {
        Some(m) if m.jobs_hash == exp.jobs_hash() => Ok(m),
        Some(_) => Err(format!(
            "{} belongs to another sweep (its jobs differ from those of {}); choose another --out",
            path.display(),
            exp.file.display()
        )),
        None => Ok(Manifest::new(exp)),
    }
}

/// Whether folder `dir` holds the finished outputs of the job with scene hash `hash`.
fn finished(dir: &Path, hash: &str) -> Option<Vec<PopRate>> {
    let rec = dir.join("recordings.h5");
    if !rec.exists() || myelin::io::partial_path(&rec).exists() || !dir.join("scene.ron").exists() {
        return None;
    }
    let bytes = std::fs::read(dir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if v["scene_hash"].as_str() != Some(hash) {
        return None;
    }
    let pops = v["populations"].as_array()?;
    Some(
        pops.iter()
            .map(|p| PopRate {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                spikes: p["spikes"].as_u64().unwrap_or(0),
                rate_hz: p["rate_hz"].as_f64().unwrap_or(0.0),
            })
            .collect(),
    )
}

/// Whether another process holds the lock of a job folder.
fn busy(dir: &Path) -> bool {
    let Ok(f) = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
    else {
        return false;
    };
    matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

fn say(quiet: bool, msg: String) {
    if !quiet {
        eprintln!("{msg}");
    }
}

impl Batch {
    fn job_dir(&self, idx: usize) -> PathBuf {
        self.out.join(&self.manifest.jobs[idx].name)
    }

    fn save(&self) -> Result<(), String> {
        self.manifest.save(&self.out.join(MANIFEST_FILE))
    }

    /// Writes the job scenes and brings every job's state in line with its folder.
    fn prepare(&mut self) -> Result<(), String> {
        for (idx, job) in self.exp.jobs.iter().enumerate() {
            let dir = self.out.join(&job.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("{}: cannot create the job folder: {e}", dir.display()))?;
            write_if_changed(&dir.join(JOB_SCENE), &job.source)?;
            let rec = &mut self.manifest.jobs[idx];
            match finished(&dir, &job.hash) {
                Some(pops) => {
                    rec.state = JobState::Done;
                    rec.populations = pops;
                }
                None => {
                    rec.state = JobState::Pending;
                }
            }
        }
        self.save()
    }

    /// Runs every unfinished job, `k` at a time.
    fn schedule(&mut self, k: usize) -> Result<(), String> {
        let mut queue: VecDeque<(usize, bool)> = (0..self.manifest.jobs.len())
            .filter(|&i| self.manifest.jobs[i].state != JobState::Done)
            .map(|i| (i, false))
            .collect();
        let total = self.manifest.jobs.len();
        let done0 = total - queue.len();
        if done0 > 0 {
            say(self.quiet, format!("{done0} of {total} jobs already done"));
        }
        let mut running: Vec<Running> = Vec::new();
        loop {
            while running.len() < k {
                let Some(pos) = queue.iter().position(|&(i, _)| !busy(&self.job_dir(i))) else {
                    break;
                };
                let Some((idx, fresh)) = queue.remove(pos) else {
                    break;
                };
                if self.finished_meanwhile(idx)? {
                    continue;
                }
                running.push(self.start(idx, fresh)?);
            }
            if running.is_empty() {
                if queue.is_empty() {
                    return Ok(());
                }
                // Every remaining job's folder is held by a process of an earlier batch.
                std::thread::sleep(BUSY_WAIT);
                continue;
            }
            let mut i = 0;
            while i < running.len() {
                let status = running[i]
                    .child
                    .try_wait()
                    .map_err(|e| format!("cannot wait for a job process: {e}"))?;
                match status {
                    Some(status) => {
                        let r = running.swap_remove(i);
                        if let Some(retry) = self.finish(r, status)? {
                            queue.push_front(retry);
                        }
                    }
                    None => i += 1,
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether job `idx` finished since the batch looked (a process of an earlier,
    /// killed batch may have completed it); records it as done if so.
    fn finished_meanwhile(&mut self, idx: usize) -> Result<bool, String> {
        let Some(pops) = finished(&self.job_dir(idx), &self.exp.jobs[idx].hash) else {
            return Ok(false);
        };
        let rec = &mut self.manifest.jobs[idx];
        rec.state = JobState::Done;
        rec.populations = pops;
        say(
            self.quiet,
            format!("{} was finished by an earlier batch's process", rec.name),
        );
        self.save()?;
        Ok(true)
    }

    /// Starts job `idx`: resumes it from its newest checkpoint unless `fresh` or it has
    /// none.
    fn start(&mut self, idx: usize, fresh: bool) -> Result<Running, String> {
        let dir = self.job_dir(idx);
        let ckpt_dir = dir.join(CHECKPOINT_SUBDIR);
        let has_checkpoint = !list_checkpoints(&ckpt_dir)
            .map_err(|e| e.to_string())?
            .is_empty();
        let mode = if has_checkpoint && !fresh {
            Mode::Resume
        } else {
            Mode::Fresh
        };
        let job: &Job = &self.exp.jobs[idx];
        let threads = self.threads.to_string();
        let mut cmd = Command::new(&self.exe);
        match mode {
            Mode::Resume => {
                cmd.arg("resume").arg(&ckpt_dir);
            }
            Mode::Fresh => {
                cmd.arg("run")
                    .arg(dir.join(JOB_SCENE))
                    .arg("--out")
                    .arg(&dir)
                    .arg("--checkpoint-every")
                    .arg(self.exp.checkpoint_every(job).to_string())
                    .arg("--keep")
                    .arg(self.keep.to_string())
                    .arg("--overwrite");
            }
        }
        cmd.args(["--threads", &threads, "--quiet"]);
        let log_path = dir.join(JOB_LOG);
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: cannot open the job log: {e}", log_path.display()))?;
        let rec = &mut self.manifest.jobs[idx];
        rec.attempts += 1;
        if mode == Mode::Resume {
            rec.resumes += 1;
        }
        {
            use std::io::Write as _;
            let _ = writeln!(log, "=== attempt {}: {cmd:?}", rec.attempts);
        }
        let err_log = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        rec.state = JobState::Running;
        rec.error = None;
        let how = match mode {
            Mode::Resume => "resumed from its last checkpoint",
            Mode::Fresh => "started",
        };
        say(self.quiet, format!("{} {how}", rec.name));
        self.save()?;
        Ok(Running {
            idx,
            child,
            started: Instant::now(),
            mode,
        })
    }

    /// Records how a job's process ended; returns the job to run again at once (a job
    /// whose checkpoint could not be resumed starts over).
    fn finish(
        &mut self,
        r: Running,
        status: std::process::ExitStatus,
    ) -> Result<Option<(usize, bool)>, String> {
        let dir = self.job_dir(r.idx);
        let hash = self.exp.jobs[r.idx].hash.clone();
        let rec: &mut JobRecord = &mut self.manifest.jobs[r.idx];
        rec.wall_s += r.started.elapsed().as_secs_f64();
        let mut retry = None;
        if status.success() {
            match finished(&dir, &hash) {
                Some(pops) => {
                    rec.state = JobState::Done;
                    rec.populations = pops;
                    say(self.quiet, format!("{} done", rec.name));
                }
                None => {
                    rec.state = JobState::Failed;
                    rec.error = Some("the process succeeded but left no complete outputs".into());
                }
            }
        } else if r.mode == Mode::Resume && status.code() == Some(EXIT_CANNOT_RESUME) {
            rec.restarts += 1;
            rec.state = JobState::Pending;
            say(
                self.quiet,
                format!(
                    "{} could not be resumed ({}); starting it over",
                    rec.name,
                    last_line(&dir)
                ),
            );
            retry = Some((r.idx, true));
        } else {
            rec.state = JobState::Failed;
            let why = match status.signal() {
                Some(sig) => format!("killed by signal {sig}"),
                None => last_line(&dir),
            };
            say(self.quiet, format!("{} failed: {why}", rec.name));
            rec.error = Some(why);
        }
        self.save()?;
        Ok(retry)
    }

    /// The summary table of all jobs.
    fn table(&self) -> String {
        let short = short_names(&self.exp);
        let pops: Vec<String> = self
            .manifest
            .jobs
            .iter()
            .find(|j| !j.populations.is_empty())
            .map(|j| j.populations.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        let mut s = String::new();
        let _ = write!(s, "{:<10}", "job");
        for n in &short {
            let _ = write!(s, " {n:>12}");
        }
        let _ = write!(
            s,
            " {:>8} {:>8} {:>8} {:>9}",
            "seed", "state", "attempts", "wall [s]"
        );
        for p in &pops {
            let _ = write!(s, " {:>12}", format!("{p} [Hz]"));
        }
        let _ = writeln!(s);
        for j in &self.manifest.jobs {
            let _ = write!(s, "{:<10}", j.name);
            for (_, v) in &j.params {
                let _ = write!(s, " {v:>12}");
            }
            let _ = write!(
                s,
                " {:>8} {:>8} {:>8} {:>9.2}",
                j.seed,
                j.state.name(),
                j.attempts,
                j.wall_s
            );
            for p in &pops {
                match j.populations.iter().find(|q| &q.name == p) {
                    Some(q) => {
                        let _ = write!(s, " {:>12.3}", q.rate_hz);
                    }
                    None => {
                        let _ = write!(s, " {:>12}", "-");
                    }
                }
            }
            let _ = writeln!(s);
        }
        let done = self
            .manifest
            .jobs
            .iter()
            .filter(|j| j.state == JobState::Done)
            .count();
        let _ = writeln!(
            s,
            "{done} of {} jobs done; outputs in {}, manifest {}",
            self.manifest.jobs.len(),
            self.out.display(),
            self.out.join(MANIFEST_FILE).display()
        );
        s
    }
}

/// Column names for the grid parameters: the last key or field of each path, or the
/// whole path where two would clash.
fn short_names(exp: &Expanded) -> Vec<String> {
    let last: Vec<String> = exp
        .sweep
        .grid
        .iter()
        .map(|g| {
            let first = g
                .all_paths()
                .first()
                .map(|p| p.to_string())
                .unwrap_or_default();
            match sweep::parse_path(&first)
                .ok()
                .and_then(|p| p.last().cloned())
            {
                Some(sweep::Seg::Key(k) | sweep::Seg::Field(k)) => k,
                _ => first,
            }
        })
        .collect();
    last.iter()
        .zip(&exp.sweep.grid)
        .map(|(n, g)| {
            if last.iter().filter(|m| *m == n).count() > 1 {
                g.label()
            } else {
                n.clone()
            }
        })
        .collect()
}

/// The last non-empty line of a job's log.
fn last_line(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(JOB_LOG))
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "no output".into())
}

/// Writes `text` to `path` (atomically) unless it already holds exactly that.
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let tmp = path.with_extension("ron.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: cannot write the job scene: {e}", path.display()))
}
