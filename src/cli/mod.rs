//! The `resume`, `batch` and `inspect` subcommands.

mod batch;
mod manifest;
pub mod partition;

use std::path::{Path, PathBuf};

use clap::Args;
use myelin::runner::{ResumeOptions, resume_run};

/// Exit status of `myelin resume` when it could not resume (nothing was simulated): a
/// batch then starts the job over.
pub const EXIT_CANNOT_RESUME: i32 = 3;

/// Arguments of `myelin resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// A checkpoint file, or a folder of them (its newest usable one is taken).
    pub checkpoint: PathBuf,
    /// Simulated time to run from the checkpoint [ms] [default: to the run's end].
    #[arg(long, value_name = "MS")]
    pub duration: Option<f64>,
    /// The run's output folder [default: the one the checkpoint names].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not show the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Write a checkpoint every MS of simulated time [default: as the run did].
    #[arg(long, value_name = "MS")]
    pub checkpoint_every: Option<f64>,
    /// Folder of new checkpoints [default: the folder of the checkpoint resumed from].
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Number of checkpoints kept [default: as the run did].
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Spike exchange between MPI ranks: collective or p2p (under `mpirun -np N`, N > 1,
    /// resuming from the checkpoint folder of a run on N ranks).
    #[arg(long, default_value = "collective")]
    pub comm: myelin::distributed::CommMode,
}

/// Arguments of `myelin batch`.
#[derive(Args, Debug)]
pub struct BatchArgs {
    /// The sweep file (RON).
    pub sweep: PathBuf,
    /// Jobs run at once, each in its own process [default: the number of cores].
    #[arg(long, value_name = "K")]
    pub jobs: Option<usize>,
    /// Output folder of the batch [default: the sweep's `out`, else out/SWEEP_STEM].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Threads per job [default: the sweep's, else 1].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print only the final table.
    #[arg(long)]
    pub quiet: bool,
}

/// `myelin resume`: continues a run and prints its summary; exits with
/// [`EXIT_CANNOT_RESUME`] when nothing could be resumed.
pub fn resume(args: &ResumeArgs) -> Result<(), String> {
    let opts = ResumeOptions {
        duration: args.duration,
        out: args.out.clone(),
        threads: args.threads,
        progress: !args.quiet,
        checkpoint_every: args.checkpoint_every,
        checkpoint_dir: args.checkpoint_dir.clone(),
        keep: args.keep,
        comm: args.comm,
    };
    match resume_run(&args.checkpoint, &opts, |_| {}) {
        Ok(summary) => {
            for s in &summary.skipped_checkpoints {
                eprintln!("warning: skipped an unusable checkpoint: {s}");
            }
            if myelin::runner::is_root() {
                out!("{}", summary.table());
            }
            Ok(())
        }
        Err(e) if e.is_resume_setup() && myelin::runner::is_root() => {
            eprintln!("error: {e}");
            std::process::exit(EXIT_CANNOT_RESUME);
        }
        // Another rank: rank 0 reports (the same error, as a rule) and ends the job.
        Err(e) if e.is_resume_setup() => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// `myelin inspect`: prints what an HDF5 file holds.
pub fn inspect(file: &Path) -> Result<(), String> {
    let text = myelin::io::checkpoint::inspect(file).map_err(|e| e.to_string())?;
    out!("{text}");
    Ok(())
}

/// `myelin batch`: runs a sweep's jobs, resuming an interrupted batch.
pub fn batch(args: &BatchArgs) -> Result<(), String> {
    batch::run(args)
}
