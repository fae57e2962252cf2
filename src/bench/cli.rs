//! The `myelin bench` command line: `bench SUITE`, `bench compare`, `bench plot`, and the
//! hidden `bench measure` that wraps each run.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::compare::{CompareOptions, Metric, Pick, compare_records};
use super::exec::{BenchOptions, run_suite};
use super::record::{DEFAULT_STORE, Store};
use super::stats::{DEFAULT_CONFIDENCE, DEFAULT_THRESHOLD};
use super::suite::{LoadedSuite, find};
use super::{BenchError, measure, plot, report};

/// Exit status of `myelin bench compare` when a case regressed.
pub const EXIT_REGRESSION: u8 = 1;

/// Exit status of `myelin bench SUITE` when some cases failed (the others were recorded).
pub const EXIT_FAILED_CASES: u8 = 2;

/// Arguments of `myelin bench`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    /// What to do besides running a suite.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Running a suite.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Arguments of `myelin bench SUITE`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The suite: a name in benches/suites/ (smoke, standard) or a RON file.
    #[arg(required = true)]
    pub suite: Option<String>,
    /// Repeats of every case, overriding the suite.
    #[arg(long, value_name = "N")]
    pub repeats: Option<usize>,
    /// The store folder; records are appended to STORE/SUITE.jsonl.
    #[arg(long, value_name = "STORE", default_value = DEFAULT_STORE)]
    pub out: PathBuf,
    /// Peer simulators to run the same cases (comma-separated): nest.
    #[arg(long, value_delimiter = ',', value_name = "PEERS")]
    pub peers: Vec<String>,
    /// Repeats of the peers' runs [default: as Myelin's].
    #[arg(long, value_name = "N")]
    pub peer_repeats: Option<usize>,
    /// Run only the peers (not Myelin).
    #[arg(long, requires = "peers")]
    pub peers_only: bool,
    /// Python interpreter of the peer adapter [default: $MYELIN_NEST_PYTHON, else python3].
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// Run only this case (repeatable).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Threshold of the comparison with the previous run, in percent.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD * 100.0, value_name = "PERCENT")]
    pub threshold: f64,
    /// List the cases and exit.
    #[arg(long)]
    pub list: bool,
}

/// Subcommands of `myelin bench`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Compare two stores or record files per case; exit status 1 on a regression.
    Compare(CompareArgs),
    /// Draw the figures of a store (PNG and SVG).
    Plot(PlotArgs),
    /// Run a command and write its wall time, peak memory and CPU time (used by `bench`).
    #[command(hide = true)]
    Measure(MeasureArgs),
}

