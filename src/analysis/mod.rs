//! Spike-train analysis of a run's recordings: what `myelin analyze` computes.
//!
//! Per population, over a time window that excludes the transient: the mean rate, the
//! distribution of per-neuron rates (silent neurons count as zero), the irregularity
//! (coefficient of variation of inter-spike intervals), and two synchrony measures. Per
//! weight recorder: the weight distribution of every sample and histograms
//! ([`weights`]).

mod plots;
pub mod weights;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use plots::{write_plots, write_weight_plots};
pub use weights::{WeightStats, read_weights, weight_stats, weight_table};

/// Bin of the population spike-count histogram for the synchrony measure [ms]
/// (the variance over the mean of such a histogram, as Potjans & Diesmann 2014). 1 ms
/// resolves oscillations up to 500 Hz; wider bins alias regular firing (a network firing
/// every 3 ms in 3 ms bins shows no variance at all).
pub const SYNCHRONY_BIN_MS: f64 = 1.0;
/// Bin of the population spike counts whose power spectrum gives the dominant
/// oscillation frequency [ms] (Nyquist frequency 1 kHz).
pub const SPECTRUM_BIN_MS: f64 = 0.5;
/// Frequencies below this are ignored when looking for the dominant oscillation [Hz]
/// (slow drifts and the window's edges).
pub const SPECTRUM_MIN_HZ: f64 = 5.0;
/// Neurons per population entering the synchrony measure (the first ones by index), so
/// that it does not grow with population size.
pub const SYNCHRONY_NEURONS: usize = 1000;
/// Bin of the spike counts whose pairwise correlation is averaged [ms].
pub const CORRELATION_BIN_MS: f64 = 5.0;
/// Neurons per population entering the pairwise correlation (the first ones by index).
pub const CORRELATION_NEURONS: usize = 200;
/// A neuron needs this many spikes in the window (two intervals) to enter the mean CV.
pub const MIN_SPIKES_FOR_CV: usize = 3;

/// Errors reading recordings.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The recordings file is missing or unreadable.
    #[error("{file}: {message}")]
    Read {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The window is empty.
    #[error("empty analysis window: from {from} ms to {to} ms")]
    Window {
        /// Start [ms].
        from: f64,
        /// End [ms].
        to: f64,
    },
}

/// The spikes of one recorder.
#[derive(Clone, Debug)]
pub struct SpikeTrains {
    /// Population name.
    pub population: String,
    /// Number of recorded neurons.
    pub recorded: usize,
    /// Spike times [ms].
    pub times: Vec<f64>,
    /// Population-local index of each spike's neuron.
    pub senders: Vec<u32>,
}

/// Reads every spike recorder of a recordings file (`OUT/recordings.h5`).
pub fn read_spikes(file: &Path) -> Result<(Vec<SpikeTrains>, f64), AnalysisError> {
    let err = |m: String| AnalysisError::Read {
        file: file.to_path_buf(),
        message: m,
    };
    let f = myelin_io::h5::open(file).map_err(|e| err(format!("cannot open as HDF5: {e}")))?;
    let dt: f64 = f
        .attr("dt")
        .and_then(|a| a.read_scalar())
        .map_err(|e| err(format!("no `dt` attribute: {e}")))?;
    let g = f
        .group("spikes")
        .map_err(|e| err(format!("no /spikes group: {e}")))?;
    let mut out = Vec::new();
    for name in g.member_names().map_err(|e| err(e.to_string()))? {
        let s = g.group(&name).map_err(|e| err(e.to_string()))?;
        let population: hdf5::types::VarLenUnicode = s
            .attr("population")
            .and_then(|a| a.read_scalar())
            .map_err(|e| err(format!("/spikes/{name}: {e}")))?;
        let recorded: u64 = s
            .attr("recorded_neurons")
            .and_then(|a| a.read_scalar())
            .map_err(|e| err(format!("/spikes/{name}: {e}")))?;
        let times = s
            .dataset("times")
            .and_then(|d| d.read_raw::<f64>())
            .map_err(|e| err(format!("/spikes/{name}/times: {e}")))?;
        let senders = s
            .dataset("senders")
            .and_then(|d| d.read_raw::<u32>())
            .map_err(|e| err(format!("/spikes/{name}/senders: {e}")))?;
        out.push(SpikeTrains {
            population: population.as_str().to_string(),
            recorded: recorded as usize,
            times,
            senders,
        });
    }
    Ok((out, dt))
}

