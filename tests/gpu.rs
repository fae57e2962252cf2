//! The CUDA backend from the library's side, on any machine: which scenes it takes, and
//! that selecting it where it cannot run is an error that writes nothing. (Kernels are
//! checked in `systems/src/cuda.rs` and `systems/tests/nvrtc.rs`.)

use std::path::Path;

use myelin::engine::Backend;
use myelin::io::parse_scene;
use myelin::runner::{RunOptions, run_scene};
use myelin::systems::cuda::unsupported;

fn network(file: &str) -> myelin::engine::NetworkSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenes")
        .join(file);
    let source = std::fs::read_to_string(&path).unwrap();
    parse_scene(&path, &source).unwrap().network()
}

/// The reference models run on the device as they are, the HPC benchmark's STDP too; a
/// rule without a device kernel (a plugin's) and spike generators are refused by name.
#[test]
fn the_device_takes_the_reference_models_and_names_what_it_refuses() {
    for f in [
        "brunel.ron",
        "microcircuit.ron",
        "microcircuit_reduced.ron",
        "hpc_benchmark_small.ron",
        "../tests/scenes/gpu_traces.ron",
        "../tests/scenes/gpu_stdp.ron",
    ] {
        assert_eq!(unsupported(&network(f)), None, "{f}");
    }
    let mut spec = network("hpc_benchmark_small.ron");
    let j = spec
        .projections
        .iter_mut()
        .find(|j| j.plasticity.is_some())
        .unwrap();
    j.plasticity.as_mut().unwrap().model = "my_rule".into();
    let why = unsupported(&spec).expect("a rule without a device kernel is refused");
    assert!(
        why.contains("my_rule") && why.contains("no device kernel"),
        "{why}"
    );
    let mut spec = network("brunel.ron");
    spec.inputs[0].model = "spike_generator".into();
    let why = unsupported(&spec).expect("spike generators are refused");
    assert!(why.contains("spike_generator"), "{why}");
}

/// Where the backend cannot run (no `cuda` feature, or no driver or device), the run is
/// refused before its output folder is made.
#[test]
fn an_unavailable_backend_is_refused_before_anything_is_written() {
    if Backend::Cuda.ensure_available().is_ok() {
        return; // a machine with a GPU: the run would go ahead
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let opts = RunOptions {
        out: Some(out.clone()),
        backend: Backend::Cuda,
        progress: false,
        duration: Some(10.0),
        ..RunOptions::default()
    };
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenes/brunel.ron");
    let e = run_scene(&scene, &opts, |_| {}).unwrap_err().to_string();
    assert!(e.contains("CUDA") || e.contains("cuda"), "{e}");
    assert!(!out.exists(), "no output folder for a refused run");
}

/// Recorded samples of a run: (label, values) of each `group/label/values`.
fn recorded(dir: &Path, group: &str, labels: &[&str]) -> Vec<(String, Vec<f32>)> {
    let f = hdf5::File::open(dir.join("recordings.h5")).unwrap();
    labels
        .iter()
        .map(|l| {
            let v = f
                .dataset(&format!("{group}/{l}/values"))
                .unwrap()
                .read_raw::<f32>()
                .unwrap();
            (l.to_string(), v)
        })
        .collect()
}

/// Runs `scene` (relative to the crate) on the CPU and on the GPU into `tmp`; the two
/// output folders.
fn on_both(scene: &str, tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    Backend::Cuda
        .ensure_available()
        .expect("this test needs the CUDA backend (--features cuda) and a GPU");
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join(scene);
    let run = |backend: Backend, name: &str| {
        let out = tmp.join(name);
        let opts = RunOptions {
            out: Some(out.clone()),
            backend,
            progress: false,
            ..RunOptions::default()
        };
        run_scene(&scene, &opts, |_| {}).unwrap();
        out
    };
    (run(Backend::Cpu, "cpu"), run(Backend::Cuda, "cuda"))
}

/// The largest difference of `b` from `a`, relative to each value (or to `floor` where
/// both are smaller), and where it is.
fn largest_difference(a: &[f32], b: &[f32], floor: f32) -> (f64, usize) {
    let (mut worst, mut at) = (0.0f64, 0);
    for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
        let d = f64::from(x - y).abs() / f64::from(x.abs().max(y.abs()).max(floor));
        if d > worst {
            (worst, at) = (d, k);
        }
    }
    (worst, at)
}

