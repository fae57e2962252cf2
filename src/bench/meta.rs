//! The metadata of a benchmark run: the build (git commit, dirty tree, versions, profile,
//! features), the machine (CPU, memory, OS, host) and the moment (date, load). Everything
//! is read from `/proc`, `/etc/os-release` and read-only `git` and `rustc` calls; what
//! cannot be found is recorded as unknown, never an error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use super::record::Metadata;

/// Written where a fact could not be found.
pub const UNKNOWN: &str = "unknown";

/// Seconds per day, for the calendar arithmetic of [`rfc3339`].
const SECONDS_PER_DAY: u64 = 86_400;

/// Metadata of a run started now, for the repository holding `repo_dir`. The load fields
/// are filled per run by the caller.
pub fn collect(repo_dir: &Path) -> Metadata {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| UNKNOWN.into());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count()
        .max(1);
    let (git_commit, git_dirty) = git(repo_dir);
    Metadata {
        date: rfc3339(SystemTime::now()),
        git_commit,
        git_dirty,
        crate_version: env!("CARGO_PKG_VERSION").into(),
        rustc: command_line("rustc", &["--version"], None),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        features: features(),
        cpu_model,
        cpus,
        available_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: meminfo_total().unwrap_or(0),
        os: os_name(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        load_avg: load_avg().unwrap_or([0.0; 3]),
        foreign_load: None,
        extra: Default::default(),
    }
}

/// The cargo features of this build that change what runs. The engine has none yet (no
/// `cuda`, no `mpi`); the CUDA backend is probed instead, so the list fills itself once
/// the feature exists.
fn features() -> Vec<String> {
    let mut f = Vec::new();
    if myelin_engine::Backend::Cuda.ensure_available().is_ok() {
        f.push("cuda".to_string());
    }
    f
}

/// `(commit, dirty)` of the git repository holding `dir`, by read-only git calls
/// (`--no-optional-locks`: no index refresh is written).
fn git(dir: &Path) -> (Option<String>, Option<bool>) {
    let commit = command_line("git", &["rev-parse", "HEAD"], Some(dir));
    let dirty = commit.as_ref().and_then(|_| {
        let out = Command::new("git")
            .args([
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .current_dir(dir)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| !String::from_utf8_lossy(&out.stdout).trim().is_empty())
    });
    (commit, dirty)
}

/// The first line of a command's output, `None` when it fails.
fn command_line(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut c = Command::new(program);
    c.args(args).stderr(Stdio::null()).stdin(Stdio::null());
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let out = c.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| UNKNOWN.into())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.into())
}

/// Physical memory \[bytes\] from `/proc/meminfo`.
fn meminfo_total() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = t
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Load average over 1, 5 and 15 minutes.
pub fn load_avg() -> Option<[f64; 3]> {
    let t = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = t.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Busy CPU time of the whole machine so far \[s\]: every CPU's time not idle nor waiting
/// for I/O, from the first line of `/proc/stat`.
pub fn machine_busy_s() -> Option<f64> {
    /// Clock ticks per second of `/proc/stat` (`USER_HZ`, 100 on every Linux ABI).
    const USER_HZ: f64 = 100.0;
    /// Columns of the `cpu` line that are idle time (idle, iowait).
    const IDLE_COLUMNS: [usize; 2] = [3, 4];
    /// Columns counted (user .. steal; guest time is already inside user).
    const COUNTED: usize = 8;
    let t = std::fs::read_to_string("/proc/stat").ok()?;
    let line = t.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .take(COUNTED)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| !IDLE_COLUMNS.contains(i))
        .map(|(_, t)| t)
        .sum();
    Some(busy as f64 / USER_HZ)
}

/// A time as RFC 3339 in UTC, to the second (`2026-06-10T12:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / SECONDS_PER_DAY, secs % SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The same moment in the compact form used in run ids (`20260610T120000Z`).
pub fn compact_date(t: SystemTime) -> String {
    rfc3339(t).replace(['-', ':'], "")
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // the last second of Feb 2024
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59Z");
        assert_eq!(compact_date(t), "20240229T235959Z");
    }

    #[test]
    fn the_machine_is_described() {
        let m = collect(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(m.cpus >= 1 && m.available_cpus >= 1);
        assert!(m.memory_bytes > 0);
        assert_ne!(m.hostname, "");
        assert_eq!(m.crate_version, env!("CARGO_PKG_VERSION"));
        assert!(machine_busy_s().is_some_and(|b| b > 0.0));
    }
}