/// Statistics of one population in the window.
#[derive(Clone, Debug, Serialize)]
pub struct PopulationStats {
    /// Population name.
    pub population: String,
    /// Recorded neurons.
    pub neurons: usize,
    /// Spikes in the window.
    pub spikes: usize,
    /// Mean rate [Hz].
    pub rate_hz: f64,
    /// Standard deviation of per-neuron rates [Hz].
    pub rate_std_hz: f64,
    /// Percentiles 5, 25, 50, 75, 95 of per-neuron rates [Hz].
    pub rate_percentiles_hz: [f64; 5],
    /// Fraction of neurons without a spike in the window.
    pub silent_fraction: f64,
    /// Mean coefficient of variation of inter-spike intervals (neurons with at least
    /// [`MIN_SPIKES_FOR_CV`] spikes); NaN when none qualifies.
    pub cv_isi: f64,
    /// Neurons that entered `cv_isi`.
    pub cv_neurons: usize,
    /// Variance over mean of the population spike-count histogram ([`SYNCHRONY_BIN_MS`]
    /// bins, first [`SYNCHRONY_NEURONS`] neurons): 1 for independent Poisson neurons.
    pub synchrony: f64,
    /// Frequency of the largest peak of the population spike-count power spectrum
    /// ([`SPECTRUM_BIN_MS`] bins, above [`SPECTRUM_MIN_HZ`]) [Hz]: the population
    /// oscillation, if there is one.
    pub peak_frequency_hz: f64,
    /// Mean pairwise Pearson correlation of spike counts ([`CORRELATION_BIN_MS`] bins,
    /// first [`CORRELATION_NEURONS`] neurons; pairs with a silent neuron skipped).
    pub pairwise_correlation: f64,
    /// Per-neuron rates [Hz] (with `--per-neuron`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates_hz: Option<Vec<f64>>,
    /// Per-neuron CVs of qualifying neurons (with `--per-neuron`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvs: Option<Vec<f64>>,
}

/// Per-neuron spike times in the window, by neuron index (0..recorded).
fn per_neuron(t: &SpikeTrains, from: f64, to: f64) -> Vec<Vec<f64>> {
    let n = t
        .recorded
        .max(t.senders.iter().map(|&s| s as usize + 1).max().unwrap_or(0));
    let mut v = vec![Vec::new(); n];
    for (&time, &s) in t.times.iter().zip(&t.senders) {
        if time >= from && time < to {
            v[s as usize].push(time);
        }
    }
    v
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let x = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo as f64)
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    (m, var.sqrt())
}

fn counts(train: &[f64], from: f64, bin: f64, nbins: usize) -> Vec<f64> {
    let mut c = vec![0.0; nbins];
    for &t in train {
        let b = ((t - from) / bin) as usize;
        if b < nbins {
            c[b] += 1.0;
        }
    }
    c
}

/// The frequency [Hz] of the largest power-spectrum peak of the series `x` sampled every
/// `dt` seconds, above [`SPECTRUM_MIN_HZ`] (a direct DFT: the series are short). NaN for a
/// flat series.
fn dominant_frequency(x: &[f64], dt: f64) -> f64 {
    let n = x.len();
    if n < 4 {
        return f64::NAN;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let df = 1.0 / (n as f64 * dt);
    let (mut best, mut best_power) = (f64::NAN, 0.0);
    for k in ((SPECTRUM_MIN_HZ / df).ceil() as usize).max(1)..=n / 2 {
        let w = std::f64::consts::TAU * k as f64 / n as f64;
        let (mut re, mut im) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            let (s, c) = (w * i as f64).sin_cos();
            re += (v - mean) * c;
            im -= (v - mean) * s;
        }
        let p = re * re + im * im;
        if p > best_power {
            (best, best_power) = (k as f64 * df, p);
        }
    }
    best
}

