//! `myelin bench compare BASE NEW`: per case, the medians of a metric over the repeats of
//! one run on each side, their ratio with a bootstrap interval, and a verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::record::{CaseKey, Record};
use super::stats::{RatioCi, Verdict, median, verdict};

/// The quantity compared (for all of them, larger is worse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Real-time factor: simulation wall time per simulated time.
    Rtf,
    /// Simulation wall time, in seconds.
    Simulation,
    /// Construction wall time, in seconds.
    Construction,
    /// Wall time of the whole process, in seconds.
    Wall,
    /// Peak resident memory, in MiB.
    Memory,
}

/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

impl Metric {
    /// The metric's value in a record (`None` when the record lacks it).
    pub fn value(self, r: &Record) -> Option<f64> {
        match self {
            Self::Rtf => Some(r.results.real_time_factor),
            Self::Simulation => Some(r.timers.simulation_s),
            Self::Construction => Some(r.timers.construction_s),
            Self::Wall => Some(r.timers.wall_s),
            Self::Memory => r.results.peak_rss_bytes.map(|b| b as f64 / MIB),
        }
    }

    /// Its name with unit, for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rtf => "real-time factor",
            Self::Simulation => "simulation time [s]",
            Self::Construction => "construction time [s]",
            Self::Wall => "process wall time [s]",
            Self::Memory => "peak memory [MiB]",
        }
    }
}

/// The records of one run of one case.
#[derive(Clone, Debug)]
pub struct RunSamples<'a> {
    /// The run's id.
    pub run_id: String,
    /// Its records (its repeats).
    pub records: Vec<&'a Record>,
}

impl RunSamples<'_> {
    /// The metric's values over the repeats.
    pub fn values(&self, m: Metric) -> Vec<f64> {
        self.records.iter().filter_map(|r| m.value(r)).collect()
    }

    /// The run's date (of its first record).
    pub fn date(&self) -> &str {
        self.records.first().map_or("", |r| r.meta.date.as_str())
    }

    /// The commit of its first record, short, with `+` when the tree was dirty.
    pub fn commit(&self) -> String {
        self.records
            .first()
            .map_or_else(String::new, |r| short_commit(r))
    }
}

/// A record's commit, 8 characters, with `+` when the tree was dirty (`?` when unknown).
pub fn short_commit(r: &Record) -> String {
    match &r.meta.git_commit {
        Some(c) => format!(
            "{}{}",
            &c[..c.len().min(8)],
            if r.meta.git_dirty == Some(true) {
                "+"
            } else {
                ""
            }
        ),
        None => "?".into(),
    }
}

/// The runs of every case key, oldest first (by date, then run id).
pub fn runs_by_key(records: &[Record]) -> BTreeMap<CaseKey, Vec<RunSamples<'_>>> {
    let mut map: BTreeMap<CaseKey, Vec<RunSamples<'_>>> = BTreeMap::new();
    for r in records {
        let runs = map.entry(r.key()).or_default();
        match runs.iter_mut().find(|s| s.run_id == r.run_id) {
            Some(s) => s.records.push(r),
            None => runs.push(RunSamples {
                run_id: r.run_id.clone(),
                records: vec![r],
            }),
        }
    }
    for runs in map.values_mut() {
        runs.sort_by(|a, b| (a.date(), &a.run_id).cmp(&(b.date(), &b.run_id)));
    }
    map
}

/// Which run of a case a side of a comparison takes.
#[derive(Clone, Debug, Default)]
pub struct Pick {
    /// Only runs of commits starting with this.
    pub commit: Option<String>,
    /// Only runs on this host.
    pub hostname: Option<String>,
    /// Take the run before the latest (when both sides read the same store).
    pub previous: bool,
}

impl Pick {
    fn choose<'r, 'a>(&self, runs: &'r [RunSamples<'a>]) -> Option<&'r RunSamples<'a>> {
        let mut ok = runs.iter().filter(|s| {
            let first = s.records[0];
            self.commit.as_ref().is_none_or(|c| {
                first
                    .meta
                    .git_commit
                    .as_ref()
                    .is_some_and(|g| g.starts_with(c.as_str()))
            }) && self
                .hostname
                .as_ref()
                .is_none_or(|h| &first.meta.hostname == h)
        });
        if self.previous {
            let v: Vec<_> = ok.collect();
            v.len().checked_sub(2).map(|i| v[i])
        } else {
            ok.next_back()
        }
    }
}

