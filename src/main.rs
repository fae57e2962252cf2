//! The `myelin` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use myelin::runner::{RunOptions, check_scene, run_scene};

/// Myelin: simulate large spiking neural networks described in RON scenes.
#[derive(Parser)]
#[command(name = "myelin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scene and write its recordings and summary.
    Run {
        /// The scene file (RON).
        scene: PathBuf,
        /// Output folder [default: out/SCENE_STEM].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Seed, overriding the scene's.
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated time [ms], overriding the scene's.
        #[arg(long)]
        duration: Option<f64>,
        /// Replace the results of a previous run in the output folder.
        #[arg(long)]
        overwrite: bool,
        /// Do not show the progress bar.
        #[arg(long)]
        quiet: bool,
        /// Backend that runs the kernels (cpu, or cuda when built with the `cuda` feature).
        #[arg(long, default_value = "cpu")]
        backend: String,
    },
    /// Validate a scene without running it.
    Check {
        /// The scene file (RON).
        scene: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { scene, out, threads, seed, duration, overwrite, quiet, backend } => (|| {
            let backend: myelin::engine::Backend = backend.parse().map_err(|e: myelin::engine::BackendError| e.to_string())?;
            backend.ensure_available().map_err(|e| e.to_string())?;
            let opts = RunOptions { out, threads, seed, duration, overwrite, progress: !quiet };
            let summary = run_scene(&scene, &opts, |_| {}).map_err(|e| e.to_string())?;
            print!("{}", summary.table());
            Ok::<(), String>(())
        })(),
        Command::Check { scene } => check_scene(&scene, |_| {}).map_err(|e| e.to_string()).map(|l| {
            let neurons: usize = l.scene.populations.iter().map(|p| p.size).sum();
            println!(
                "{}: valid scene: {} populations ({} neurons), {} projections, {} inputs, {} recorders; dt {} ms, duration {} ms",
                scene.display(),
                l.scene.populations.len(),
                neurons,
                l.scene.projections.len(),
                l.scene.inputs.len(),
                l.scene.recorders.len(),
                l.scene.dt,
                l.scene.duration
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
