//! Distributed runs under a real `mpirun` (issue 8), built only with `--features mpi`:
//! `scripts/mpi-check.sh` runs Brunel, the reduced microcircuit and a heterogeneous-delay
//! Brunel on 2 and 3 ranks in both exchange modes and compares every spike with the
//! single-process run, then checks that bad input and a killed rank end the job.

#![cfg(feature = "mpi")]

use std::process::Command;

#[test]
fn mpi_runs_are_bit_identical_to_one_process_and_failures_end_the_job() {
    if Command::new("mpirun").arg("--version").output().is_err() {
        eprintln!("note: no mpirun on PATH; skipping (scripts/install-deps.sh installs it)");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(format!("{root}/scripts/mpi-check.sh"))
        .env("MYELIN_BIN", env!("CARGO_BIN_EXE_myelin"))
        .current_dir(root)
        .status()
        .expect("scripts/mpi-check.sh starts");
    assert!(
        status.success(),
        "scripts/mpi-check.sh failed ({status}): see its output above"
    );
}