/// The comparison of one case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseComparison {
    /// The case.
    #[serde(serialize_with = "key_text")]
    pub key: CaseKey,
    /// The base run's id and commit.
    pub base_run: String,
    /// The new run's id and commit.
    pub new_run: String,
    /// Samples on each side.
    pub n: (usize, usize),
    /// Median of the base samples.
    pub base_median: f64,
    /// Median of the new samples.
    pub new_median: f64,
    /// Ratio new / base with its interval.
    pub ci: RatioCi,
    /// The verdict.
    pub verdict: Verdict,
    /// Warnings (different scene, different machine).
    pub notes: Vec<String>,
}

fn key_text<S: serde::Serializer>(k: &CaseKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// A comparison of two sets of records.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The metric compared.
    pub metric: Metric,
    /// The threshold (e.g. 0.05).
    pub threshold: f64,
    /// The confidence of the intervals.
    pub confidence: f64,
    /// Cases on both sides.
    pub cases: Vec<CaseComparison>,
    /// Cases only in the base.
    #[serde(serialize_with = "keys_text")]
    pub only_base: Vec<CaseKey>,
    /// Cases only in the new set.
    #[serde(serialize_with = "keys_text")]
    pub only_new: Vec<CaseKey>,
    /// Whether one store's previous run was compared with its latest (cases with a single
    /// run are then in `only_new`).
    pub previous_vs_latest: bool,
}

fn keys_text<S: serde::Serializer>(k: &[CaseKey], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(k.iter().map(ToString::to_string))
}

impl Comparison {
    /// Cases whose verdict is a regression.
    pub fn regressions(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.verdict == Verdict::Regression)
            .count()
    }

    /// The comparison as a table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: median over repeats, ratio NEW/BASE with {:.0} % bootstrap interval; threshold {:.1} %",
            self.metric.label(),
            self.confidence * 100.0,
            self.threshold * 100.0
        );
        let w = self
            .cases
            .iter()
            .map(|c| c.key.to_string().len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "{:<w$}  {:>5}  {:>10}  {:>10}  {:>6}  {:>15}  verdict",
            "case", "n", "BASE", "NEW", "ratio", "interval"
        );
        for c in &self.cases {
            let _ = writeln!(
                s,
                "{:<w$}  {:>5}  {:>10}  {:>10}  {:>6.3}  {:>15}  {}",
                c.key.to_string(),
                format!("{}/{}", c.n.0, c.n.1),
                sig(c.base_median),
                sig(c.new_median),
                c.ci.ratio,
                if c.ci.low.is_finite() {
                    format!("[{:.3}, {:.3}]", c.ci.low, c.ci.high)
                } else {
                    "-".into()
                },
                c.verdict.text()
            );
            for n in &c.notes {
                let _ = writeln!(s, "{:<w$}    note: {n}", "");
            }
        }
        for k in &self.only_base {
            let _ = writeln!(s, "only in BASE: {k}");
        }
        for k in &self.only_new {
            if self.previous_vs_latest {
                let _ = writeln!(s, "no earlier run: {k}");
            } else {
                let _ = writeln!(s, "only in NEW:  {k}");
            }
        }
        let r = self.regressions();
        let _ = writeln!(
            s,
            "{} case(s) compared, {r} regression(s)",
            self.cases.len()
        );
        s
    }
}

/// A number with 4 significant digits, for tables.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

/// Options of a comparison.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// The metric.
    pub metric: Metric,
    /// The threshold (e.g. 0.05 for 5 %).
    pub threshold: f64,
    /// The confidence of the intervals (e.g. 0.95).
    pub confidence: f64,
    /// Which run the base side takes per case.
    pub base: Pick,
    /// Which run the new side takes per case.
    pub new: Pick,
}

/// The run `p` picks of every case key.
fn pick<'a>(
    map: &BTreeMap<CaseKey, Vec<RunSamples<'a>>>,
    p: &Pick,
) -> BTreeMap<CaseKey, RunSamples<'a>> {
    map.iter()
        .filter_map(|(k, runs)| p.choose(runs).map(|r| (k.clone(), r.clone())))
        .collect()
}

