//! Rank awareness of a run: MPI start-up, the partition of this rank, the exchange per
//! window, and the merge of recordings and summaries on rank 0.
//!
//! Without the `mpi` feature, or when not started by `mpirun` (no MPI environment), the
//! run is the single process it always was and nothing here is used.

use bevy_ecs::prelude::*;
use myelin_components::{SpikeRecorder, Spikes};
use myelin_distributed::partition::{self, Costs, Plan};
use myelin_distributed::{Comm, CommMode, ExchangeTimers, Exchanger, LocalPart};
use myelin_engine::{LocalNeurons, NetworkSpec, SimStep, SimSystems, Simulation};
use serde::Serialize;

use super::RunError;

/// Firing rate assumed by the partitioner's traffic weights [Hz].
const PLAN_RATE_HZ: f64 = 10.0;

/// Keeps MPI initialised while alive (finalised on drop).
pub struct MpiGuard {
    #[cfg(feature = "mpi")]
    _universe: Option<myelin_distributed::comm::Universe>,
}

/// Whether this process was started by an MPI launcher.
fn under_mpi_launcher() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// Initialises MPI when `enable`, the `mpi` feature is built and the process was started
/// by `mpirun`; otherwise does nothing.
pub fn mpi_init(enable: bool) -> MpiGuard {
    #[cfg(feature = "mpi")]
    {
        let universe = (enable && under_mpi_launcher())
            .then(myelin_distributed::comm::init)
            .flatten();
        MpiGuard {
            _universe: universe,
        }
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = (enable, under_mpi_launcher());
        MpiGuard {}
    }
}

/// The communicator of this process: MPI's world when MPI is initialised, else one process.
pub fn communicator() -> Box<dyn Comm> {
    #[cfg(feature = "mpi")]
    {
        if myelin_distributed::comm::initialised() {
            return Box::new(myelin_distributed::comm::Mpi::world());
        }
    }
    Box::new(myelin_distributed::Local)
}

/// Whether this process is rank 0 (or the only process).
pub fn is_root() -> bool {
    communicator().rank() == 0
}

/// Reports `message` and ends: rank 0 prints it; another rank prints it (with its rank)
/// only if rank 0 has not ended the job first. With several ranks the whole job is
/// aborted (MPI_Abort), so no rank is left waiting.
pub fn fail(message: &str) -> std::process::ExitCode {
    let comm = communicator();
    if comm.size() > 1 {
        if comm.rank() == 0 {
            eprintln!("error: {message}");
        } else {
            // The same error usually stops rank 0 too: let it speak first.
            std::thread::sleep(std::time::Duration::from_millis(500));
            eprintln!("error (rank {}): {message}", comm.rank());
        }
        comm.abort(1)
    }
    eprintln!("error: {message}");
    std::process::ExitCode::FAILURE
}

/// The number of ranks an MPI launcher started, from its environment (1 without one).
fn launched_ranks() -> usize {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(1)
}

/// An error when `mpirun` started several copies of a binary built without the `mpi`
/// feature (they would each run the whole network and fight over the output folder).
pub fn check_launch() -> Result<(), RunError> {
    let n = launched_ranks();
    if cfg!(not(feature = "mpi")) && n > 1 {
        return Err(RunError::Option(format!(
            "started as one of {n} MPI ranks, but this myelin was built without the `mpi` feature; rebuild with `cargo build --release --features mpi`"
        )));
    }
    Ok(())
}

/// What of a scene cannot run on several ranks yet: an error naming it, or `None`.
pub fn unsupported(spec: &NetworkSpec) -> Option<String> {
    if let Some(j) = spec.first_plastic() {
        return Some(format!(
            "projection {} is plastic; plasticity runs on one process only (run without mpirun, or with -np 1)",
            j.display_name()
        ));
    }
    if let Some(j) = spec.projections.iter().find(|j| j.warm_start.is_some()) {
        return Some(format!(
            "projection {} is warm-started from a checkpoint; warm starts run on one process only",
            j.display_name()
        ));
    }
    if let Some(r) = spec.first_non_spike_recorder() {
        return Some(format!(
            "recorder {} records state or weights; on several ranks only spike recorders are supported",
            r.label()
        ));
    }
    None
}