/// Arguments of `myelin bench compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The baseline: a store folder or a record file (its latest run of each case).
    pub base: PathBuf,
    /// The new results: a store folder or a record file (its latest run of each case);
    /// when it is the same as BASE, BASE's previous run is compared with its latest.
    pub new: PathBuf,
    /// Threshold in percent: smaller changes of the median are not called.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD * 100.0, value_name = "PERCENT")]
    pub threshold: f64,
    /// Confidence of the bootstrap interval of the ratio of medians.
    #[arg(long, default_value_t = DEFAULT_CONFIDENCE)]
    pub confidence: f64,
    /// The quantity compared.
    #[arg(long, value_enum, default_value_t = Metric::Rtf)]
    pub metric: Metric,
    /// Take BASE's latest run of a commit starting with this.
    #[arg(long, value_name = "COMMIT")]
    pub base_commit: Option<String>,
    /// Take NEW's latest run of a commit starting with this.
    #[arg(long, value_name = "COMMIT")]
    pub new_commit: Option<String>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `myelin bench plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A store folder or a record file.
    pub store: PathBuf,
    /// Folder of the figures.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only records of this suite.
    #[arg(long)]
    pub suite: Option<String>,
}

/// Arguments of `myelin bench measure`.
#[derive(Args, Debug)]
pub struct MeasureArgs {
    /// Where to write the measurement (JSON).
    #[arg(long)]
    pub report: PathBuf,
    /// The command.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn print(text: &str) {
    let _ = write!(std::io::stdout().lock(), "{text}");
}

/// Runs `myelin bench`; returns the process's exit status.
pub fn main(args: &BenchArgs) -> Result<u8, BenchError> {
    match &args.command {
        Some(BenchCommand::Compare(c)) => compare(c),
        Some(BenchCommand::Plot(p)) => {
            let mut records = Store::read(&p.store)?.records;
            if let Some(s) = &p.suite {
                records.retain(|r| &r.suite == s);
            }
            let files = plot::write_plots(&p.out, &records)?;
            for f in files {
                print(&format!("{}\n", f.display()));
            }
            Ok(0)
        }
        Some(BenchCommand::Measure(m)) => {
            measure::measure_to_file(&m.report, &m.command)?;
            Ok(0)
        }
        None => run(&args.run),
    }
}

fn check_threshold(percent: f64) -> Result<f64, BenchError> {
    if !(percent >= 0.0 && percent.is_finite()) {
        return Err(BenchError::Option(format!(
            "--threshold {percent} must be a non-negative percentage"
        )));
    }
    Ok(percent / 100.0)
}

fn run(a: &RunArgs) -> Result<u8, BenchError> {
    let name = a
        .suite
        .as_deref()
        .ok_or_else(|| BenchError::Option("give a suite".into()))?;
    let threshold = check_threshold(a.threshold)?;
    if a.repeats == Some(0) || a.peer_repeats == Some(0) {
        return Err(BenchError::Option("repeats must be at least 1".into()));
    }
    let suite = LoadedSuite::load(&find(name)?)?;
    if a.list {
        for c in suite.cases(&a.cases) {
            print(&format!(
                "{}  {}  {} repeat(s)\n",
                c.label(),
                c.scene.display(),
                a.repeats.unwrap_or(c.repeats)
            ));
        }
        for p in &a.peers {
            for c in suite.peer_cases(p, &a.cases) {
                print(&format!("{}  {}\n", c.label(), c.scene.display()));
            }
        }
        return Ok(0);
    }
    let exe = std::env::current_exe().map_err(|source| BenchError::Spawn {
        program: "myelin (current executable)".into(),
        source,
    })?;
    if cfg!(debug_assertions) {
        say(
            "warning: this is a debug build of myelin; its timings are not representative (use --release)",
        );
    }
    let opts = BenchOptions {
        store: a.out.clone(),
        repeats: a.repeats,
        peers: a.peers.clone(),
        peer_repeats: a.peer_repeats,
        peers_only: a.peers_only,
        python: a.python.clone(),
        cases: a.cases.clone(),
        exe,
    };
    say(&format!(
        "suite {} ({}), store {}",
        suite.suite.name,
        suite.file.display(),
        super::record::store_file(&a.out, &suite.suite.name).display()
    ));
    let outcome = run_suite(&suite, &opts, &mut |l| say(l))?;
    print("\n");
    print(&report::report(
        &outcome.records,
        &outcome.history,
        threshold,
        DEFAULT_CONFIDENCE,
    ));
    print(&format!(
        "\n{} record(s) appended to {} (run {})\n",
        outcome.records.len(),
        outcome.store_file.display(),
        outcome.run_id
    ));
    for s in &outcome.skipped {
        say(&format!("skipped: {s}"));
    }
    for f in &outcome.failures {
        say(&format!("failed: {f}"));
    }
    if outcome.records.is_empty() {
        Err(BenchError::Empty("no case ran".into()))
    } else if outcome.failures.is_empty() {
        Ok(0)
    } else {
        Ok(EXIT_FAILED_CASES)
    }
}

fn compare(c: &CompareArgs) -> Result<u8, BenchError> {
    let threshold = check_threshold(c.threshold)?;
    if !(c.confidence > 0.0 && c.confidence < 1.0) {
        return Err(BenchError::Option(format!(
            "--confidence {} must lie between 0 and 1",
            c.confidence
        )));
    }
    let base = Store::read(&c.base)?;
    let same = std::fs::canonicalize(&c.base).ok() == std::fs::canonicalize(&c.new).ok();
    let new = if same {
        base.clone()
    } else {
        Store::read(&c.new)?
    };
    let opts = CompareOptions {
        metric: c.metric,
        threshold,
        confidence: c.confidence,
        base: Pick {
            commit: c.base_commit.clone(),
            hostname: None,
            previous: same && c.base_commit.is_none() && c.new_commit.is_none(),
        },
        new: Pick {
            commit: c.new_commit.clone(),
            hostname: None,
            previous: false,
        },
    };
    let cmp = compare_records(&base.records, &new.records, &opts);
    if same && !c.json {
        print(&format!(
            "{}: each case's {} (BASE) against its latest run (NEW)\n",
            c.base.display(),
            if opts.base.previous {
                "previous run"
            } else {
                "selected run"
            }
        ));
    }
    if c.json {
        let text = serde_json::to_string_pretty(&cmp)
            .map_err(|e| BenchError::Option(format!("cannot serialise the comparison: {e}")))?;
        print(&format!("{text}\n"));
    } else {
        print(&cmp.table());
    }
    Ok(if cmp.regressions() > 0 {
        EXIT_REGRESSION
    } else {
        0
    })
}
