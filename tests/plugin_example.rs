//! A neuron model added as a plugin outside the engine's crates (examples/izhikevich):
//! the scene naming it runs with the plugin, and is rejected with a clear error without.

#[path = "../examples/izhikevich/model.rs"]
mod model;

use std::path::Path;

use myelin::prelude::*;

#[test]
fn izhikevich_plugin_runs_its_scene_without_engine_edits() {
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/izhikevich/izhikevich.ron");
    let tmp = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: Some(tmp.path().join("out")),
        duration: Some(300.0),
        progress: false,
        ..RunOptions::default()
    };
    let summary = run_scene(&scene, &opts, |sim| {
        sim.add_plugins(NeuronModelPlugin::<model::Izhikevich>::default());
    })
    .expect("the scene runs with the plugin");
    for p in &summary.populations {
        assert!(
            p.spikes > 0 && p.rate_hz < 200.0,
            "{}: {} spikes, {} Hz",
            p.name,
            p.spikes,
            p.rate_hz
        );
    }
    assert!(tmp.path().join("out/recordings.h5").exists());

    let err = run_scene(
        &scene,
        &RunOptions {
            out: Some(tmp.path().join("out2")),
            progress: false,
            ..RunOptions::default()
        },
        |_| {},
    )
    .expect_err("unknown model without the plugin");
    let msg = err.to_string();
    assert!(
        msg.contains("izhikevich.ron:") && msg.contains("unknown neuron model \"izhikevich\""),
        "{msg}"
    );
}
