//! Benchmark records: one JSON object per run of one case, appended as one line to a store
//! file. The schema is versioned ([`SCHEMA_VERSION`]) and documented in
//! `docs/benchmarking.md`; peers (the NEST adapter) write the same schema.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BenchError;

/// Version of the record schema. Raise it when a field changes meaning or a required
/// field is added; readers refuse records of another version.
pub const SCHEMA_VERSION: u32 = 1;

/// Extension of store files (JSON lines).
pub const STORE_EXTENSION: &str = "jsonl";

/// The default store folder.
pub const DEFAULT_STORE: &str = "bench-results";

/// The simulator name Myelin's own records carry.
pub const MYELIN: &str = "myelin";

/// One run of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Version of this schema ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Identifier of the `myelin bench` invocation the run belongs to (its start time and
    /// process id); the repeats of one case in one invocation share it.
    pub run_id: String,
    /// The suite's name.
    pub suite: String,
    /// The case's name in the suite.
    pub case: String,
    /// Which simulator ran: `"myelin"`, or a peer (`"nest"`).
    pub simulator: String,
    /// Its version (Myelin's crate version, NEST's `nest.__version__`).
    pub simulator_version: String,
    /// Index of this repeat (0-based) among `repeats`.
    pub repeat: usize,
    /// Repeats of the case in this invocation.
    pub repeats: usize,
    /// What was run.
    pub params: CaseParams,
    /// Wall times \[s\].
    pub timers: Timers,
    /// What the run measured besides time.
    pub results: Results,
    /// The machine, the build and the moment.
    pub meta: Metadata,
}

/// The parameters of a run: together with the simulator, the key of a case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseParams {
    /// The scene file, as the suite names it (relative to the suite's folder).
    pub scene: String,
    /// Hex SHA-256 of the scene text that ran (after scaling).
    pub scene_hash: String,
    /// Seed.
    pub seed: u64,
    /// Scale factor applied to the scene (1 = as written).
    pub scale: f64,
    /// Worker threads.
    pub threads: usize,
    /// MPI ranks.
    pub ranks: usize,
    /// Backend (`cpu`, `cuda`).
    pub backend: String,
    /// Time step \[ms\].
    pub dt_ms: f64,
    /// Simulated time \[ms\].
    pub duration_ms: f64,
}

/// Wall times of a run \[s\]. Phases a simulator does not report are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    /// The whole process, start to exit (includes start-up and writing outputs).
    pub wall_s: f64,
    /// Building the network.
    pub construction_s: f64,
    /// Creating populations (construction).
    pub create_s: Option<f64>,
    /// Drawing connectivity (construction).
    pub connect_s: Option<f64>,
    /// Preparing buffers, inputs and recorders (construction).
    pub prepare_s: Option<f64>,
    /// Simulating.
    pub simulation_s: f64,
    /// Inputs phase (simulation).
    pub inputs_s: Option<f64>,
    /// Neuron update and spike detection (simulation).
    pub integrate_s: Option<f64>,
    /// Spike exchange between ranks (simulation).
    pub exchange_s: Option<f64>,
    /// Delivery into ring buffers (simulation).
    pub deliver_s: Option<f64>,
    /// Plasticity (simulation).
    pub plasticity_s: Option<f64>,
    /// Recording (simulation).
    pub record_s: Option<f64>,
    /// Checkpoint phase (simulation).
    pub checkpoint_s: Option<f64>,
}

impl Timers {
    /// The construction phases as `(name, seconds)`, those measured only.
    pub fn construction_phases(&self) -> Vec<(&'static str, f64)> {
        [
            ("create", self.create_s),
            ("connect", self.connect_s),
            ("prepare", self.prepare_s),
        ]
        .into_iter()
        .filter_map(|(n, t)| t.map(|t| (n, t)))
        .collect()
    }

    /// The simulation phases as `(name, seconds)`, those measured only, in schedule order.
    pub fn simulation_phases(&self) -> Vec<(&'static str, f64)> {
        [
            ("inputs", self.inputs_s),
            ("integrate", self.integrate_s),
            ("exchange", self.exchange_s),
            ("deliver", self.deliver_s),
            ("plasticity", self.plasticity_s),
            ("record", self.record_s),
            ("checkpoint", self.checkpoint_s),
        ]
        .into_iter()
        .filter_map(|(n, t)| t.map(|t| (n, t)))
        .collect()
    }

    /// Sets a simulation phase by its schedule name; false for an unknown name.
    pub fn set_phase(&mut self, name: &str, seconds: f64) -> bool {
        let slot = match name {
            "inputs" => &mut self.inputs_s,
            "integrate" => &mut self.integrate_s,
            "exchange" => &mut self.exchange_s,
            "deliver" => &mut self.deliver_s,
            "plasticity" => &mut self.plasticity_s,
            "record" => &mut self.record_s,
            "checkpoint" => &mut self.checkpoint_s,
            _ => return false,
        };
        *slot = Some(seconds);
        true
    }
}