/// Analyses every recorded population over `[from, to)` [ms].
pub fn analyze(
    trains: &[SpikeTrains],
    from: f64,
    to: f64,
    keep_per_neuron: bool,
) -> Result<Vec<PopulationStats>, AnalysisError> {
    if !(to > from) {
        return Err(AnalysisError::Window { from, to });
    }
    let secs = (to - from) / 1000.0;
    Ok(trains
        .iter()
        .map(|t| {
            let neurons = per_neuron(t, from, to);
            let n = t.recorded.max(1);
            let spikes: usize = neurons.iter().map(Vec::len).sum();
            let mut rates: Vec<f64> = neurons.iter().map(|s| s.len() as f64 / secs).collect();
            rates.resize(n.max(rates.len()), 0.0);
            let (rate_mean, rate_std) = mean_std(&rates);
            let mut sorted = rates.clone();
            sorted.sort_by(f64::total_cmp);
            let cvs: Vec<f64> = neurons
                .iter()
                .filter(|s| s.len() >= MIN_SPIKES_FOR_CV)
                .map(|s| {
                    let isi: Vec<f64> = s.windows(2).map(|w| w[1] - w[0]).collect();
                    let (m, sd) = mean_std(&isi);
                    sd / m
                })
                .collect();
            let synchrony = {
                let nb = ((to - from) / SYNCHRONY_BIN_MS) as usize;
                let mut h = vec![0.0; nb];
                for s in neurons.iter().take(SYNCHRONY_NEURONS) {
                    for (a, b) in h.iter_mut().zip(counts(s, from, SYNCHRONY_BIN_MS, nb)) {
                        *a += b;
                    }
                }
                let (m, sd) = mean_std(&h);
                if m > 0.0 { sd * sd / m } else { f64::NAN }
            };
            let pairwise_correlation = {
                let nb = ((to - from) / CORRELATION_BIN_MS) as usize;
                let series: Vec<(Vec<f64>, f64, f64)> = neurons
                    .iter()
                    .take(CORRELATION_NEURONS)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let c = counts(s, from, CORRELATION_BIN_MS, nb);
                        let (m, sd) = mean_std(&c);
                        (c, m, sd)
                    })
                    .filter(|(_, _, sd)| *sd > 0.0)
                    .collect();
                let (mut sum, mut pairs) = (0.0, 0usize);
                for i in 0..series.len() {
                    for j in i + 1..series.len() {
                        let (a, ma, sa) = &series[i];
                        let (b, mb, sb) = &series[j];
                        let cov = a
                            .iter()
                            .zip(b)
                            .map(|(x, y)| (x - ma) * (y - mb))
                            .sum::<f64>()
                            / (nb - 1) as f64;
                        sum += cov / (sa * sb);
                        pairs += 1;
                    }
                }
                if pairs > 0 {
                    sum / pairs as f64
                } else {
                    f64::NAN
                }
            };
            let peak_frequency_hz = {
                let nb = ((to - from) / SPECTRUM_BIN_MS) as usize;
                let mut h = vec![0.0; nb];
                for s in &neurons {
                    for (a, b) in h.iter_mut().zip(counts(s, from, SPECTRUM_BIN_MS, nb)) {
                        *a += b;
                    }
                }
                dominant_frequency(&h, SPECTRUM_BIN_MS / 1000.0)
            };
            PopulationStats {
                population: t.population.clone(),
                peak_frequency_hz,
                neurons: n,
                spikes,
                rate_hz: rate_mean,
                rate_std_hz: rate_std,
                rate_percentiles_hz: [0.05, 0.25, 0.5, 0.75, 0.95].map(|q| percentile(&sorted, q)),
                silent_fraction: rates.iter().filter(|&&r| r == 0.0).count() as f64
                    / rates.len().max(1) as f64,
                cv_isi: mean_std(&cvs).0,
                cv_neurons: cvs.len(),
                synchrony,
                pairwise_correlation,
                rates_hz: keep_per_neuron.then_some(rates),
                cvs: keep_per_neuron.then_some(cvs),
            }
        })
        .collect())
}

