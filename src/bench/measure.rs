//! Measuring one child process: wall time, peak resident memory, CPU time and the load
//! other processes put on the machine meanwhile.
//!
//! `getrusage(RUSAGE_CHILDREN)` gives the peak memory of the largest child waited for so
//! far, so a process that runs many benchmarks cannot tell one child's peak from an
//! earlier one's. Each run is therefore started through `myelin bench measure`, a small
//! process whose only child is the run: its `RUSAGE_CHILDREN` is exactly the run's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::BenchError;
use super::meta::{load_avg, machine_busy_s};

/// Bytes per unit of `ru_maxrss` (kibibytes on Linux).
const MAXRSS_UNIT_BYTES: u64 = 1024;

/// What `myelin bench measure` reports about its child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The child's exit code (`None` when a signal ended it).
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Wall time from start to exit \[s\].
    pub wall_s: f64,
    /// Peak resident memory \[bytes\].
    pub peak_rss_bytes: Option<u64>,
    /// User plus system CPU time \[s\].
    pub cpu_s: Option<f64>,
    /// Mean CPUs kept busy by other processes meanwhile.
    pub foreign_load: Option<f64>,
    /// Load average (1, 5, 15 min) just before the start.
    pub load_avg: [f64; 3],
}

impl Measurement {
    /// Whether the child exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// How the child ended, in words.
    pub fn describe_exit(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "ended in an unknown way".into(),
        }
    }
}

/// Runs `program args` to its end (standard streams inherited) and measures it. Call it
/// only in a process that has no other children (see the module's documentation).
pub fn measure(program: &OsString, args: &[OsString]) -> Result<Measurement, BenchError> {
    use std::os::unix::process::ExitStatusExt as _;
    let load = load_avg().unwrap_or([0.0; 3]);
    let busy0 = machine_busy_s();
    let t0 = Instant::now();
    let status: ExitStatus = Command::new(program)
        .args(args)
        .status()
        .map_err(|source| BenchError::Spawn {
            program: program.to_string_lossy().into_owned(),
            source,
        })?;
    let wall_s = t0.elapsed().as_secs_f64();
    let busy1 = machine_busy_s();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok();
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
    let cpu_s = usage
        .as_ref()
        .map(|u| secs(u.user_time()) + secs(u.system_time()));
    let peak_rss_bytes = usage
        .as_ref()
        .and_then(|u| u64::try_from(u.max_rss()).ok())
        .map(|k| k * MAXRSS_UNIT_BYTES);
    let foreign_load = match (busy0, busy1, cpu_s) {
        (Some(a), Some(b), Some(c)) if wall_s > 0.0 => Some(((b - a - c) / wall_s).max(0.0)),
        _ => None,
    };
    Ok(Measurement {
        exit_code: status.code(),
        signal: status.signal(),
        wall_s,
        peak_rss_bytes,
        cpu_s,
        foreign_load,
        load_avg: load,
    })
}

/// `myelin bench measure --report FILE -- PROGRAM ARGS...`: measures the command and writes
/// the [`Measurement`] as JSON to `report`.
pub fn measure_to_file(report: &Path, command: &[OsString]) -> Result<(), BenchError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| BenchError::Option("bench measure: no command given".into()))?;
    let m = measure(program, args)?;
    let text = serde_json::to_string_pretty(&m)
        .map_err(|e| BenchError::Option(format!("cannot serialise a measurement: {e}")))?;
    std::fs::write(report, text).map_err(|source| BenchError::Write {
        path: report.to_path_buf(),
        source,
    })
}

/// Runs `program args` through `myelin bench measure` (this very executable), with its
/// standard output and error written to `log`, and returns the measurement.
pub fn run_measured(
    program: &Path,
    args: &[OsString],
    log: &Path,
    report: &Path,
) -> Result<Measurement, BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Spawn {
        program: "myelin (current executable)".into(),
        source,
    })?;
    let out = std::fs::File::create(log).map_err(|source| BenchError::Write {
        path: log.to_path_buf(),
        source,
    })?;
    let err = out.try_clone().map_err(|source| BenchError::Write {
        path: log.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(report);
    let status = Command::new(&exe)
        .arg("bench")
        .arg("measure")
        .arg("--report")
        .arg(report)
        .arg("--")
        .arg(program)
        .args(args)
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|source| BenchError::Spawn {
            program: exe.display().to_string(),
            source,
        })?;
    let text = std::fs::read_to_string(report).map_err(|source| BenchError::Read {
        path: PathBuf::from(report),
        source: std::io::Error::new(
            source.kind(),
            format!(
                "the measuring process ({status}) left no report: {source}; log: {}",
                tail(log, LOG_TAIL_LINES)
            ),
        ),
    })?;
    serde_json::from_str(&text).map_err(|e| BenchError::Record {
        file: report.to_path_buf(),
        line: 1,
        message: format!("not a measurement: {e}"),
    })
}

/// Lines of a failed run's log quoted in its error.
pub const LOG_TAIL_LINES: usize = 15;

/// The last `n` lines of a text file (empty when unreadable).
pub fn tail(file: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(file).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
