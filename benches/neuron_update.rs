//! The integrate phase's kernel: one step of 77,184 neurons (the full microcircuit's count,
//! in 1024-neuron blocks) of `iaf_psc_exp` with the microcircuit's parameters, and of
//! `iaf_psc_alpha` with the HPC benchmark's, under input that keeps them near threshold
//! (a few spike per step). Reported per neuron-step.
//!
//! ```text
//! cargo bench --bench neuron_update
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use myelin::engine::rng::{Purpose, Stream};
use myelin::engine::{NeuronModel, ParamValue, Params};
use myelin::systems::neurons::{IafPscAlpha, IafPscExp};
use myelin_components::NeuronState;

const BLOCK: usize = 1024;
const BLOCKS: usize = 76;

fn params(p: &[(&str, f64)]) -> BTreeMap<String, ParamValue> {
    p.iter()
        .map(|&(k, v)| (k.to_string(), ParamValue::Number(v)))
        .collect()
}

/// Columns, inputs and a driver that steps every block of a model once.
fn bench_model<M: NeuronModel>(c: &mut Criterion, name: &str, p: &[(&str, f64)], drive: f32) {
    let model = M::new(
        &Params::resolve(M::PARAMETERS, &params(p)).expect("valid parameters"),
        0.1,
    )
    .expect("model");
    let n = BLOCK * BLOCKS;
    let mut s = Stream::new(3, Purpose::Init, 0, 0, 0);
    let real: Vec<Vec<f32>> = (0..M::REAL_STATE.len())
        .map(|v| {
            (0..n)
                .map(|_| {
                    (model.initial(v) as f32)
                        + if v == 0 {
                            5.0 * s.uniform() as f32
                        } else {
                            0.0
                        }
                })
                .collect()
        })
        .collect();
    let int: Vec<Vec<u32>> = (0..M::INT_STATE.len()).map(|_| vec![0; n]).collect();
    let mut state = NeuronState { real, int };
    let input_ex: Vec<f32> = (0..n).map(|_| drive * s.uniform() as f32).collect();
    let input_in: Vec<f32> = (0..n).map(|_| -0.5 * drive * s.uniform() as f32).collect();
    let current = vec![0.0f32; n];
    let mut spikes = Vec::new();
    let mut g = c.benchmark_group("neuron_update");
    g.throughput(Throughput::Elements(n as u64))
        .measurement_time(Duration::from_secs(4));
    g.bench_function(name, |b| {
        b.iter(|| {
            spikes.clear();
            for (k, mut block) in state.blocks_mut(BLOCK).enumerate() {
                let r = k * BLOCK..(k + 1) * BLOCK;
                model.update(
                    &mut block,
                    &input_ex[r.clone()],
                    &input_in[r.clone()],
                    &current[r],
                    &mut spikes,
                );
            }
            black_box(spikes.len())
        })
    });
    g.finish();
}

fn neurons(c: &mut Criterion) {
    bench_model::<IafPscExp>(
        c,
        "iaf_psc_exp_microcircuit",
        &[
            ("C_m", 250.0),
            ("tau_m", 10.0),
            ("tau_syn_ex", 0.5),
            ("tau_syn_in", 0.5),
            ("t_ref", 2.0),
            ("E_L", -65.0),
            ("V_th", -50.0),
            ("V_reset", -65.0),
        ],
        90.0,
    );
    bench_model::<IafPscAlpha>(
        c,
        "iaf_psc_alpha_hpc",
        &[
            ("C_m", 250.0),
            ("tau_m", 10.0),
            ("tau_syn_ex", 0.3258),
            ("tau_syn_in", 0.3258),
            ("t_ref", 0.5),
            ("E_L", 0.0),
            ("V_th", 20.0),
            ("V_reset", 0.0),
        ],
        45.0,
    );
}

criterion_group!(benches, neurons);
criterion_main!(benches);