/// What a run measured besides time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Simulation wall time per simulated time.
    pub real_time_factor: f64,
    /// Peak resident memory of the simulating process \[bytes\] (`None` when unknown).
    pub peak_rss_bytes: Option<u64>,
    /// Neurons.
    pub neurons: u64,
    /// Synapses.
    pub synapses: u64,
    /// Spikes emitted.
    pub spikes: u64,
    /// CPU time of the process, user plus system \[s\] (`None` when unknown).
    pub cpu_s: Option<f64>,
}

/// The build, the machine and the moment of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Start of the run, UTC, RFC 3339 (`2026-06-10T12:00:00Z`).
    pub date: String,
    /// Git commit of the repository holding the suite (`None` outside a repository).
    pub git_commit: Option<String>,
    /// Whether tracked files differed from that commit.
    pub git_dirty: Option<bool>,
    /// Myelin's crate version.
    pub crate_version: String,
    /// `rustc --version` of the toolchain on PATH when the benchmark ran.
    pub rustc: Option<String>,
    /// Cargo profile of the `myelin` binary (`release` or `debug`).
    pub profile: String,
    /// Enabled cargo features that change what runs (e.g. `cuda`, `mpi`).
    pub features: Vec<String>,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// CPUs this process may use (affinity and cgroup limits).
    pub available_cpus: usize,
    /// Physical memory \[bytes\].
    pub memory_bytes: u64,
    /// Operating system (`PRETTY_NAME` of os-release).
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// Load average over 1, 5 and 15 minutes just before the run.
    pub load_avg: [f64; 3],
    /// Mean number of CPUs kept busy by *other* processes during the run (all busy CPU
    /// time of the machine less the run's own, over its wall time); `None` when unknown.
    /// Above about 0.5 the timings were taken under load.
    pub foreign_load: Option<f64>,
    /// Extra facts a simulator adds (e.g. NEST's build options).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// The machine's identity for "the same machine" comparisons: host name and CPU.
    pub fn machine(&self) -> String {
        format!("{} ({})", self.hostname, self.cpu_model)
    }
}

/// The identity of a case across runs: what must be equal for two runs to be compared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseKey {
    /// The case's name.
    pub case: String,
    /// The simulator.
    pub simulator: String,
    /// Scale, formatted.
    pub scale: String,
    /// Threads.
    pub threads: usize,
    /// Ranks.
    pub ranks: usize,
    /// Backend.
    pub backend: String,
    /// Simulated time, formatted \[ms\].
    pub duration: String,
}

impl std::fmt::Display for CaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}, {} ms, scale {}, {} thread{}, {} rank{}, {}]",
            self.case,
            self.simulator,
            self.duration,
            self.scale,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.ranks,
            if self.ranks == 1 { "" } else { "s" },
            self.backend
        )
    }
}

/// A number without floating-point noise (at most 6 decimals, trailing zeros cut).
pub fn number_text(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Record {
    /// The record's case key.
    pub fn key(&self) -> CaseKey {
        CaseKey {
            case: self.case.clone(),
            simulator: self.simulator.clone(),
            scale: number_text(self.params.scale),
            threads: self.params.threads,
            ranks: self.params.ranks,
            backend: self.params.backend.clone(),
            duration: number_text(self.params.duration_ms),
        }
    }

    /// One line of a store file (no trailing newline).
    pub fn to_line(&self) -> Result<String, BenchError> {
        serde_json::to_string(self)
            .map_err(|e| BenchError::Option(format!("cannot serialise a record: {e}")))
    }

    /// Parses one line of a store file, checking the schema version first so that a
    /// record of another version is named as such.
    pub fn from_line(line: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        match v.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "record of schema_version {n}; this myelin reads version {SCHEMA_VERSION}"
                ));
            }
            None => return Err("no schema_version: not a benchmark record".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("not a benchmark record: {e}"))
    }
}

/// A set of records read from store files, in file and line order.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// The records.
    pub records: Vec<Record>,
    /// The files they came from.
    pub files: Vec<PathBuf>,
}

impl Store {
    /// Reads a store: a folder (every `*.jsonl` file in it, sorted by name) or one file.
    /// A folder that does not exist is an empty store; blank lines are skipped.
    pub fn read(path: &Path) -> Result<Self, BenchError> {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| BenchError::Read {
                    path: path.to_path_buf(),
                    source,
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == STORE_EXTENSION) && p.is_file())
                .collect();
            files.sort();
            files
        } else if path.exists() {
            vec![path.to_path_buf()]
        } else {
            return Err(BenchError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such store folder or record file",
                ),
            });
        };
        let mut records = Vec::new();
        for f in &files {
            records.extend(read_file(f)?);
        }
        Ok(Self { records, files })
    }

    /// Reads a store folder that may not exist yet (an empty store then).
    pub fn read_or_empty(path: &Path) -> Result<Self, BenchError> {
        if path.exists() {
            Self::read(path)
        } else {
            Ok(Self::default())
        }
    }
}

