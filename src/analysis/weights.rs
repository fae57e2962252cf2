//! Weight distributions of a run's weight recorders (`/weights/<label>` in
//! `recordings.h5`): per sample the mean, spread and quantiles, and histograms of the first
//! and last samples on common bins, as `myelin analyze` reports them.

use std::path::Path;

use serde::Serialize;

use super::{AnalysisError, mean_std, percentile};

/// Bins of the weight histograms (over the range of every sample of a recorder).
pub const WEIGHT_BINS: usize = 40;
/// Quantiles reported per sample.
pub const WEIGHT_QUANTILES: [f64; 5] = [0.01, 0.05, 0.5, 0.95, 0.99];

/// The samples of one weight recorder.
#[derive(Clone, Debug)]
pub struct WeightSamples {
    /// The recorder's label.
    pub label: String,
    /// The projection recorded.
    pub projection: String,
    /// Sample times \[ms\].
    pub times: Vec<f64>,
    /// Synapses per sample.
    pub synapses: usize,
    /// The weights, one row of `synapses` values per sample.
    pub values: Vec<f32>,
}

impl WeightSamples {
    /// The weights of sample `k`.
    pub fn sample(&self, k: usize) -> &[f32] {
        &self.values[k * self.synapses..(k + 1) * self.synapses]
    }
}

/// Reads every weight recorder of a recordings file; none when the file has no `/weights`.
pub fn read_weights(file: &Path) -> Result<Vec<WeightSamples>, AnalysisError> {
    let err = |m: String| AnalysisError::Read {
        file: file.to_path_buf(),
        message: m,
    };
    let f = myelin_io::h5::open(file).map_err(|e| err(format!("cannot open as HDF5: {e}")))?;
    if !f.link_exists("weights") {
        return Ok(Vec::new());
    }
    let g = f.group("weights").map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for label in g.member_names().map_err(|e| err(e.to_string()))? {
        let at = format!("/weights/{label}");
        let s = g.group(&label).map_err(|e| err(format!("{at}: {e}")))?;
        let projection: hdf5::types::VarLenUnicode = s
            .attr("projection")
            .and_then(|a| a.read_scalar())
            .map_err(|e| err(format!("{at}: attribute projection: {e}")))?;
        let times = s
            .dataset("times")
            .and_then(|d| d.read_raw::<f64>())
            .map_err(|e| err(format!("{at}/times: {e}")))?;
        let ds = s
            .dataset("values")
            .map_err(|e| err(format!("{at}/values: {e}")))?;
        let shape = ds.shape();
        let (rows, synapses) = match shape.as_slice() {
            [r, c] => (*r, *c),
            other => {
                return Err(err(format!(
                    "{at}/values: expected two dimensions (samples, synapses), found shape {other:?}"
                )));
            }
        };
        if rows != times.len() {
            return Err(err(format!(
                "{at}: {rows} rows of values but {} sample times",
                times.len()
            )));
        }
        let values = if rows * synapses == 0 {
            Vec::new()
        } else {
            ds.read_raw::<f32>()
                .map_err(|e| err(format!("{at}/values: {e}")))?
        };
        out.push(WeightSamples {
            label,
            projection: projection.as_str().to_string(),
            times,
            synapses,
            values,
        });
    }
    Ok(out)
}

/// Statistics of one sample.
#[derive(Clone, Debug, Serialize)]
pub struct SampleStats {
    /// Sample time \[ms\].
    pub t_ms: f64,
    /// Mean weight.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Smallest weight.
    pub min: f64,
    /// Largest weight.
    pub max: f64,
    /// The weights at [`WEIGHT_QUANTILES`].
    pub quantiles: [f64; 5],
}

/// Histograms of the first and last samples on common bins.
#[derive(Clone, Debug, Serialize)]
pub struct WeightHistogram {
    /// Bin edges ([`WEIGHT_BINS`] + 1 values).
    pub edges: Vec<f64>,
    /// Synapses per bin in the first sample.
    pub first: Vec<u64>,
    /// Synapses per bin in the last sample.
    pub last: Vec<u64>,
}

/// The weight distribution of one recorder over time.
#[derive(Clone, Debug, Serialize)]
pub struct WeightStats {
    /// The recorder's label.
    pub label: String,
    /// The projection recorded.
    pub projection: String,
    /// Synapses recorded.
    pub synapses: usize,
    /// One entry per sample.
    pub samples: Vec<SampleStats>,
    /// Histograms of the first and last samples (none without samples or synapses).
    pub histogram: Option<WeightHistogram>,
}

