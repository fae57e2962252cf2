//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `myelin` binary built for these tests.
pub fn myelin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_myelin"))
}

/// Runs `myelin ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    myelin()
        .args(args)
        .output()
        .expect("the myelin binary runs")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Path of a scene under `tests/scenes/`.
pub fn scene(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenes")
        .join(name)
}

/// Spikes recorded under `/spikes/LABEL`: `(times [ms], senders)`.
pub fn read_spikes(file: &Path, label: &str) -> (Vec<f64>, Vec<u32>) {
    let f = hdf5::File::open(file).expect("recordings open");
    let g = f
        .group(&format!("spikes/{label}"))
        .expect("spike group exists");
    let t = g
        .dataset("times")
        .expect("times")
        .read_raw::<f64>()
        .expect("read times");
    let s = g
        .dataset("senders")
        .expect("senders")
        .read_raw::<u32>()
        .expect("read senders");
    (t, s)
}
