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

/// The reference models without plasticity run on the device as they are; the HPC
/// benchmark (STDP) is refused with the projection named.
#[test]
fn the_device_takes_brunel_and_the_microcircuit_and_names_what_it_refuses() {
    for f in ["brunel.ron", "microcircuit.ron", "microcircuit_reduced.ron"] {
        assert_eq!(unsupported(&network(f)), None, "{f}");
    }
    // State recorders run (their columns come back on the steps they sample).
    assert_eq!(
        unsupported(&network("../tests/scenes/gpu_traces.ron")),
        None
    );
    let why = unsupported(&network("hpc_benchmark_small.ron")).expect("STDP is refused");
    assert!(why.contains("is plastic"), "{why}");
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

/// The recorded membrane potentials of a run: (label, values, one row per sample).
fn traces(dir: &Path, labels: &[&str]) -> Vec<(String, Vec<f32>)> {
    let f = hdf5::File::open(dir.join("recordings.h5")).unwrap();
    labels
        .iter()
        .map(|l| {
            let v = f
                .dataset(&format!("state/{l}/values"))
                .unwrap()
                .read_raw::<f32>()
                .unwrap();
            (l.to_string(), v)
        })
        .collect()
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
    Backend::Cuda
        .ensure_available()
        .expect("this test needs the CUDA backend (--features cuda) and a GPU");
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenes/gpu_traces.ron");
    let tmp = tempfile::tempdir().unwrap();
    let run = |backend: Backend, name: &str| {
        let out = tmp.path().join(name);
        let opts = RunOptions {
            out: Some(out.clone()),
            backend,
            progress: false,
            ..RunOptions::default()
        };
        run_scene(&scene, &opts, |_| {}).unwrap();
        out
    };
    let (cpu, gpu) = (run(Backend::Cpu, "cpu"), run(Backend::Cuda, "cuda"));
    let labels = ["E_V_m", "I_V_m", "D_V_m"];
    for ((label, a), (_, b)) in traces(&cpu, &labels).iter().zip(traces(&gpu, &labels)) {
        assert_eq!(a.len(), 3000 * 4, "{label}: 3000 steps of 4 neurons");
        assert_eq!(a.len(), b.len(), "{label}: as many samples on both");
        let (mut worst, mut at) = (0.0f64, 0);
        for (k, (&x, &y)) in a.iter().zip(&b).enumerate() {
            let scale = f64::from(x.abs().max(y.abs())).max(1.0);
            let d = f64::from(x - y).abs() / scale;
            if d > worst {
                (worst, at) = (d, k);
            }
        }
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
