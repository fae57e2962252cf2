//! Reference models on reduced sizes (fast, in CI): the reduced microcircuit's statistics
//! lie in plausible ranges and its figures are written; the four Brunel regimes are told
//! apart by irregularity and synchrony. The full-scale validation against published
//! figures and NEST is in docs/validation.md (benches/validation/).

use std::path::Path;

use myelin::analysis::{self, PopulationStats};
use myelin::prelude::*;

fn run(scene: &Path, duration: f64, out: &Path) -> Vec<analysis::SpikeTrains> {
    let opts = RunOptions {
        out: Some(out.to_path_buf()),
        duration: Some(duration),
        progress: false,
        ..RunOptions::default()
    };
    run_scene(scene, &opts, |_| {}).expect("the scene runs");
    analysis::read_spikes(&out.join("recordings.h5"))
        .expect("recordings read back")
        .0
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The reduced microcircuit (N and K scaled by 0.1, DC-compensated; not comparable to
/// published rates): every population fires at a low, cortical rate, irregularly and
/// asynchronously, and the figures are written.
#[test]
fn reduced_microcircuit_is_asynchronous_irregular_at_low_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let trains = run(
        &root().join("scenes/microcircuit_reduced.ron"),
        700.0,
        tmp.path(),
    );
    let stats = analysis::analyze(&trains, 200.0, 700.0, true).unwrap();
    assert_eq!(stats.len(), 8);
    for s in &stats {
        // Plausible cortical ranges (the published full-scale rates span 0.9-8.6 Hz).
        assert!(
            s.rate_hz > 0.1 && s.rate_hz < 20.0,
            "{}: rate {} Hz",
            s.population,
            s.rate_hz
        );
        // Irregular: CV of ISIs between 0.4 and 1.5 (Poisson: 1; regular firing: near 0).
        assert!(
            s.cv_isi > 0.4 && s.cv_isi < 1.5,
            "{}: CV {}",
            s.population,
            s.cv_isi
        );
        // Asynchronous: pairwise spike-count correlations close to zero.
        assert!(
            s.pairwise_correlation.abs() < 0.05,
            "{}: pairwise correlation {}",
            s.population,
            s.pairwise_correlation
        );
    }
    let rate = |p: &str| stats.iter().find(|s| s.population == p).unwrap().rate_hz;
    // The published pattern: L2/3E and L6E fire least, inhibitory populations more than
    // their excitatory partners.
    for (e, i) in [("L23E", "L23I"), ("L4E", "L4I"), ("L6E", "L6I")] {
        assert!(
            rate(e) < rate(i),
            "{e} ({}) should fire less than {i} ({})",
            rate(e),
            rate(i)
        );
    }
    let files =
        analysis::write_plots(&tmp.path().join("plots"), &trains, &stats, 200.0, 700.0).unwrap();
    assert_eq!(files.len(), 6);
    for f in files {
        assert!(
            std::fs::metadata(&f).unwrap().len() > 1000,
            "{} is too small to hold a figure",
            f.display()
        );
    }
}

fn regime(name: &str) -> PopulationStats {
    let tmp = tempfile::tempdir().unwrap();
    let trains = run(
        &root().join(format!("tests/scenes/brunel_{name}_half.ron")),
        400.0,
        tmp.path(),
    );
    let stats = analysis::analyze(&trains, 100.0, 400.0, false).unwrap();
    stats.into_iter().find(|s| s.population == "E").unwrap()
}

/// Self-consistent mean-field rate of the AI regime (J = 0.2 mV, g = 5, eta = 2), from
/// `benches/validation/siegert.py --J 0.2 --g 5 --eta 2` [Hz].
const SIEGERT_AI_HZ: f64 = 26.921;
/// The tolerance on the mean-field rate.
const SIEGERT_REL_TOL: f64 = 0.10;

/// Brunel (2000) Fig. 8 regimes at half size (same in-degrees): rate, irregularity (CV),
/// synchrony and the dominant population frequency separate them. Measured (seed 2000): SR
/// 444 Hz, CV 0.07, synchrony 63, peak 667 Hz; AI 26.1 Hz, CV 0.88, synchrony 18; SI fast
/// 34.3 Hz, CV 1.12, peak 160 Hz; SI slow 9.7 Hz, synchrony 60, peak 27 Hz. The SR network
/// locks into one of two regular states depending on the seed: every neuron firing every
/// 3 ms (333 Hz, synchrony about 180) or the population split in phase (444 Hz, synchrony
/// about 60; seeds 1 and 2 of the same scene give one of each), hence the factor 2.5 on
/// the synchrony, which both states pass.
#[test]
fn brunel_regimes_are_told_apart_by_irregularity_and_synchrony() {
    let sr = regime("sr");
    let ai = regime("ai");
    let si_fast = regime("si_fast");
    let si_slow = regime("si_slow");
    for (n, s) in [
        ("SR", &sr),
        ("AI", &ai),
        ("SI fast", &si_fast),
        ("SI slow", &si_slow),
    ] {
        eprintln!(
            "{n}: rate {:.2} Hz, CV {:.3}, synchrony {:.2}, pairwise correlation {:.4}, peak {:.1} Hz",
            s.rate_hz, s.cv_isi, s.synchrony, s.pairwise_correlation, s.peak_frequency_hz
        );
    }
    // SR: regular firing (CV near 0), locked together (large synchrony and correlation).
    assert!(sr.cv_isi < 0.1, "SR must be regular: CV {}", sr.cv_isi);
    assert!(
        sr.synchrony > 2.5 * ai.synchrony && sr.pairwise_correlation > 0.1,
        "SR must be synchronous: synchrony {} vs AI {}, pairwise correlation {}",
        sr.synchrony,
        ai.synchrony,
        sr.pairwise_correlation
    );
    // AI: irregular, weakly correlated, at the mean-field rate.
    assert!(
        ai.cv_isi > 0.7 && ai.pairwise_correlation < 0.1,
        "AI must be irregular and asynchronous"
    );
    assert!(
        (ai.rate_hz - SIEGERT_AI_HZ).abs() < SIEGERT_REL_TOL * SIEGERT_AI_HZ,
        "AI rate {} Hz vs Siegert {SIEGERT_AI_HZ} Hz",
        ai.rate_hz
    );
    // SI fast: irregular neurons under a fast population oscillation (period about 4 D).
    assert!(
        si_fast.cv_isi > 1.0,
        "SI fast must be irregular: CV {}",
        si_fast.cv_isi
    );
    assert!(
        si_fast.peak_frequency_hz > 120.0,
        "SI fast oscillates fast: {} Hz",
        si_fast.peak_frequency_hz
    );
    // SI slow: low rate, strong slow population oscillation.
    assert!(
        si_slow.rate_hz < 0.6 * ai.rate_hz,
        "SI slow fires at low rates: {} Hz",
        si_slow.rate_hz
    );
    assert!(
        si_slow.synchrony > 2.0 * ai.synchrony,
        "SI slow is synchronous: {} vs AI {}",
        si_slow.synchrony,
        ai.synchrony
    );
    assert!(
        si_slow.peak_frequency_hz < 60.0,
        "SI slow oscillates slowly: {} Hz",
        si_slow.peak_frequency_hz
    );
}

/// Published full-scale rates of Potjans & Diesmann (2014) [Hz], REFERENCES.md section 1.
const PUBLISHED_MICROCIRCUIT_HZ: [(&str, f64); 8] = [
    ("L23E", 0.903),
    ("L23I", 2.965),
    ("L4E", 4.414),
    ("L4I", 5.876),
    ("L5E", 7.569),
    ("L5I", 8.633),
    ("L6E", 1.105),
    ("L6I", 7.829),
];
/// The tolerance: 10 % of the published rate or 0.3 Hz, whichever is larger.
const PUBLISHED_REL_TOL: f64 = 0.10;
/// See [`PUBLISHED_REL_TOL`] [Hz].
const PUBLISHED_ABS_TOL_HZ: f64 = 0.3;

/// The full-scale microcircuit (77,169 neurons, 0.3 billion synapses, about 2.5 GB and a few
/// minutes in a release build): 500 ms transient discarded, 1 s measured, every population
/// within tolerance of the published rates and irregular. Opt-in:
/// `cargo test --release --test reference_models -- --ignored`.
#[test]
#[ignore = "full scale: minutes and 2.5 GB; run with --ignored (docs/validation.md)"]
fn full_microcircuit_matches_the_published_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let trains = run(&root().join("scenes/microcircuit.ron"), 1500.0, tmp.path());
    let stats = analysis::analyze(&trains, 500.0, 1500.0, false).unwrap();
    for (pop, published) in PUBLISHED_MICROCIRCUIT_HZ {
        let s = stats.iter().find(|s| s.population == pop).unwrap();
        let tol = (PUBLISHED_REL_TOL * published).max(PUBLISHED_ABS_TOL_HZ);
        eprintln!(
            "{pop}: {:.3} Hz (published {published} Hz), CV {:.3}",
            s.rate_hz, s.cv_isi
        );
        assert!(
            (s.rate_hz - published).abs() <= tol,
            "{pop}: {} Hz vs published {published} Hz (tolerance {tol} Hz)",
            s.rate_hz
        );
        assert!(
            s.cv_isi > 0.5 && s.cv_isi < 1.2,
            "{pop}: CV {} is not in the irregular range",
            s.cv_isi
        );
    }
}
