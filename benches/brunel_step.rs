//! One simulation step of the full Brunel network (scenes/brunel.ron: 12,500 neurons,
//! 15.6 million synapses), after a 200 ms warm-up so the network is in its steady state.
//! Recorders are removed: this measures inputs, integration and delivery.
//!
//! ```text
//! cargo bench --bench brunel_step
//! ```

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use myelin::engine::SimSystems;

fn brunel_step(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenes/brunel.ron");
    let source = std::fs::read_to_string(&path).expect("scenes/brunel.ron is readable");
    let scene = myelin::io::parse_scene(&path, &source).expect("scenes/brunel.ron parses");
    let mut net = scene.network();
    net.recorders.clear();
    let mut sim = myelin::runner::simulation_with(scene.dt, |_| {});
    sim.build(&net).expect("scenes/brunel.ron builds");
    sim.run_steps(2000);
    let mut group = c.benchmark_group("brunel");
    group
        .measurement_time(Duration::from_secs(15))
        .sample_size(50);
    group.bench_function("step", |b| b.iter(|| sim.step()));
    group.finish();
    let t = sim.world().resource::<myelin::engine::PhaseTimers>();
    let total: f64 = SimSystems::ALL
        .iter()
        .map(|&p| t.get(p).as_secs_f64())
        .sum();
    let shares: Vec<String> = SimSystems::ALL
        .iter()
        .filter(|&&p| t.get(p).as_secs_f64() > 0.01 * total)
        .map(|&p| {
            format!(
                "{} {:.0} %",
                p.name(),
                100.0 * t.get(p).as_secs_f64() / total
            )
        })
        .collect();
    println!(
        "brunel/step phase shares over all steps run: {}",
        shares.join(", ")
    );
}

criterion_group!(benches, brunel_step);
criterion_main!(benches);