/// The folder of rank `rank`'s checkpoints inside a checkpoint folder.
pub fn rank_dir(dir: &std::path::Path, rank: usize) -> std::path::PathBuf {
    dir.join(format!("rank-{rank:05}"))
}

/// The manifest of a distributed run's checkpoints, in the checkpoint folder.
pub const MANIFEST: &str = "manifest.json";

/// What a distributed checkpoint folder holds: written by rank 0 after every rank wrote
/// its file.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Ranks that wrote it (a restart needs as many).
    pub ranks: usize,
    /// Step of the newest checkpoint.
    pub step: u64,
    /// First global neuron id of each rank, then the number of neurons.
    pub bounds: Vec<u64>,
    /// The newest checkpoint of each rank, relative to the folder.
    pub files: Vec<String>,
}

/// Writes the manifest of the checkpoints at `step` (rank 0, after a barrier).
pub fn write_manifest(dir: &std::path::Path, r: &Ranked, step: u64) -> Result<(), RunError> {
    let m = Manifest {
        ranks: r.comm.size(),
        step,
        bounds: r.plan.bounds.clone(),
        files: (0..r.comm.size())
            .map(|k| {
                format!(
                    "rank-{k:05}/{}",
                    myelin_io::checkpoint::checkpoint_file_name(step)
                )
            })
            .collect(),
    };
    let json = serde_json::to_string_pretty(&m)
        .map_err(|e| RunError::Option(format!("cannot serialise the manifest: {e}")))?;
    super::write_atomic(&dir.join(MANIFEST), json.as_bytes())
}

/// The folder of this rank's checkpoints when resuming a distributed run from `from` (the
/// checkpoint folder holding the manifest), after checking the rank count.
pub fn resume_dir(from: &std::path::Path, comm: &dyn Comm) -> Result<std::path::PathBuf, RunError> {
    let path = from.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| RunError::Fs {
        what: "cannot read the manifest of distributed checkpoints (resume from the checkpoint folder)",
        path: path.clone(),
        source,
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| RunError::Option(format!("{}: {e}", path.display())))?;
    if m.ranks != comm.size() {
        return Err(RunError::Option(format!(
            "{}: the checkpoints were written by {} ranks; resume with `mpirun -np {}` (this job has {})",
            path.display(),
            m.ranks,
            m.ranks,
            comm.size()
        )));
    }
    Ok(rank_dir(from, comm.rank()))
}

/// An error unless every rank resumes from the same step.
pub fn check_same_step(comm: &dyn Comm, step: u64) -> Result<(), RunError> {
    let steps = comm.all_gather_f64(&[step as f64]);
    if steps.iter().any(|&s| s != step as f64) {
        return Err(RunError::Option(format!(
            "the ranks' newest usable checkpoints are of different steps ({steps:?}); remove the newer ones so that all ranks have the same"
        )));
    }
    Ok(())
}

/// This rank's share of a distributed run.
pub struct Ranked {
    /// The communicator.
    pub comm: Box<dyn Comm>,
    /// The partition.
    pub plan: Plan,
    /// Exchange mode and timers.
    pub exchanger: Option<Exchanger>,
    /// Steps per exchange window.
    pub window: u64,
}

/// Plans the partition and prepares `sim` to build only this rank's part.
pub fn prepare(
    sim: &mut Simulation,
    spec: &NetworkSpec,
    scene_file: &str,
    comm: Box<dyn Comm>,
) -> Result<Ranked, RunError> {
    let reg = sim.registry();
    let costs = Costs::for_scene(&spec, reg, PLAN_RATE_HZ);
    let plan = partition::partition(spec, comm.size(), &costs)
        .map_err(|e| RunError::Option(format!("{scene_file}: {e}")))?;
    let local = plan.local(comm.rank());
    sim.world_mut().insert_resource(LocalNeurons(local));
    let window = exchange_window(spec, sim.registry());
    Ok(Ranked {
        comm,
        plan,
        exchanger: None,
        window,
    })
}

