//! The batch manifest: one JSON file recording every job's parameters and state, written
//! atomically (temporary file, sync, rename) whenever a job changes state.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use myelin::runner::sweep::{Expanded, Job};

/// File name of the manifest in the batch folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Value of its `format` field.
const MANIFEST_FORMAT: &str = "myelin-batch-manifest";
/// Version of its layout.
const MANIFEST_VERSION: u32 = 1;

/// State of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Not started, or interrupted (it resumes from its last checkpoint).
    Pending,
    /// Its process is running.
    Running,
    /// Finished: its folder holds its recordings and summary.
    Done,
    /// Its process failed; the next batch run retries it.
    Failed,
}

impl JobState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// Spike count and rate of one population of a finished job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PopRate {
    /// Population name.
    pub name: String,
    /// Spikes emitted.
    pub spikes: u64,
    /// Mean rate [Hz].
    pub rate_hz: f64,
}

/// One job in the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    /// Index.
    pub id: usize,
    /// Name and folder (relative to the batch folder).
    pub name: String,
    /// `(path, value)` of every grid parameter.
    pub params: Vec<(String, String)>,
    /// Seed.
    pub seed: u64,
    /// Hex SHA-256 of the job's scene.
    pub scene_hash: String,
    /// State.
    pub state: JobState,
    /// Processes started for it.
    pub attempts: u32,
    /// Of them, resumed from a checkpoint.
    pub resumes: u32,
    /// Starts over after a checkpoint could not be resumed.
    pub restarts: u32,
    /// Wall time of its processes [s].
    pub wall_s: f64,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Per population results, once done.
    pub populations: Vec<PopRate>,
}

/// The manifest of a batch folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"myelin-batch-manifest"`.
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// The sweep file.
    pub sweep: String,
    /// The base scene file.
    pub base_scene: String,
    /// Digest of the job list; a batch folder belongs to one sweep.
    pub jobs_hash: String,
    /// The jobs.
    pub jobs: Vec<JobRecord>,
}

impl Manifest {
    /// A manifest with every job pending.
    pub fn new(exp: &Expanded) -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            sweep: exp.file.display().to_string(),
            base_scene: exp.base.display().to_string(),
            jobs_hash: exp.jobs_hash(),
            jobs: exp.jobs.iter().map(record).collect(),
        }
    }

    /// Reads the manifest at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read the manifest: {e}", path.display())),
        };
        let m: Self = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a readable batch manifest: {e}", path.display()))?;
        if m.format != MANIFEST_FORMAT || m.version != MANIFEST_VERSION {
            return Err(format!(
                "{}: manifest format {:?} version {} is not \"{MANIFEST_FORMAT}\" version {MANIFEST_VERSION}",
                path.display(),
                m.format,
                m.version
            ));
        }
        Ok(Some(m))
    }

    /// Writes the manifest to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| format!("cannot serialise the manifest: {e}"))?;
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("{}: cannot write the manifest: {e}", path.display()))
    }
}

fn record(j: &Job) -> JobRecord {
    JobRecord {
        id: j.id,
        name: j.name.clone(),
        params: j.params.clone(),
        seed: j.seed,
        scene_hash: j.hash.clone(),
        state: JobState::Pending,
        attempts: 0,
        resumes: 0,
        restarts: 0,
        wall_s: 0.0,
        error: None,
        populations: Vec::new(),
    }
}