/// One scene on both backends (needs an NVIDIA GPU and the `cuda` feature): the same
/// connectivity and the same Poisson input give each recorded neuron's membrane potential,
/// sample by sample, within 1e-5 relative on the device. The scene (every model with a
/// kernel, Poisson inputs in two layers, a DC window, six projections) is in
/// tests/scenes/gpu_traces.ron; its Poisson means take the grouped draws, which are
/// integer arithmetic on both sides. The device adds arrivals with atomics, so sums may
/// differ in their last bits; 1e-5 relative (to the value, or to 1 mV within 1 mV of zero)
/// is a hundred times float32's rounding.
#[test]
#[ignore = "needs an NVIDIA GPU: cargo test --release --features cuda --test gpu -- --ignored"]
fn membrane_traces_agree_between_the_backends() {
    let tmp = tempfile::tempdir().unwrap();
    let (cpu, gpu) = on_both("tests/scenes/gpu_traces.ron", tmp.path());
    let labels = ["E_V_m", "I_V_m", "D_V_m"];
    let (a, b) = (
        recorded(&cpu, "state", &labels),
        recorded(&gpu, "state", &labels),
    );
    for ((label, a), (_, b)) in a.iter().zip(&b) {
        assert_eq!(a.len(), 3000 * 4, "{label}: 3000 steps of 4 neurons");
        assert_eq!(a.len(), b.len(), "{label}: as many samples on both");
        let (worst, at) = largest_difference(a, b, 1.0);
        eprintln!(
            "{label}: largest relative difference {worst:.2e} (sample {}, neuron slot {})",
            at / 4,
            at % 4
        );
        assert!(
            worst <= 1e-5,
            "{label}: sample {} of neuron slot {}: cpu {} vs cuda {} ({worst:.2e} relative)",
            at / 4,
            at % 4,
            a[at],
            b[at]
        );
    }
}

/// Each neuron's spike steps, from `spikes/label` of a run's recordings.
fn trains(dir: &Path, label: &str, n: usize) -> Vec<Vec<u64>> {
    let g = hdf5::File::open(dir.join("recordings.h5"))
        .unwrap()
        .group(&format!("spikes/{label}"))
        .unwrap();
    let times = g.dataset("times").unwrap().read_raw::<f64>().unwrap();
    let senders = g.dataset("senders").unwrap().read_raw::<u32>().unwrap();
    let mut t = vec![Vec::new(); n];
    for (&ms, &i) in times.iter().zip(&senders) {
        t[i as usize].push((ms * 10.0).round() as u64);
    }
    t
}

/// STDP on both backends (needs an NVIDIA GPU and the `cuda` feature): every rule the
/// device runs, on a feed-forward projection of its own (tests/scenes/gpu_stdp.ron). The
/// presynaptic population's spikes are the same on both (Poisson input only). A target
/// neuron's may part where the device's atomic adds round its summed input differently; at
/// least 90% of each target population must spike exactly alike. Onto those neurons every
/// synapse's weight, sampled every 250 ms for 2.5 s (through two catch-ups, with a quarter
/// of the sources silent after 500 ms), agrees within 1e-5 relative. The weights moved on
/// the device (plasticity ran there, not only on the CPU before the upload).
#[test]
#[ignore = "needs an NVIDIA GPU: cargo test --release --features cuda --test gpu -- --ignored"]
fn stdp_weights_agree_between_the_backends() {
    let tmp = tempfile::tempdir().unwrap();
    let (cpu, gpu) = on_both("tests/scenes/gpu_stdp.ron", tmp.path());
    assert_eq!(
        trains(&cpu, "P", 400),
        trains(&gpu, "P", 400),
        "the presynaptic spikes are the same on both"
    );
    let rules = [
        ("stdp", "Q1"),
        ("stdp_nn_symm", "Q2"),
        ("stdp_nn_pre_centered", "Q3"),
        ("stdp_nn_restr", "Q4"),
        ("stdp_pl", "Q5"),
    ];
    let labels: Vec<&str> = rules.iter().map(|r| r.0).collect();
    let (a, b) = (
        recorded(&cpu, "weights", &labels),
        recorded(&gpu, "weights", &labels),
    );
    let synapses = 300 * 40;
    for (((label, a), (_, b)), (_, target)) in a.iter().zip(&b).zip(rules) {
        assert_eq!(
            a.len(),
            10 * synapses,
            "{label}: 10 samples of every synapse"
        );
        assert_eq!(a.len(), b.len(), "{label}: as many samples on both");
        let alike: Vec<bool> = trains(&cpu, target, 300)
            .iter()
            .zip(trains(&gpu, target, 300))
            .map(|(x, y)| *x == y)
            .collect();
        let n_alike = alike.iter().filter(|&&s| s).count();
        let targets = hdf5::File::open(cpu.join("recordings.h5"))
            .unwrap()
            .dataset(&format!("weights/{label}/targets"))
            .unwrap()
            .read_raw::<u32>()
            .unwrap();
        assert_eq!(targets.len(), synapses, "{label}: a target per synapse");
        let keep = |k: usize| alike[targets[k % synapses] as usize];
        let (a, b): (Vec<f32>, Vec<f32>) = (0..a.len())
            .filter(|&k| keep(k))
            .map(|k| (a[k], b[k]))
            .unzip();
        let kept = a.len() / 10;
        let moved = (0..kept).filter(|&k| b[9 * kept + k] != b[k]).count();
        let (worst, at) = largest_difference(&a, &b, 1.0);
        eprintln!(
            "{label}: {n_alike} of 300 target neurons spike alike; onto them ({kept} synapses) \
             the largest relative difference is {worst:.2e}; {moved} weights moved on the device"
        );
        assert!(
            n_alike >= 270,
            "{label}: only {n_alike} of 300 target neurons spike alike on both backends"
        );
        assert!(
            moved > kept / 2,
            "{label}: only {moved} of {kept} weights changed on the device"
        );
        assert!(
            worst <= 1e-5,
            "{label}: sample {}: cpu {} vs cuda {} ({worst:.2e} relative)",
            at / kept,
            a[at],
            b[at]
        );
    }
}