/// The statistics as a table.
pub fn table(stats: &[PopulationStats], from: f64, to: f64) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "window {from} ms to {to} ms");
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>10} {:>11} {:>10}",
        "population",
        "neurons",
        "spikes",
        "rate[Hz]",
        "median",
        "p95",
        "silent",
        "CV ISI",
        "synchrony",
        "pair corr",
        "peak [Hz]"
    );
    for p in stats {
        let _ = writeln!(
            s,
            "{:<12} {:>8} {:>10} {:>9.3} {:>9.3} {:>9.3} {:>8.3} {:>8.3} {:>10.3} {:>11.4} {:>10.1}",
            p.population,
            p.neurons,
            p.spikes,
            p.rate_hz,
            p.rate_percentiles_hz[2],
            p.rate_percentiles_hz[4],
            p.silent_fraction,
            p.cv_isi,
            p.synchrony,
            p.pairwise_correlation,
            p.peak_frequency_hz
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(pop: &str, recorded: usize, spikes: &[(f64, u32)]) -> SpikeTrains {
        SpikeTrains {
            population: pop.into(),
            recorded,
            times: spikes.iter().map(|s| s.0).collect(),
            senders: spikes.iter().map(|s| s.1).collect(),
        }
    }

    #[test]
    fn regular_trains_have_known_rate_and_zero_cv() {
        // Neuron 0 fires every 10 ms, neuron 1 every 20 ms, neuron 2 never, over 1 s.
        let mut s = Vec::new();
        for k in 0..100 {
            s.push((k as f64 * 10.0 + 0.5, 0));
        }
        for k in 0..50 {
            s.push((k as f64 * 20.0 + 0.5, 1));
        }
        let st = &analyze(&[train("P", 3, &s)], 0.0, 1000.0, true).unwrap()[0];
        assert!((st.rate_hz - 50.0).abs() < 1e-9, "mean rate {}", st.rate_hz);
        assert_eq!(st.rates_hz.as_ref().unwrap(), &vec![100.0, 50.0, 0.0]);
        assert!((st.silent_fraction - 1.0 / 3.0).abs() < 1e-12);
        assert!(
            st.cv_isi.abs() < 1e-12 && st.cv_neurons == 2,
            "regular trains have CV 0"
        );
    }

    #[test]
    fn the_window_excludes_the_transient() {
        let s = [(100.0, 0), (600.0, 0), (700.0, 0), (800.0, 0)];
        let st = &analyze(&[train("P", 1, &s)], 500.0, 1000.0, false).unwrap()[0];
        assert_eq!(st.spikes, 3);
        assert!((st.rate_hz - 6.0).abs() < 1e-12);
        assert!(
            analyze(&[train("P", 1, &s)], 5.0, 5.0, false).is_err(),
            "an empty window is an error"
        );
    }

    /// A population whose rate is modulated at 40 Hz: the spectrum peak is found at 40 Hz
    /// within one frequency bin (1 Hz for a 1 s window).
    #[test]
    fn the_dominant_oscillation_is_found() {
        let mut s = Vec::new();
        for i in 0..200u32 {
            for k in 0..40 {
                s.push((k as f64 * 25.0 + f64::from(i % 5) * 0.2, i));
            }
        }
        let st = &analyze(&[train("P", 200, &s)], 0.0, 1000.0, false).unwrap()[0];
        assert!(
            (st.peak_frequency_hz - 40.0).abs() <= 1.0,
            "peak at {} Hz",
            st.peak_frequency_hz
        );
    }

    /// Perfectly synchronous neurons: every neuron fires in the same bins, so counts of
    /// all pairs correlate perfectly and the population histogram is far from Poisson.
    #[test]
    fn synchronous_firing_is_detected() {
        let mut s = Vec::new();
        for k in 0..50 {
            for i in 0..20u32 {
                s.push((k as f64 * 20.0 + 1.0 + (k % 3) as f64, i));
            }
        }
        let st = &analyze(&[train("P", 20, &s)], 0.0, 1000.0, false).unwrap()[0];
        assert!(
            (st.pairwise_correlation - 1.0).abs() < 1e-9,
            "pairwise correlation {}",
            st.pairwise_correlation
        );
        assert!(st.synchrony > 10.0, "synchrony {}", st.synchrony);
    }
}
