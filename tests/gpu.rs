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