/// Counts `w` into `bins` equal bins over `[lo, hi]` (the last bin closed).
pub fn histogram(w: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<u64> {
    let mut h = vec![0u64; bins];
    let width = (hi - lo) / bins as f64;
    for &x in w {
        let x = f64::from(x);
        let k = if width > 0.0 {
            (((x - lo) / width) as usize).min(bins - 1)
        } else {
            0
        };
        h[k] += 1;
    }
    h
}

/// Per-sample statistics and first/last histograms of every recorder.
pub fn weight_stats(recorders: &[WeightSamples]) -> Vec<WeightStats> {
    recorders
        .iter()
        .map(|r| {
            let samples: Vec<SampleStats> = (0..r.times.len())
                .filter(|_| r.synapses > 0)
                .map(|k| {
                    let w: Vec<f64> = r.sample(k).iter().map(|&x| f64::from(x)).collect();
                    let (mean, std) = mean_std(&w);
                    let mut sorted = w;
                    sorted.sort_by(f64::total_cmp);
                    SampleStats {
                        t_ms: r.times[k],
                        mean,
                        std,
                        min: sorted[0],
                        max: sorted[sorted.len() - 1],
                        quantiles: WEIGHT_QUANTILES.map(|q| percentile(&sorted, q)),
                    }
                })
                .collect();
            let histogram = (!samples.is_empty()).then(|| {
                let lo = samples.iter().map(|s| s.min).fold(f64::INFINITY, f64::min);
                let hi = samples
                    .iter()
                    .map(|s| s.max)
                    .fold(f64::NEG_INFINITY, f64::max);
                let edges = (0..=WEIGHT_BINS)
                    .map(|i| lo + (hi - lo) * i as f64 / WEIGHT_BINS as f64)
                    .collect();
                WeightHistogram {
                    edges,
                    first: histogram(r.sample(0), lo, hi, WEIGHT_BINS),
                    last: histogram(r.sample(samples.len() - 1), lo, hi, WEIGHT_BINS),
                }
            });
            WeightStats {
                label: r.label.clone(),
                projection: r.projection.clone(),
                synapses: r.synapses,
                samples,
                histogram,
            }
        })
        .collect()
}

/// The weight statistics as a table: every sample of every recorder.
pub fn weight_table(stats: &[WeightStats]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for w in stats {
        let _ = writeln!(
            s,
            "weights {} (projection {}, {} synapses)",
            w.label, w.projection, w.synapses
        );
        let _ = writeln!(
            s,
            "{:>10} {:>11} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}",
            "t [ms]", "mean", "std", "min", "1 %", "median", "99 %", "max"
        );
        for p in &w.samples {
            let _ = writeln!(
                s,
                "{:>10.1} {:>11.5} {:>10.5} {:>11.5} {:>11.5} {:>11.5} {:>11.5} {:>11.5}",
                p.t_ms, p.mean, p.std, p.min, p.quantiles[0], p.quantiles[2], p.quantiles[4], p.max
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(samples: &[&[f32]]) -> WeightSamples {
        WeightSamples {
            label: "w".into(),
            projection: "E->E".into(),
            times: (0..samples.len()).map(|k| 10.0 * k as f64).collect(),
            synapses: samples[0].len(),
            values: samples.iter().flat_map(|s| s.iter().copied()).collect(),
        }
    }

    #[test]
    fn moments_and_quantiles_of_known_samples() {
        // 0, 1, ..., 100: mean 50, population std sqrt((101^2 - 1) / 12), median 50.
        let a: Vec<f32> = (0..=100).map(|i| i as f32).collect();
        let b: Vec<f32> = a.iter().map(|x| 2.0 * x).collect();
        let st = weight_stats(&[recorder(&[&a, &b])]);
        let s = &st[0].samples;
        assert_eq!(s.len(), 2);
        let std = ((101.0f64 * 101.0 - 1.0) / 12.0).sqrt();
        assert!((s[0].mean - 50.0).abs() < 1e-12);
        // mean_std is the sample (n - 1) standard deviation.
        let sample_std = std * (101.0f64 / 100.0).sqrt();
        assert!((s[0].std - sample_std).abs() < 1e-9, "{}", s[0].std);
        assert!((s[1].mean - 100.0).abs() < 1e-12);
        assert_eq!((s[1].min, s[1].max), (0.0, 200.0));
        assert!((s[0].quantiles[2] - 50.0).abs() < 1e-12);
        assert_eq!(s[1].t_ms, 10.0);
    }

    #[test]
    fn histograms_share_bins_and_count_every_synapse() {
        let a = [1.0f32, 1.0, 1.0, 1.0];
        let b = [1.0f32, 2.0, 3.0, 5.0];
        let st = weight_stats(&[recorder(&[&a, &b])]);
        let h = st[0].histogram.as_ref().expect("histogram");
        assert_eq!(h.edges.len(), WEIGHT_BINS + 1);
        assert_eq!((h.edges[0], h.edges[WEIGHT_BINS]), (1.0, 5.0));
        assert_eq!(h.first.iter().sum::<u64>(), 4);
        assert_eq!(h.last.iter().sum::<u64>(), 4);
        // Every first-sample weight is at the lower edge; the largest weight is in the last bin.
        assert_eq!(h.first[0], 4);
        assert_eq!(h.last[WEIGHT_BINS - 1], 1);
        // 2.0 lies at (2 - 1) / (4 / 40) = bin 10, 3.0 at bin 20.
        assert_eq!((h.last[10], h.last[20]), (1, 1));
    }

    #[test]
    fn a_constant_sample_goes_to_one_bin() {
        assert_eq!(histogram(&[3.0, 3.0], 3.0, 3.0, 4), vec![2, 0, 0, 0]);
    }
}