/// Steps per exchange window: the smallest synapse delay, and short enough that no
/// deferred spike is added to a ring-buffer cell after an input that a single process adds
/// later. An input adding to the rings with delay `d_in` at step `s` writes the cell of
/// step `s + d_in`; a spike of step `t < s` with delay `d = s + d_in - t` writes it before
/// that in one process, but at the end of its window on ranks. So the window is at most
/// `d - d_in` for every synapse delay `d > d_in` onto an input's target: the sums, and the
/// spike trains, stay bit-identical. Spike generators add that way. Poisson inputs add their
/// events in the step they arrive, after every spike for that step is in, so they would not
/// need the bound; it is applied to every event input alike, which is conservative.
pub fn exchange_window(spec: &NetworkSpec, reg: &myelin_engine::ModelRegistry) -> u64 {
    let mut window = u64::from(partition::min_delay_steps(spec)).max(1);
    for inp in &spec.inputs {
        let Some(entry) = reg.inputs.get(inp.model.as_str()) else {
            continue;
        };
        if entry.drives_current {
            continue;
        }
        let Ok(params) = myelin_engine::Params::resolve(entry.parameters, &inp.params) else {
            continue;
        };
        let d_in = u64::from((entry.max_delay)(&params, spec.dt));
        for j in spec.projections.iter().filter(|j| j.target == inp.target) {
            let lo = u64::from(myelin_engine::delay_steps(
                j.delay.lower_bound().max(0.0),
                spec.dt,
            ));
            let hi = j.delay.upper_bound();
            let hi = if hi.is_finite() {
                u64::from(myelin_engine::delay_steps(hi, spec.dt))
            } else {
                u64::MAX
            };
            if hi > d_in {
                window = window.min(lo.max(d_in + 1) - d_in);
            }
        }
    }
    window.max(1)
}

/// Builds `spec` into `sim`: in one process the whole network, on several ranks
/// (`several`) each rank's own part ([`prepare`], the build, [`after_build`]).
pub fn build(
    sim: &mut Simulation,
    spec: &NetworkSpec,
    scene_file: &str,
    comm: Box<dyn Comm>,
    several: bool,
    mode: CommMode,
) -> Result<(Option<Ranked>, myelin_engine::BuildReport), RunError> {
    let mut ranked = if several {
        Some(prepare(sim, spec, scene_file, comm)?)
    } else {
        None
    };
    let mut report = sim.build(spec)?;
    if let Some(r) = ranked.as_mut() {
        after_build(sim, r, mode, &mut report);
    }
    Ok((ranked, report))
}

/// After the build: the local-spike system in `Exchange`, the engine's delivery off (the
/// exchange delivers), and the exchange's routes.
pub fn after_build(
    sim: &mut Simulation,
    ranked: &mut Ranked,
    mode: CommMode,
    report: &mut myelin_engine::BuildReport,
) {
    let local = ranked.plan.local(ranked.comm.rank());
    sim.world_mut().insert_resource(LocalPart {
        local,
        pending: Vec::new(),
    });
    let app = sim.app_mut();
    app.add_systems(
        SimStep,
        myelin_distributed::keep_local_spikes.in_set(SimSystems::Exchange),
    );
    app.configure_sets(SimStep, SimSystems::Deliver.run_if(|| false));
    let ex = Exchanger::new(sim.world_mut(), &*ranked.comm, mode);
    report.synapse_bytes = ex.connectivity_bytes(sim.world_mut());
    ranked.exchanger = Some(ex);
}

impl Ranked {
    /// Runs `n` steps, exchanging after every window and at the end.
    pub fn run_steps(&mut self, sim: &mut Simulation, n: u64) {
        let mut left = n;
        let ex = self.exchanger.as_mut().expect("prepared after the build");
        while left > 0 {
            let k = left.min(self.window);
            sim.run_steps(k);
            ex.exchange(sim.world_mut(), &*self.comm);
            left -= k;
        }
    }

