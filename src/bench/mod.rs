//! Continuous benchmarking (`myelin bench`), after beNNch: a *suite* (RON, in
//! `benches/suites/`) names scenes and the scales, threads, ranks, backends, repeats and
//! simulated time to run them with; every run is a fresh `myelin run` process whose timers,
//! peak memory and counts are stored, with the metadata that makes the number reproducible,
//! as one JSON record per line in a store (`bench-results/SUITE.jsonl`). Peers (NEST)
//! write records of the same schema through a Python adapter. Stores are compared with a
//! noise-aware verdict and plotted over the history.
//!
//! The record schema, the suite format and the statistics are documented in
//! `docs/benchmarking.md`.

pub mod cli;
pub mod compare;
pub mod exec;
pub mod measure;
pub mod meta;
pub mod plot;
pub mod record;
pub mod report;
pub mod stats;
pub mod suite;

use std::path::PathBuf;

pub use compare::{CaseComparison, Comparison, Metric, compare_records};
pub use record::{CaseKey, Record, SCHEMA_VERSION, Store};
pub use stats::{RatioCi, Verdict};
pub use suite::{Case, Suite};

/// Errors of `myelin bench` and its subcommands.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A suite file does not parse.
    #[error("{}:{line}:{col}: {message}", file.display())]
    SuiteSyntax {
        /// The suite file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// A suite parses but is wrong (a missing scene, an empty axis, ...).
    #[error("{}: {message}", file.display())]
    Suite {
        /// The suite file.
        file: PathBuf,
        /// What is wrong, naming the case.
        message: String,
    },
    /// A suite name matches no file.
    #[error("no suite {name:?}: neither a file nor one of {}", searched.join(", "))]
    NoSuite {
        /// The name given.
        name: String,
        /// The places looked at.
        searched: Vec<String>,
    },
    /// A line of a store is not a record this version reads.
    #[error("{}:{line}: {message}", file.display())]
    Record {
        /// The store file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A benchmark run failed.
    #[error("{case}: repeat {repeat} failed: {message}")]
    RunFailed {
        /// The case.
        case: String,
        /// The repeat (0-based).
        repeat: usize,
        /// Why, with the tail of its output.
        message: String,
    },
    /// A peer simulator cannot be used.
    #[error("peer {peer}: {message}")]
    Peer {
        /// The peer's name.
        peer: String,
        /// Why.
        message: String,
    },
    /// Drawing a figure failed.
    #[error("{}: {message}", file.display())]
    Plot {
        /// The figure file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// Nothing to work on.
    #[error("{0}")]
    Empty(String),
    /// An option is invalid.
    #[error("{0}")]
    Option(String),
}
