//! Running a suite: every repeat of every case is a fresh `myelin run` process (measured
//! through `myelin bench measure`), whose `summary.json` and measurement become one
//! [`Record`] appended to the store at once, so an interrupted benchmark keeps what it
//! finished. Peers run the same cases through their adapter (`benches/peers/`), which
//! appends records of the same schema to the same store file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::BenchError;
use super::measure::{LOG_TAIL_LINES, Measurement, run_measured, tail};
use super::meta;
use super::record::{
    self, CaseParams, MYELIN, Metadata, Record, Results, SCHEMA_VERSION, Store, Timers,
};
use super::suite::{Case, LoadedSuite, scale_scene};

/// Peers with an adapter, and the adapter script of each (relative to the repository).
pub const PEERS: [(&str, &str); 1] = [("nest", "benches/peers/nest_bench.py")];

/// The environment variable naming the Python interpreter for the NEST adapter.
pub const NEST_PYTHON_ENV: &str = "MYELIN_NEST_PYTHON";

/// The interpreter used when neither `--python` nor [`NEST_PYTHON_ENV`] names one.
pub const DEFAULT_PYTHON: &str = "python3";

/// How to run a suite.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The store folder.
    pub store: PathBuf,
    /// Repeats overriding the suite's.
    pub repeats: Option<usize>,
    /// Peers to run besides Myelin.
    pub peers: Vec<String>,
    /// Repeats of the peers' runs (default: as Myelin's).
    pub peer_repeats: Option<usize>,
    /// Run only the peers.
    pub peers_only: bool,
    /// Python interpreter of the peer adapters.
    pub python: Option<PathBuf>,
    /// Only these cases (by name; all when empty).
    pub cases: Vec<String>,
    /// The `myelin` executable that runs and measures the cases.
    pub exe: PathBuf,
}

/// What a suite run produced.
#[derive(Clone, Debug)]
pub struct BenchOutcome {
    /// The store file written.
    pub store_file: PathBuf,
    /// The run's id.
    pub run_id: String,
    /// The records of this run (Myelin's and the peers').
    pub records: Vec<Record>,
    /// The records the store held before.
    pub history: Vec<Record>,
    /// Cases that failed, with the reason.
    pub failures: Vec<String>,
    /// Cases this build or adapter cannot run (e.g. several ranks without MPI), with why.
    pub skipped: Vec<String>,
}

/// What `myelin run` writes to `summary.json` that a record needs.
#[derive(Deserialize)]
struct ChildSummary {
    scene_hash: String,
    seed: u64,
    dt_ms: f64,
    duration_ms: f64,
    threads: usize,
    neurons: u64,
    synapses: u64,
    construction_s: f64,
    create_s: f64,
    connect_s: f64,
    prepare_s: f64,
    simulation_s: f64,
    real_time_factor: f64,
    phases_s: Vec<(String, f64)>,
    populations: Vec<ChildPopulation>,
}

#[derive(Deserialize)]
struct ChildPopulation {
    spikes: u64,
}

/// A scene prepared for a case: the file that runs (scaled when needed), its hash, its
/// validated contents as JSON (for peers), its seed, time step and duration.
struct PreparedScene {
    file: PathBuf,
    hash: String,
    json: PathBuf,
    seed: u64,
    dt: f64,
    duration: f64,
}

/// The job a peer adapter gets (JSON): what to run and the record every repeat starts from.
#[derive(Serialize)]
struct PeerJob<'a> {
    /// The validated scene as `myelin check --json` prints it.
    scene_json: &'a Path,
    /// Repeats to run.
    repeats: usize,
    /// Threads of the peer.
    threads: usize,
    /// Simulated time \[ms\].
    duration_ms: f64,
    /// Seed.
    seed: u64,
    /// Scratch folder for the runs' outputs.
    work_dir: &'a Path,
    /// Store file to append the records to.
    store_file: &'a Path,
    /// The record to fill (timers, results, load and version left for the adapter).
    template: &'a Record,
    /// Options for the peer's runner (the case's `peer_args`).
    args: &'a [String],
}

