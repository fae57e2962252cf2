//! Noise-aware comparison of two samples of timings: the ratio of their medians with a
//! bootstrap percentile confidence interval (fixed-seed generator, so a verdict is
//! reproducible), and a verdict that calls a change only when it is both larger than a
//! threshold and larger than the repeats' spread allows.

use serde::Serialize;

/// Bootstrap resamples per comparison.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Seed of the bootstrap generator (any fixed value; fixed so verdicts are reproducible).
pub const BOOTSTRAP_SEED: u64 = 0x6d79_656c_696e_6265; // "myelinbe"

/// Default confidence of the interval of the ratio.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// Default threshold: changes of the median below 5 % are not called.
pub const DEFAULT_THRESHOLD: f64 = 0.05;

/// Fewest samples per side for a verdict: with fewer, the spread is unknown.
pub const MIN_SAMPLES: usize = 3;

/// The median (mean of the two middle values for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    median_in_place(&mut xs.to_vec())
}

/// The median of `v`, reordering it (no allocation; for the bootstrap's inner loop).
fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (below, &mut mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        mid
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + mid)
    }
}

/// SplitMix64 (Steele et al. 2014): a small, fast, fixed-seed generator for resampling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (Lemire's multiply-shift; bias below 2^-32 for the small
    /// `n` of repeats).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// The ratio `median(new) / median(base)` with a confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RatioCi {
    /// The ratio of the medians.
    pub ratio: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// Its confidence (e.g. 0.95).
    pub confidence: f64,
}

/// The bootstrap percentile interval of `median(new) / median(base)`: both samples are
/// resampled with replacement [`BOOTSTRAP_RESAMPLES`] times with a generator seeded by
/// [`BOOTSTRAP_SEED`]. Empty samples give NaN.
pub fn ratio_ci(base: &[f64], new: &[f64], confidence: f64) -> RatioCi {
    let ratio = median(new) / median(base);
    if base.is_empty() || new.is_empty() {
        return RatioCi {
            ratio,
            low: f64::NAN,
            high: f64::NAN,
            confidence,
        };
    }
    let mut rng = SplitMix64(BOOTSTRAP_SEED);
    let mut a = vec![0.0; base.len()];
    let mut b = vec![0.0; new.len()];
    let mut ratios: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            for x in &mut a {
                *x = base[rng.below(base.len())];
            }
            for x in &mut b {
                *x = new[rng.below(new.len())];
            }
            median_in_place(&mut b) / median_in_place(&mut a)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let i = (p * (ratios.len() - 1) as f64).round() as usize;
        ratios[i.min(ratios.len() - 1)]
    };
    let tail = (1.0 - confidence) / 2.0;
    RatioCi {
        ratio,
        low: q(tail),
        high: q(1.0 - tail),
        confidence,
    }
}

/// The verdict on a change (for quantities where larger is worse: times, memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Slower beyond the threshold, and the interval excludes 1.
    Regression,
    /// Faster beyond the threshold, and the interval excludes 1.
    Improvement,
    /// The medians differ by less than the threshold.
    Unchanged,
    /// The medians differ by more than the threshold, but within the noise (the interval
    /// holds 1): repeat with more samples.
    Noisy,
    /// Fewer than [`MIN_SAMPLES`] samples on a side: no verdict.
    TooFewSamples,
}

impl Verdict {
    /// The verdict in words, for tables.
    pub fn text(self) -> &'static str {
        match self {
            Self::Regression => "REGRESSION",
            Self::Improvement => "improvement",
            Self::Unchanged => "unchanged",
            Self::Noisy => "noisy",
            Self::TooFewSamples => "too few",
        }
    }
}

