//! Poisson input draws for 12,500 neurons at one step (the Brunel network's input): one
//! stream per neuron and a 53-bit uniform each; eight neurons' Philox rounds in lock-step
//! (the same numbers); and what the engine uses, one Philox block for four neurons (a
//! 32-bit word each) and branch-free threshold counting, 32 neurons in lock-step. All run
//! in the same process, so their ratios hold on a loaded machine.
//!
//! ```text
//! cargo bench --bench poisson_input
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use myelin::engine::rng::{
    LANES, POISSON_BATCH, PoissonTable, Purpose, Stream, poisson_counts_lanes,
    poisson_from_uniform, poisson_tabulated, poisson_thresholds, uniforms_lanes,
};

const NEURONS: u32 = 12_500;
/// Brunel: 20 kHz per neuron, dt = 0.1 ms.
const LAMBDA: f64 = 2.0;

fn poisson(c: &mut Criterion) {
    let cdf = PoissonTable::new(LAMBDA).into_cdf();
    let mut g = c.benchmark_group("poisson_12500_neurons");
    g.bench_function("stream_per_neuron", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for i in 0..NEURONS {
                total += poisson_tabulated(
                    &mut Stream::new(7, Purpose::Poisson, 1, i, black_box(1000)),
                    LAMBDA,
                    &cdf,
                );
            }
            total
        })
    });
    g.bench_function("lanes", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for i0 in (0..NEURONS).step_by(LANES) {
                for u in uniforms_lanes(7, Purpose::Poisson, 1, i0, black_box(1000)) {
                    total += poisson_from_uniform(u, &cdf);
                }
            }
            total
        })
    });
    let th = poisson_thresholds(LAMBDA);
    g.bench_function("grouped_words", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for i0 in (0..NEURONS).step_by(POISSON_BATCH) {
                for k in poisson_counts_lanes(7, Purpose::Poisson, 1, i0, black_box(1000), &th) {
                    total += k;
                }
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, poisson);
criterion_main!(benches);