/// Compares, per case key, one run of `base` (the latest, or as `opts.base` picks) with
/// one run of `new`.
pub fn compare_records(base: &[Record], new: &[Record], opts: &CompareOptions) -> Comparison {
    let b = runs_by_key(base);
    let n = runs_by_key(new);
    let (b, n) = (pick(&b, &opts.base), pick(&n, &opts.new));
    let mut cases = Vec::new();
    for (key, nr) in &n {
        let Some(br) = b.get(key) else { continue };
        let (bv, nv) = (br.values(opts.metric), nr.values(opts.metric));
        if bv.is_empty() || nv.is_empty() {
            continue;
        }
        let (v, ci) = verdict(&bv, &nv, opts.threshold, opts.confidence);
        let (b0, n0) = (br.records[0], nr.records[0]);
        let mut notes = Vec::new();
        if b0.params.scene_hash != n0.params.scene_hash {
            notes.push("the scene differs (another scene hash)".to_string());
        }
        if b0.meta.machine() != n0.meta.machine() {
            notes.push(format!(
                "different machines: {} vs {}",
                b0.meta.machine(),
                n0.meta.machine()
            ));
        }
        for (side, r) in [("BASE", b0), ("NEW", n0)] {
            if r.meta.profile != "release" {
                notes.push(format!("{side} ran a {} build", r.meta.profile));
            }
        }
        cases.push(CaseComparison {
            key: key.clone(),
            base_run: format!("{} ({})", br.run_id, br.commit()),
            new_run: format!("{} ({})", nr.run_id, nr.commit()),
            n: (bv.len(), nv.len()),
            base_median: median(&bv),
            new_median: median(&nv),
            ci,
            verdict: v,
            notes,
        });
    }
    Comparison {
        metric: opts.metric,
        threshold: opts.threshold,
        confidence: opts.confidence,
        cases,
        only_base: b.keys().filter(|k| !n.contains_key(k)).cloned().collect(),
        only_new: n.keys().filter(|k| !b.contains_key(k)).cloned().collect(),
        previous_vs_latest: opts.base.previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::record::MYELIN;
    use crate::bench::record::tests::sample;
    use crate::bench::stats::tests::timings;
    use crate::bench::stats::{DEFAULT_CONFIDENCE, DEFAULT_THRESHOLD};

    fn run(id: &str, date: &str, case: &str, times: &[f64]) -> Vec<Record> {
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let mut r = sample(case, MYELIN, i, t);
                r.run_id = id.into();
                r.meta.date = date.into();
                r
            })
            .collect()
    }

    fn opts() -> CompareOptions {
        CompareOptions {
            metric: Metric::Simulation,
            threshold: DEFAULT_THRESHOLD,
            confidence: DEFAULT_CONFIDENCE,
            base: Pick::default(),
            new: Pick::default(),
        }
    }

    #[test]
    fn an_injected_slowdown_is_reported_and_an_equal_run_is_not() {
        let base = run("r1", "2026-01-01T00:00:00Z", "brunel", &timings(2.0, 5, 1));
        let slow: Vec<f64> = timings(2.0, 5, 2).iter().map(|x| x * 1.2).collect();
        let mut new = run("r2", "2026-01-02T00:00:00Z", "brunel", &slow);
        new.extend(run("r2", "2026-01-02T00:00:00Z", "mixed", &[1.0; 3]));
        let c = compare_records(&base, &new, &opts());
        assert_eq!(c.cases.len(), 1);
        assert_eq!(c.cases[0].verdict, Verdict::Regression);
        assert_eq!(c.regressions(), 1);
        assert_eq!(c.only_new.len(), 1);
        let t = c.table();
        assert!(t.contains("REGRESSION") && t.contains("only in NEW"), "{t}");

        let same = run("r3", "2026-01-03T00:00:00Z", "brunel", &timings(2.0, 5, 3));
        let c = compare_records(&base, &same, &opts());
        assert_eq!(c.regressions(), 0);
        assert_eq!(c.cases[0].verdict, Verdict::Unchanged);
    }

    #[test]
    fn one_store_compares_its_last_two_runs_and_commits_can_be_picked() {
        let mut all = run("r1", "2026-01-01T00:00:00Z", "brunel", &[1.0, 1.01, 0.99]);
        let mut later = run("r2", "2026-01-02T00:00:00Z", "brunel", &[1.5, 1.51, 1.49]);
        for r in &mut later {
            r.meta.git_commit = Some("feedface".repeat(5));
        }
        all.extend(later);
        all.extend(run(
            "r3",
            "2026-01-03T00:00:00Z",
            "brunel",
            &[1.0, 1.0, 1.01],
        ));
        let mut o = opts();
        o.base.previous = true;
        let c = compare_records(&all, &all, &o);
        assert!(c.previous_vs_latest);
        assert!(c.cases[0].base_run.starts_with("r2"));
        assert_eq!(c.cases[0].verdict, Verdict::Improvement);
        let mut o = opts();
        o.new.commit = Some("feedface".into());
        o.base.commit = Some("0123".into());
        let c = compare_records(&all, &all, &o);
        assert!(c.cases[0].new_run.starts_with("r2"), "{:?}", c.cases[0]);
        assert!(c.cases[0].base_run.starts_with("r3"));
        assert_eq!(c.cases[0].verdict, Verdict::Regression);
    }
}
