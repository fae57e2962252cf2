//! The `myelin` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use myelin::runner::{RunOptions, check_scene, run_scene};

/// `print!` to standard output that ignores a closed pipe (`myelin analyze | head` must not
/// panic when `head` stops reading).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` counterpart of [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod cli;

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
        /// Write a checkpoint every MS of simulated time (and at the end).
        #[arg(long, value_name = "MS")]
        checkpoint_every: Option<f64>,
        /// Folder of the checkpoints [default: OUT/checkpoints].
        #[arg(long, value_name = "DIR", requires = "checkpoint_every")]
        checkpoint_dir: Option<PathBuf>,
        /// Number of checkpoints kept (the newest).
        #[arg(long, value_name = "N", default_value_t = myelin::runner::DEFAULT_KEEP)]
        keep: usize,
        /// Spike exchange between MPI ranks: collective (allgather) or p2p (only to ranks
        /// holding targets). Used when run under `mpirun -np N` with N > 1.
        #[arg(long, default_value = "collective")]
        comm: myelin::distributed::CommMode,
    },
    /// Show how a scene would be split over MPI ranks (a dry run: nothing is built).
    Partition {
        /// The scene file (RON).
        scene: PathBuf,
        /// Number of ranks (1 to 100,000).
        #[arg(long)]
        ranks: usize,
        /// Mean firing rate assumed for the traffic estimates [Hz].
        #[arg(long, default_value_t = cli::partition::DEFAULT_RATE_HZ)]
        rate: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Continue a run from a checkpoint (a file, or a folder: its newest usable one).
    Resume(cli::ResumeArgs),
    /// Run a sweep of jobs (a grid of scene parameters times seeds), resumably.
    Batch(cli::BatchArgs),
    /// Show what a checkpoint, a recording or any HDF5 file holds.
    Inspect {
        /// The HDF5 file.
        file: PathBuf,
    },
    /// Analyse a run's spike recordings: rates, irregularity, synchrony; table, JSON, plots.
    Analyze {
        /// The run's output folder (holding recordings.h5).
        out_dir: PathBuf,
        /// Start of the window [ms] (excludes the transient).
        #[arg(long, default_value_t = 500.0)]
        from: f64,
        /// End of the window [ms] [default: the end of the recording].
        #[arg(long)]
        to: Option<f64>,
        /// Print the statistics as one JSON object keyed by population instead of a table.
        #[arg(long)]
        json: bool,
        /// Include per-neuron rates and CVs in the JSON.
        #[arg(long)]
        per_neuron: bool,
        /// Do not draw the figures.
        #[arg(long)]
        no_plots: bool,
    },
    /// Benchmark a suite (records in a store), or compare and plot stored results.
    Bench(myelin::bench::cli::BenchArgs),
    /// Validate a scene without running it.
    Check {
        /// The scene file (RON).
        scene: PathBuf,
        /// Print the validated scene as JSON (for tools such as the NEST adapter).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Under MPI, `run` and `resume` initialise MPI here and finalises it when `_mpi` drops.
    let _mpi = myelin::runner::mpi_init(matches!(
        cli.command,
        Command::Run { .. } | Command::Resume(_)
    ));
    let result = match cli.command {
        Command::Run { scene, out, threads, seed, duration, overwrite, quiet, backend, checkpoint_every, checkpoint_dir, keep, comm } => (|| {
            let backend: myelin::engine::Backend = backend.parse().map_err(|e: myelin::engine::BackendError| e.to_string())?;
            let opts = RunOptions { out, threads, seed, duration, overwrite, progress: !quiet, checkpoint_every, checkpoint_dir, keep, comm, backend };
            let summary = run_scene(&scene, &opts, |_| {}).map_err(|e| e.to_string())?;
            if myelin::runner::is_root() {
                out!("{}", summary.table());
            }
            Ok::<(), String>(())
        })(),
        Command::Partition { scene, ranks, rate, json } => cli::partition::partition(&scene, ranks, rate, json),
        Command::Resume(args) => cli::resume(&args),
        Command::Batch(args) => cli::batch(&args),
        Command::Inspect { file } => cli::inspect(&file),
        Command::Bench(args) => match myelin::bench::cli::main(&args) {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e.to_string()),
        },
        Command::Analyze { out_dir, from, to, json, per_neuron, no_plots } => analyze(&out_dir, from, to, json, per_neuron, !no_plots),
        Command::Check { scene, json: true } => check_scene(&scene, |_| {})
            .map_err(|e| e.to_string())
            .map(|l| outln!("{}", serde_json::to_string_pretty(&l.scene).expect("scenes serialise"))),
        Command::Check { scene, json: false } => check_scene(&scene, |_| {}).map_err(|e| e.to_string()).map(|l| {
            let neurons: usize = l.scene.populations.iter().map(|p| p.size).sum();
            outln!(
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
        Err(e) => myelin::runner::fail(&e),
    }
}

/// `myelin analyze`: statistics per population over `[from, to)`, written to
/// `OUT/analysis.json` and printed (table or JSON), figures into `OUT/plots/`.
fn analyze(
    dir: &std::path::Path,
    from: f64,
    to: Option<f64>,
    json: bool,
    per_neuron: bool,
    plots: bool,
) -> Result<(), String> {
    use myelin::analysis;
    let (trains, _dt) =
        analysis::read_spikes(&dir.join("recordings.h5")).map_err(|e| e.to_string())?;
    let summary: Option<serde_json::Value> = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let end = to
        .or_else(|| summary.as_ref().and_then(|s| s["duration_ms"].as_f64()))
        .or_else(|| {
            trains
                .iter()
                .flat_map(|t| t.times.iter().copied())
                .reduce(f64::max)
        })
        .unwrap_or(0.0);
    let stats = analysis::analyze(&trains, from, end, true).map_err(|e| e.to_string())?;
    let keyed = |with_arrays: bool| -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for s in &stats {
            let mut v = serde_json::to_value(s).expect("stats serialise");
            if !with_arrays && let Some(o) = v.as_object_mut() {
                o.remove("rates_hz");
                o.remove("cvs");
            }
            m.insert(s.population.clone(), v);
        }
        serde_json::Value::Object(m)
    };
    let weights = analysis::weight_stats(
        &analysis::read_weights(&dir.join("recordings.h5")).map_err(|e| e.to_string())?,
    );
    let file = dir.join("analysis.json");
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "from_ms": from,
        "to_ms": end,
        "populations": keyed(per_neuron),
        "weights": weights,
    }))
    .expect("json");
    std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let mut weight_plots = Vec::new();
    if plots {
        analysis::write_plots(&dir.join("plots"), &trains, &stats, from, end)?;
        weight_plots = analysis::write_weight_plots(&dir.join("plots"), &weights)?;
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&keyed(per_neuron)).expect("json")
        );
    } else {
        out!("{}", analysis::table(&stats, from, end));
        out!("{}", analysis::weight_table(&weights));
        outln!(
            "written: {}{}",
            file.display(),
            if plots {
                format!(
                    ", {}/{{raster,rates_hist,rates_box{}}}.{{png,svg}}",
                    dir.join("plots").display(),
                    if weight_plots.is_empty() {
                        ""
                    } else {
                        ",weights"
                    }
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