/// Reads the records of one store file.
pub fn read_file(file: &Path) -> Result<Vec<Record>, BenchError> {
    let text = std::fs::read_to_string(file).map_err(|source| BenchError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            Record::from_line(l).map_err(|message| BenchError::Record {
                file: file.to_path_buf(),
                line: i + 1,
                message,
            })
        })
        .collect()
}

/// The store file of a suite in a store folder: `STORE/SUITE.jsonl`.
pub fn store_file(store: &Path, suite: &str) -> PathBuf {
    store.join(format!("{suite}.{STORE_EXTENSION}"))
}

/// Appends records to a store file (creating it and its folder), one line each, under an
/// exclusive lock so that concurrent writers do not interleave.
pub fn append(file: &Path, records: &[Record]) -> Result<(), BenchError> {
    let werr = |source| BenchError::Write {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut text = String::new();
    for r in records {
        text.push_str(&r.to_line()?);
        text.push('\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(werr)?;
    f.lock().map_err(werr)?;
    f.write_all(text.as_bytes()).map_err(werr)?;
    f.flush().map_err(werr)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record with every field set, for tests here and elsewhere in the module.
    pub(crate) fn sample(case: &str, simulator: &str, repeat: usize, simulation_s: f64) -> Record {
        Record {
            schema_version: SCHEMA_VERSION,
            run_id: "20260610T120000Z-1".into(),
            suite: "smoke".into(),
            case: case.into(),
            simulator: simulator.into(),
            simulator_version: "0.1.0".into(),
            repeat,
            repeats: 3,
            params: CaseParams {
                scene: "../../scenes/brunel.ron".into(),
                scene_hash: "ab".repeat(32),
                seed: 12345,
                scale: 0.5,
                threads: 2,
                ranks: 1,
                backend: "cpu".into(),
                dt_ms: 0.1,
                duration_ms: 100.0,
            },
            timers: Timers {
                wall_s: simulation_s + 0.7,
                construction_s: 0.5,
                create_s: Some(0.01),
                connect_s: Some(0.4),
                prepare_s: Some(0.09),
                simulation_s,
                inputs_s: Some(0.1 * simulation_s),
                integrate_s: Some(0.3 * simulation_s),
                exchange_s: Some(0.0),
                deliver_s: Some(0.5 * simulation_s),
                plasticity_s: Some(0.0),
                record_s: Some(0.05 * simulation_s),
                checkpoint_s: Some(0.0),
            },
            results: Results {
                real_time_factor: simulation_s / 0.1,
                peak_rss_bytes: Some(123_456_789),
                neurons: 12_500,
                synapses: 15_625_000,
                spikes: 98_765,
                cpu_s: Some(2.0 * simulation_s),
            },
            meta: Metadata {
                date: "2026-06-10T12:00:00Z".into(),
                git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                git_dirty: Some(false),
                crate_version: "0.1.0".into(),
                rustc: Some("rustc 1.95.0 (59807616e 2026-04-14)".into()),
                profile: "release".into(),
                features: vec![],
                cpu_model: "AMD EPYC".into(),
                cpus: 2,
                available_cpus: 2,
                memory_bytes: 24 << 30,
                os: "Debian GNU/Linux 13".into(),
                kernel: "6.1.0".into(),
                hostname: "bench-host".into(),
                load_avg: [0.25, 0.5, 1.125],
                foreign_load: Some(0.03125),
                extra: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn a_record_round_trips_through_a_store_line() {
        let mut r = sample("brunel", MYELIN, 1, 1.2345678901234567);
        r.meta
            .extra
            .insert("nest_threads_model".into(), "openmp".into());
        r.timers.exchange_s = None;
        let line = r.to_line().unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(Record::from_line(&line).unwrap(), r);
    }

    #[test]
    fn records_of_another_schema_version_are_named_as_such() {
        let mut v = serde_json::to_value(sample("x", MYELIN, 0, 1.0)).unwrap();
        v["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
        let err = Record::from_line(&v.to_string()).unwrap_err();
        assert!(err.contains("schema_version 2"), "{err}");
        let err = Record::from_line(r#"{"a": 1}"#).unwrap_err();
        assert!(err.contains("no schema_version"), "{err}");
    }

    #[test]
    fn a_store_appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = store_file(&dir.path().join("store"), "smoke");
        let a = sample("a", MYELIN, 0, 1.0);
        let b = sample("b", "nest", 0, 2.0);
        append(&file, std::slice::from_ref(&a)).unwrap();
        append(&file, std::slice::from_ref(&b)).unwrap();
        let store = Store::read(&dir.path().join("store")).unwrap();
        assert_eq!(store.records, vec![a.clone(), b]);
        assert_eq!(Store::read(&file).unwrap().records.len(), 2);
        std::fs::write(&file, format!("{}\nnot json\n", a.to_line().unwrap())).unwrap();
        let err = Store::read(&file).unwrap_err().to_string();
        assert!(err.contains("smoke.jsonl:2: not JSON"), "{err}");
        assert!(Store::read(&dir.path().join("missing")).is_err());
        assert!(
            Store::read_or_empty(&dir.path().join("missing"))
                .unwrap()
                .records
                .is_empty()
        );
    }
}