/// Runs the suite's cases (and peers) and appends a record per repeat to
/// `STORE/SUITE.jsonl`. `progress` receives one line per repeat. A case that fails is
/// reported in [`BenchOutcome::failures`] and the others still run; an error is returned
/// only for what stops everything (a bad store, an unusable peer, an invalid scene).
pub fn run_suite(
    suite: &LoadedSuite,
    opts: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchOutcome, BenchError> {
    let store_file = record::store_file(&opts.store, &suite.suite.name);
    let history = Store::read_or_empty(&store_file)?.records;
    for p in &opts.peers {
        if !PEERS.iter().any(|(n, _)| n == p) {
            return Err(BenchError::Peer {
                peer: p.clone(),
                message: format!(
                    "no adapter; known peers: {} (Brian2 has none yet)",
                    PEERS.map(|p| p.0).join(", ")
                ),
            });
        }
    }
    let known: Vec<&str> = suite.suite.cases.iter().map(|c| c.name.as_str()).collect();
    if let Some(bad) = opts.cases.iter().find(|c| !known.contains(&c.as_str())) {
        return Err(BenchError::Option(format!(
            "{}: no case named {bad:?}; known: {}",
            suite.file.display(),
            known.join(", ")
        )));
    }
    let suite_dir = suite
        .file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let python = opts
        .python
        .clone()
        .or_else(|| std::env::var_os(NEST_PYTHON_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PYTHON));
    let mut peer_info = BTreeMap::new();
    for p in &opts.peers {
        let script = peer_script(suite_dir, p)?;
        let version = probe_peer(p, &python, &script)?;
        progress(&format!("peer {p}: {version} ({})", python.display()));
        peer_info.insert(p.clone(), script);
    }

    let tmp = tempfile::Builder::new()
        .prefix("myelin-bench-")
        .tempdir()
        .map_err(|source| BenchError::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let base_meta = meta::collect(suite_dir);
    let now = SystemTime::now();
    let run_id = format!("{}-{}", meta::compact_date(now), std::process::id());

    let mut plan: Vec<Case> = Vec::new();
    for spec in &suite.suite.cases {
        if !opts.cases.is_empty() && !opts.cases.contains(&spec.name) {
            continue;
        }
        let only = [spec.name.clone()];
        if !opts.peers_only {
            plan.extend(suite.cases(&only));
        }
        for p in &opts.peers {
            plan.extend(suite.peer_cases(p, &only));
        }
    }
    if plan.is_empty() {
        return Err(BenchError::Empty(format!(
            "{}: no case to run (peers excluded from every selected case?)",
            suite.file.display()
        )));
    }

    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut scenes: BTreeMap<(PathBuf, String), PreparedScene> = BTreeMap::new();
    let mut runnable = Vec::new();
    for case in plan {
        if let Some(why) = unsupported(&case) {
            let msg = format!("{}: skipped: {why}", case.label());
            progress(&msg);
            skipped.push(msg);
            continue;
        }
        let key = (case.scene.clone(), record::number_text(case.scale));
        if !scenes.contains_key(&key) {
            let p = prepare_scene(&case, tmp.path(), scenes.len())?;
            scenes.insert(key.clone(), p);
        }
        runnable.push((case, key));
    }

    let mut records = Vec::new();
    for (case, key) in &runnable {
        let scene = &scenes[key];
        let work = tmp.path().join(case.label().replace('/', "_"));
        std::fs::create_dir_all(&work).map_err(|source| BenchError::Write {
            path: work.clone(),
            source,
        })?;
        let mut template = Record {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.clone(),
            suite: suite.suite.name.clone(),
            case: case.name.clone(),
            simulator: case.simulator.clone(),
            simulator_version: String::new(),
            repeat: 0,
            repeats: 0,
            params: CaseParams {
                scene: case.scene_ref.clone(),
                scene_hash: scene.hash.clone(),
                seed: case.seed.unwrap_or(scene.seed),
                scale: case.scale,
                threads: case.threads,
                ranks: case.ranks,
                backend: case.backend.clone(),
                dt_ms: scene.dt,
                duration_ms: case.duration.unwrap_or(scene.duration),
            },
            timers: Timers::default(),
            results: Results::default(),
            meta: base_meta.clone(),
        };
        let result = if case.simulator == MYELIN {
            template.simulator_version = env!("CARGO_PKG_VERSION").into();
            template.repeats = opts.repeats.unwrap_or(case.repeats);
            run_myelin_case(case, scene, &template, &work, opts, &store_file, progress)
        } else {
            template.repeats = opts.peer_repeats.or(opts.repeats).unwrap_or(case.repeats);
            run_peer_case(
                case,
                scene,
                &template,
                &work,
                &python,
                &peer_info[&case.simulator],
                &store_file,
                progress,
            )
        };
        match result {
            Ok(rs) => records.extend(rs),
            Err(e) => {
                let msg = e.to_string();
                progress(&format!("error: {msg}"));
                failures.push(msg);
            }
        }
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(BenchOutcome {
        store_file,
        run_id,
        records,
        history,
        failures,
        skipped,
    })
}

/// Why a case cannot run in this build, if it cannot.
fn unsupported(case: &Case) -> Option<String> {
    if case.ranks > 1 {
        return Some(format!(
            "{} ranks: this build has no MPI (only 1 rank runs)",
            case.ranks
        ));
    }
    if case.simulator == MYELIN {
        let b: Result<myelin_engine::Backend, _> = case.backend.parse();
        if let Err(e) = b
            .map_err(|e| e.to_string())
            .and_then(|b| b.ensure_available().map_err(|e| e.to_string()))
        {
            return Some(e);
        }
    } else if case.backend != "cpu" {
        return Some(format!(
            "the {} adapter runs on the CPU only",
            case.simulator
        ));
    }
    None
}

/// Validates a case's scene (scaled when the case says) and writes what the runs need:
/// the scaled scene as RON, and the validated scene as JSON for peers.
fn prepare_scene(case: &Case, tmp: &Path, k: usize) -> Result<PreparedScene, BenchError> {
    let run_err = |e: crate::runner::RunError| BenchError::Option(format!("{}: {e}", case.name));
    let loaded = crate::runner::check_scene(&case.scene, |_| {}).map_err(run_err)?;
    let (file, hash, scene) = if case.scale == 1.0 {
        (case.scene.clone(), loaded.hash.clone(), loaded.scene)
    } else {
        let mut scene = loaded.scene;
        if scene.projections.iter().any(|p| p.warm_start.is_some()) {
            return Err(BenchError::Option(format!(
                "{}: a scene with warm-started projections cannot be scaled",
                case.name
            )));
        }
        scale_scene(&mut scene, case.scale);
        let config = ron::ser::PrettyConfig::new().struct_names(true);
        let body = ron::ser::to_string_pretty(&scene, config).map_err(|e| {
            BenchError::Option(format!("{}: cannot write the scaled scene: {e}", case.name))
        })?;
        let text = format!(
            "// {} scaled by {} for `myelin bench` (population sizes; in-degrees kept).\n{body}\n",
            case.scene.display(),
            case.scale
        );
        let stem = case
            .scene
            .file_stem()
            .map_or_else(|| "scene".into(), |s| s.to_string_lossy().into_owned());
        let file = tmp.join(format!(
            "{k:02}-{stem}-s{}.ron",
            record::number_text(case.scale)
        ));
        std::fs::write(&file, &text).map_err(|source| BenchError::Write {
            path: file.clone(),
            source,
        })?;
        let checked = crate::runner::check_scene(&file, |_| {}).map_err(run_err)?;
        (file, checked.hash, checked.scene)
    };
    let json = tmp.join(format!("{k:02}-scene.json"));
    let text = serde_json::to_string_pretty(&scene).map_err(|e| {
        BenchError::Option(format!(
            "{}: cannot write the scene as JSON: {e}",
            case.name
        ))
    })?;
    std::fs::write(&json, text).map_err(|source| BenchError::Write {
        path: json.clone(),
        source,
    })?;
    Ok(PreparedScene {
        file,
        hash,
        json,
        seed: scene.seed,
        dt: scene.dt,
        duration: scene.duration,
    })
}

/// Runs the repeats of one Myelin case, appending each record as it is made.
fn run_myelin_case(
    case: &Case,
    scene: &PreparedScene,
    template: &Record,
    work: &Path,
    opts: &BenchOptions,
    store_file: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Record>, BenchError> {
    let mut out = Vec::new();
    for r in 0..template.repeats {
        let dir = work.join(format!("r{r}"));
        let mut args: Vec<OsString> = vec![
            "run".into(),
            scene.file.clone().into(),
            "--out".into(),
            dir.clone().into(),
            "--overwrite".into(),
            "--quiet".into(),
            "--threads".into(),
            case.threads.to_string().into(),
            "--backend".into(),
            case.backend.clone().into(),
        ];
        if let Some(d) = case.duration {
            args.extend(["--duration".into(), d.to_string().into()]);
        }
        if let Some(s) = case.seed {
            args.extend(["--seed".into(), s.to_string().into()]);
        }
        let log = work.join(format!("r{r}.log"));
        let date = meta::rfc3339(SystemTime::now());
        let m = run_measured(
            &opts.exe,
            &args,
            &log,
            &work.join(format!("r{r}.measure.json")),
        )?;
        let fail = |message: String| BenchError::RunFailed {
            case: case.label(),
            repeat: r,
            message,
        };
        if !m.success() {
            return Err(fail(format!(
                "myelin run: {}:\n{}",
                m.describe_exit(),
                tail(&log, LOG_TAIL_LINES)
            )));
        }
        let summary_file = dir.join("summary.json");
        let text = std::fs::read_to_string(&summary_file)
            .map_err(|e| fail(format!("{}: {e}", summary_file.display())))?;
        let s: ChildSummary = serde_json::from_str(&text)
            .map_err(|e| fail(format!("{}: {e}", summary_file.display())))?;
        let rec = myelin_record(template, r, &date, &s, &m);
        record::append(store_file, std::slice::from_ref(&rec))?;
        progress(&format!("{}  {}", case.label(), repeat_line(&rec)));
        out.push(rec);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

/// One line about a finished repeat.
pub fn repeat_line(r: &Record) -> String {
    format!(
        "repeat {}/{}: construction {:.3} s, simulation {:.3} s, RTF {:.3}, peak {}",
        r.repeat + 1,
        r.repeats,
        r.timers.construction_s,
        r.timers.simulation_s,
        r.results.real_time_factor,
        r.results.peak_rss_bytes.map_or_else(
            || "?".into(),
            |b| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
        )
    )
}

fn myelin_record(
    template: &Record,
    repeat: usize,
    date: &str,
    s: &ChildSummary,
    m: &Measurement,
) -> Record {
    let mut timers = Timers {
        wall_s: m.wall_s,
        construction_s: s.construction_s,
        create_s: Some(s.create_s),
        connect_s: Some(s.connect_s),
        prepare_s: Some(s.prepare_s),
        simulation_s: s.simulation_s,
        ..Timers::default()
    };
    for (name, t) in &s.phases_s {
        timers.set_phase(name, *t);
    }
    let meta = Metadata {
        date: date.to_string(),
        load_avg: m.load_avg,
        foreign_load: m.foreign_load,
        ..template.meta.clone()
    };
    Record {
        repeat,
        params: CaseParams {
            scene_hash: s.scene_hash.clone(),
            seed: s.seed,
            threads: s.threads,
            dt_ms: s.dt_ms,
            duration_ms: s.duration_ms,
            ..template.params.clone()
        },
        timers,
        results: Results {
            real_time_factor: s.real_time_factor,
            peak_rss_bytes: m.peak_rss_bytes,
            neurons: s.neurons,
            synapses: s.synapses,
            spikes: s.populations.iter().map(|p| p.spikes).sum(),
            cpu_s: m.cpu_s,
        },
        meta,
        ..template.clone()
    }
}

/// The adapter script of a peer: under the repository holding the suite, else under the
/// one Myelin was built from.
fn peer_script(suite_dir: &Path, peer: &str) -> Result<PathBuf, BenchError> {
    let rel = PEERS
        .iter()
        .find(|(n, _)| *n == peer)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let abs = std::fs::canonicalize(suite_dir).unwrap_or_else(|_| suite_dir.to_path_buf());
    abs.ancestors()
        .map(|d| d.join(rel))
        .chain(std::iter::once(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(rel),
        ))
        .find(|p| p.is_file())
        .ok_or_else(|| BenchError::Peer {
            peer: peer.into(),
            message: format!("adapter {rel} not found above {}", suite_dir.display()),
        })
}

/// Checks that the peer's adapter runs with `python` and returns its simulator version.
fn probe_peer(peer: &str, python: &Path, script: &Path) -> Result<String, BenchError> {
    let hint = format!(
        "give a Python interpreter that has NEST 3.x, h5py and numpy with --python or {NEST_PYTHON_ENV}"
    );
    let out = Command::new(python)
        .arg(script)
        .arg("--probe")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BenchError::Peer {
            peer: peer.into(),
            message: format!("cannot start {}: {e}; {hint}", python.display()),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(BenchError::Peer {
            peer: peer.into(),
            message: format!(
                "unavailable with {} ({}): {last}; {hint}",
                python.display(),
                out.status
            ),
        });
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("version unknown")
        .trim()
        .to_string())
}

/// Runs a peer's repeats of a case through its adapter, which appends the records (its
/// progress lines are passed on as they come); returns the records as read back from the
/// store, so they are checked against the schema.
#[allow(clippy::too_many_arguments)]
fn run_peer_case(
    case: &Case,
    scene: &PreparedScene,
    template: &Record,
    work: &Path,
    python: &Path,
    script: &Path,
    store_file: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Record>, BenchError> {
    let job = PeerJob {
        scene_json: &scene.json,
        repeats: template.repeats,
        threads: case.threads,
        duration_ms: template.params.duration_ms,
        seed: template.params.seed,
        work_dir: work,
        store_file,
        template,
        args: &case.peer_args,
    };
    let job_file = work.join("job.json");
    let text = serde_json::to_string_pretty(&job)
        .map_err(|e| BenchError::Option(format!("cannot serialise a peer job: {e}")))?;
    std::fs::write(&job_file, text).map_err(|source| BenchError::Write {
        path: job_file.clone(),
        source,
    })?;
    progress(&format!(
        "{}  running {} repeat(s) through {}",
        case.label(),
        template.repeats,
        script.display()
    ));
    let log = work.join("adapter.log");
    let log_file = std::fs::File::create(&log).map_err(|source| BenchError::Write {
        path: log.clone(),
        source,
    })?;
    let spawn_err = |source| BenchError::Spawn {
        program: python.display().to_string(),
        source,
    };
    let mut child = Command::new(python)
        .arg(script)
        .arg(&job_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(spawn_err)?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !line.trim().is_empty() {
                progress(&format!("{}  {line}", case.label()));
            }
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    let written: Vec<Record> = if store_file.exists() {
        record::read_file(store_file)?
            .into_iter()
            .filter(|r| r.run_id == template.run_id && r.key() == template.key())
            .collect()
    } else {
        Vec::new()
    };
    if !status.success() {
        return Err(BenchError::RunFailed {
            case: case.label(),
            repeat: written.len(),
            message: format!(
                "{} adapter: {status}:\n{}",
                case.simulator,
                tail(&log, LOG_TAIL_LINES)
            ),
        });
    }
    Ok(written)
}