/// The verdict on `new` against `base` at `threshold` (e.g. 0.05) and `confidence`:
/// a regression when `ratio > 1 + threshold` and the interval's lower end is above 1; an
/// improvement when `ratio < 1 / (1 + threshold)` and its upper end is below 1.
pub fn verdict(base: &[f64], new: &[f64], threshold: f64, confidence: f64) -> (Verdict, RatioCi) {
    let ci = ratio_ci(base, new, confidence);
    let v = if base.len() < MIN_SAMPLES || new.len() < MIN_SAMPLES || !ci.ratio.is_finite() {
        Verdict::TooFewSamples
    } else if ci.ratio > 1.0 + threshold {
        if ci.low > 1.0 {
            Verdict::Regression
        } else {
            Verdict::Noisy
        }
    } else if ci.ratio < 1.0 / (1.0 + threshold) {
        if ci.high < 1.0 {
            Verdict::Improvement
        } else {
            Verdict::Noisy
        }
    } else {
        Verdict::Unchanged
    };
    (v, ci)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` samples of `mean * (1 + 0.03 * z)`, z standard normal (Box-Muller on SplitMix64):
    /// timings with 3 % noise.
    pub(crate) fn timings(mean: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut r = SplitMix64(seed);
        let mut u = || (r.next() >> 11) as f64 / (1u64 << 53) as f64;
        (0..n)
            .map(|_| {
                let z = (-2.0 * (1.0 - u()).ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
                mean * (1.0 + 0.03 * z)
            })
            .collect()
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    /// Comparisons per rate estimate in the tests below.
    const TRIALS: u64 = 200;

    #[test]
    fn a_20_percent_slowdown_is_a_regression_at_95_percent_confidence() {
        let base = timings(10.0, 5, 1);
        let new: Vec<f64> = timings(10.0, 5, 2).iter().map(|x| x * 1.2).collect();
        let (v, ci) = verdict(&base, &new, DEFAULT_THRESHOLD, DEFAULT_CONFIDENCE);
        assert_eq!(v, Verdict::Regression, "{ci:?}");
        assert!(ci.low > 1.0 && ci.ratio > 1.1, "{ci:?}");
        let (v, _) = verdict(&new, &base, DEFAULT_THRESHOLD, DEFAULT_CONFIDENCE);
        assert_eq!(v, Verdict::Improvement);
        // Over many draws (5 repeats, 3 % noise), the slowdown is always found.
        let found = (0..TRIALS)
            .filter(|&s| {
                let slow: Vec<f64> = timings(10.0, 5, 5000 + s).iter().map(|x| x * 1.2).collect();
                verdict(
                    &timings(10.0, 5, 1000 + s),
                    &slow,
                    DEFAULT_THRESHOLD,
                    DEFAULT_CONFIDENCE,
                )
                .0 == Verdict::Regression
            })
            .count();
        assert!(found as u64 >= TRIALS * 95 / 100, "found {found}/{TRIALS}");
    }

    #[test]
    fn two_samples_of_one_distribution_are_unchanged_at_95_percent_confidence() {
        let (v, ci) = verdict(
            &timings(10.0, 5, 3),
            &timings(10.0, 5, 4),
            DEFAULT_THRESHOLD,
            DEFAULT_CONFIDENCE,
        );
        assert_eq!(v, Verdict::Unchanged, "{ci:?}");
        // Over many pairs (5 repeats, 3 % noise), false regressions stay below the 2.5 %
        // a one-sided 95 % interval allows (about 1 % here), false calls of either kind
        // below 5 %.
        let verdicts: Vec<Verdict> = (0..TRIALS)
            .map(|s| {
                verdict(
                    &timings(10.0, 5, 1000 + s),
                    &timings(10.0, 5, 5000 + s),
                    DEFAULT_THRESHOLD,
                    DEFAULT_CONFIDENCE,
                )
                .0
            })
            .collect();
        let count = |v: Verdict| verdicts.iter().filter(|&&x| x == v).count() as u64;
        assert!(
            count(Verdict::Regression) * 1000 <= TRIALS * 25,
            "{verdicts:?}"
        );
        assert!((count(Verdict::Regression) + count(Verdict::Improvement)) * 100 <= TRIALS * 5);
    }

    #[test]
    fn noise_larger_than_the_change_gives_no_regression() {
        let base = [10.0, 7.0, 13.0, 9.0];
        let new = [11.5, 8.0, 14.0, 16.0];
        let (v, ci) = verdict(&base, &new, DEFAULT_THRESHOLD, DEFAULT_CONFIDENCE);
        assert!(ci.ratio > 1.05 && ci.low <= 1.0, "{ci:?}");
        assert_eq!(v, Verdict::Noisy);
    }

    #[test]
    fn too_few_samples_give_no_verdict_and_the_interval_is_reproducible() {
        let (v, _) = verdict(&[1.0, 1.0], &[2.0, 2.0, 2.0], 0.05, 0.95);
        assert_eq!(v, Verdict::TooFewSamples);
        let (a, b) = (timings(1.0, 7, 5), timings(1.1, 6, 6));
        assert_eq!(ratio_ci(&a, &b, 0.9), ratio_ci(&a, &b, 0.9));
    }
}
