//! The Poisson generator: rate and Fano factor of the events it delivers, measured at the
//! ring buffers (no neuron in between).

use bevy_ecs::prelude::*;
use myelin::components::SynapticInput;
use myelin::engine::{Dist, InputSpec, ParamValue, PopulationSpec, Selection};
use myelin::engine::{NetworkSpec, RegistryAppExt, SimClock, SimStep, SimSystems, Simulation};
use myelin::systems::inputs::PoissonGeneratorPlugin;
use myelin::systems::neurons::IafPscDelta;

#[derive(Resource)]
struct Counts {
    weight: f32,
    /// Events per neuron per window.
    windows: Vec<Vec<u32>>,
    window_steps: u64,
}

/// Reads and clears this step's slot (the neuron update would), converting summed weight
/// back to event counts.
fn count_arrivals(
    clock: Res<SimClock>,
    mut rings: Query<&mut SynapticInput>,
    mut counts: ResMut<Counts>,
) {
    let w = (clock.step / counts.window_steps) as usize;
    for mut ring in &mut rings {
        let n = ring.len();
        if counts.windows.len() <= w {
            counts.windows.push(vec![0; n]);
        }
        let weight = counts.weight;
        for mut b in ring.blocks_mut() {
            let first = b.first;
            let (ex, _) = b.slot_mut(clock.step);
            for (j, x) in ex.iter_mut().enumerate() {
                counts.windows[w][first + j] += (*x / weight).round() as u32;
                *x = 0.0;
            }
        }
    }
}

fn spec(n: usize, rate: f64) -> NetworkSpec {
    NetworkSpec {
        dt: 0.1,
        seed: 99,
        populations: vec![PopulationSpec {
            name: "P".into(),
            size: n,
            model: "iaf_psc_delta".into(),
            params: Default::default(),
            initial: [("V_m".to_string(), Dist::Constant(-70.0))].into(),
        }],
        projections: vec![],
        inputs: vec![InputSpec {
            model: "poisson_generator".into(),
            target: "P".into(),
            params: [
                ("rate".to_string(), ParamValue::Number(rate)),
                ("weight".to_string(), ParamValue::Number(0.5)),
                ("delay".to_string(), ParamValue::Number(1.0)),
            ]
            .into(),
            neurons: Selection::All,
        }],
        recorders: vec![],
    }
}

/// Runs `spec` (weight 0.5) for `steps` steps and returns the events per neuron per window
/// of `window_steps` steps.
fn window_counts(spec: &NetworkSpec, window_steps: u64, steps: u64) -> Vec<Vec<u32>> {
    let mut sim = Simulation::new(0.1);
    sim.add_plugins(PoissonGeneratorPlugin);
    sim.app_mut().register_neuron_model::<IafPscDelta>();
    sim.app_mut()
        .add_systems(SimStep, count_arrivals.in_set(SimSystems::Integrate));
    sim.world_mut().insert_resource(Counts {
        weight: 0.5,
        windows: Vec::new(),
        window_steps,
    });
    sim.build(spec).expect("valid spec");
    sim.run_steps(steps);
    sim.world_mut()
        .remove_resource::<Counts>()
        .expect("counts")
        .windows
}

/// Over 1,000 neurons x 20 windows of 100 ms at 50 Hz (5 expected events per window):
/// - the mean count per window has standard error sqrt(5 / 20000) = 0.016; we allow 5 SE
///   (false alarm below 1e-6);
/// - the Fano factor (variance / mean over all windows) of a Poisson count is 1, with
///   standard error about sqrt(2 / 20000) = 0.01 for large samples; we allow 5 SE;
/// - counts of different neurons are independent: the mean pairwise correlation of
///   neighbouring neurons' window counts is 0 with standard error 1/sqrt(999 * 20) = 0.007.
#[test]
fn poisson_rate_fano_factor_and_independence() {
    let (n, rate, window_steps, windows) = (1000usize, 50.0, 1000u64, 20u64);
    // The first delay's worth of steps reads nothing yet; run past the last window so the
    // events drawn in it have arrived.
    let counts = window_counts(&spec(n, rate), window_steps, window_steps * windows + 10);
    let all: Vec<f64> = counts[..windows as usize]
        .iter()
        .flat_map(|w| w.iter().map(|&c| f64::from(c)))
        .collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (all.len() - 1) as f64;
    let expected = rate * 0.1; // events per 100 ms window
    let se_mean = (expected / all.len() as f64).sqrt();
    assert!(
        (mean - expected).abs() < 5.0 * se_mean,
        "mean count {mean} per window, expected {expected} (5 SE = {})",
        5.0 * se_mean
    );
    let fano = var / mean;
    assert!(
        (fano - 1.0).abs() < 5.0 * (2.0 / all.len() as f64).sqrt(),
        "Fano factor {fano}"
    );
    // Correlation of neighbours' window counts.
    let w = &counts[..windows as usize];
    let mut corr_sum = 0.0;
    for i in 0..n - 1 {
        let a: Vec<f64> = w.iter().map(|c| f64::from(c[i])).collect();
        let b: Vec<f64> = w.iter().map(|c| f64::from(c[i + 1])).collect();
        let (ma, mb) = (
            a.iter().sum::<f64>() / a.len() as f64,
            b.iter().sum::<f64>() / b.len() as f64,
        );
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let (va, vb): (f64, f64) = (
            a.iter().map(|x| (x - ma).powi(2)).sum(),
            b.iter().map(|y| (y - mb).powi(2)).sum(),
        );
        corr_sum += cov / (va * vb).sqrt();
    }
    let mean_corr = corr_sum / (n - 1) as f64;
    assert!(
        mean_corr.abs() < 5.0 / ((n - 1) as f64 * windows as f64).sqrt(),
        "neighbouring neurons' counts correlate: {mean_corr}"
    );
}

/// A neuron's input depends on (seed, input, neuron, step) alone: driving a selection of
/// neurons (scattered over three blocks and over the four-neuron groups that share a
/// Philox block, as an MPI rank's part does) gives each of them exactly the events it gets
/// when every neuron is driven, and the others none.
#[test]
fn a_selection_draws_each_neurons_own_events() {
    let n = 2500;
    let all = spec(n, 2000.0);
    let selected: Vec<u32> = (0..n as u32)
        .filter(|i| i % 7 == 3 || i % 1024 == 0 || *i >= 2490)
        .collect();
    let mut some = all.clone();
    some.inputs[0].neurons = Selection::List(selected.clone());
    let (a, b) = (window_counts(&all, 1, 120), window_counts(&some, 1, 120));
    assert_eq!(a.len(), b.len());
    let total: u32 = a.iter().flatten().sum();
    assert!(
        total > 10_000,
        "the full input must deliver events: {total}"
    );
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        for i in 0..n {
            let expect = if selected.binary_search(&(i as u32)).is_ok() {
                x[i]
            } else {
                0
            };
            assert_eq!(y[i], expect, "neuron {i} at step {step}");
        }
    }
}