    /// Moves every rank's recorded spikes to rank 0, merged in the single-process order
    /// (step, then neuron); other ranks are left with empty recorders.
    pub fn gather_recordings(&self, world: &mut World) {
        let mut recs: Vec<(String, Mut<SpikeRecorder>)> = Vec::new();
        let mut q = world.query::<&mut SpikeRecorder>();
        for r in q.iter_mut(world) {
            recs.push((r.label.clone(), r));
        }
        recs.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, r) in &mut recs {
            let packed: Vec<u64> = r
                .steps
                .iter()
                .zip(&r.senders)
                .flat_map(|(&s, &i)| [s, u64::from(i)])
                .collect();
            let got = self.comm.gather_v_u64(&packed);
            r.steps.clear();
            r.senders.clear();
            if let Some((all, _)) = got {
                let mut pairs: Vec<(u64, u32)> =
                    all.chunks_exact(2).map(|p| (p[0], p[1] as u32)).collect();
                pairs.sort_unstable();
                r.recorded = 0;
                r.steps.extend(pairs.iter().map(|p| p.0));
                r.senders.extend(pairs.iter().map(|p| p.1));
            }
        }
    }

    /// Spike counts of every population summed over ranks (written back into `Spikes`),
    /// and the synapse count; every rank calls it.
    pub fn sum_counts(&self, world: &mut World, synapses: usize) -> usize {
        let mut q = world.query::<(&myelin_components::StableId, &mut Spikes)>();
        let mut rows: Vec<(u32, Mut<Spikes>)> =
            q.iter_mut(world).map(|(id, s)| (id.0, s)).collect();
        rows.sort_by_key(|r| r.0);
        let mut counts: Vec<u64> = rows.iter().map(|r| r.1.total).collect();
        counts.push(synapses as u64);
        let sums = self.comm.sum_u64(&counts);
        for (r, &s) in rows.iter_mut().zip(&sums) {
            r.1.total = s;
        }
        sums.last().copied().unwrap_or(0) as usize
    }

    /// Every rank's timers and construction figures, on every rank.
    pub fn rank_summaries(
        &self,
        construction_s: f64,
        simulation_s: f64,
        synapses: usize,
        synapse_bytes: usize,
    ) -> Vec<RankSummary> {
        let t = self
            .exchanger
            .as_ref()
            .map(|e| e.timers.clone())
            .unwrap_or_default();
        let mine = [
            construction_s,
            simulation_s,
            synapses as f64,
            synapse_bytes as f64,
            t.pack_s,
            t.wait_s,
            t.exchange_s,
            t.unpack_s,
            t.deliver_s,
            t.windows as f64,
            t.spikes_sent as f64,
            t.spikes_received as f64,
        ];
        let all = self.comm.all_gather_f64(&mine);
        all.chunks_exact(mine.len())
            .enumerate()
            .map(|(rank, v)| {
                let local = self.plan.local(rank);
                RankSummary {
                    rank,
                    neurons: local.iter().map(|r| r.len()).sum(),
                    construction_s: v[0],
                    simulation_s: v[1],
                    synapses: v[2] as usize,
                    synapse_bytes: v[3] as usize,
                    timers: ExchangeTimers {
                        pack_s: v[4],
                        wait_s: v[5],
                        exchange_s: v[6],
                        unpack_s: v[7],
                        deliver_s: v[8],
                        windows: v[9] as u64,
                        spikes_sent: v[10] as u64,
                        spikes_received: v[11] as u64,
                    },
                }
            })
            .collect()
    }
}

/// One rank's figures in a distributed run's summary.
#[derive(Clone, Debug, Serialize)]
pub struct RankSummary {
    /// The rank.
    pub rank: usize,
    /// Neurons it owns.
    pub neurons: usize,
    /// Synapses it built (those onto its neurons).
    pub synapses: usize,
    /// Bytes of its connectivity.
    pub synapse_bytes: usize,
    /// Its construction time [s].
    pub construction_s: f64,
    /// Its simulation time [s].
    pub simulation_s: f64,
    /// Its exchange timers.
    pub timers: ExchangeTimers,
}
