//! The terminal report at the end of `myelin bench`: per case, the median, minimum and
//! maximum over the repeats of construction time, simulation time, real-time factor and
//! peak memory, each compared with the previous run of the same case on the same machine;
//! then Myelin side by side with its peers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::compare::{CompareOptions, Metric, Pick, RunSamples, compare_records, sig};
use super::record::{CaseKey, MYELIN, Record};
use super::stats::median;

/// Mean CPUs kept busy by other processes above which a run counts as taken under load.
pub const LOAD_WARNING: f64 = 0.5;

/// The metrics of the report's rows, in order.
pub const REPORT_METRICS: [Metric; 4] = [
    Metric::Construction,
    Metric::Simulation,
    Metric::Rtf,
    Metric::Memory,
];

/// The report of a run (`records`) against the store's earlier records (`history`), with
/// verdicts at `threshold` and `confidence`.
pub fn report(records: &[Record], history: &[Record], threshold: f64, confidence: f64) -> String {
    let mut s = String::new();
    let Some(first) = records.first() else {
        return "no records\n".into();
    };
    let machine = first.meta.machine();
    let same_machine: Vec<Record> = history
        .iter()
        .filter(|r| r.meta.machine() == machine)
        .cloned()
        .collect();
    let comparisons: Vec<_> = REPORT_METRICS
        .iter()
        .map(|&metric| {
            let opts = CompareOptions {
                metric,
                threshold,
                confidence,
                base: Pick::default(),
                new: Pick::default(),
            };
            let c = compare_records(&same_machine, records, &opts);
            c.cases
                .into_iter()
                .map(|c| (c.key.clone(), c))
                .collect::<BTreeMap<_, _>>()
        })
        .collect();
    let runs = super::compare::runs_by_key(records);
    let mut order: Vec<&CaseKey> = Vec::new();
    for r in records {
        if let Some((k, _)) = runs.get_key_value(&r.key())
            && !order.contains(&k)
        {
            order.push(k);
        }
    }
    let _ = writeln!(
        s,
        "machine {machine}, {} CPUs, {:.1} GiB; commit {}{}; {} build",
        first.meta.cpus,
        first.meta.memory_bytes as f64 / (1u64 << 30) as f64,
        first.meta.git_commit.as_deref().unwrap_or("?"),
        if first.meta.git_dirty == Some(true) {
            " (dirty tree)"
        } else {
            ""
        },
        first.meta.profile
    );
    for key in order {
        let run = &runs[key][0];
        let r0 = run.records[0];
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{key}: {} repeat(s); {} neurons, {} synapses, {} spikes",
            run.records.len(),
            group(r0.results.neurons),
            group(r0.results.synapses),
            group(r0.results.spikes)
        );
        let _ = writeln!(
            s,
            "  {:<22} {:>10} {:>10} {:>10} {:>10} {:>7}  verdict",
            "", "median", "min", "max", "previous", "ratio"
        );
        for (m, cmp) in REPORT_METRICS.iter().zip(&comparisons) {
            let v = run.values(*m);
            if v.is_empty() {
                continue;
            }
            let (min, max) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            let (prev, ratio, verdict) = match cmp.get(key) {
                Some(c) => (
                    sig(c.base_median),
                    format!("{:.3}", c.ci.ratio),
                    c.verdict.text().to_string(),
                ),
                None => ("-".into(), "-".into(), String::new()),
            };
            let _ = writeln!(
                s,
                "  {:<22} {:>10} {:>10} {:>10} {:>10} {:>7}  {verdict}",
                m.label(),
                sig(median(&v)),
                sig(min),
                sig(max),
                prev,
                ratio
            );
        }
        match comparisons[0].get(key) {
            Some(c) => {
                let _ = writeln!(s, "  previous: run {}", c.base_run);
            }
            None => {
                let _ = writeln!(s, "  previous: none of this case on this machine");
            }
        }
        let load = run
            .records
            .iter()
            .filter_map(|r| r.meta.foreign_load)
            .fold(0.0f64, f64::max);
        if load > LOAD_WARNING {
            let _ = writeln!(
                s,
                "  note: other processes kept up to {load:.2} CPUs busy during these runs (timings taken under load)"
            );
        }
    }
    let peers = peer_table(&runs);
    if !peers.is_empty() {
        let _ = writeln!(s);
        s.push_str(&peers);
    }
    s
}

/// Myelin beside each peer, per case (medians; the peer's run paired with Myelin's of the
/// same thread count, else Myelin's with the most threads).
fn peer_table(runs: &BTreeMap<CaseKey, Vec<RunSamples<'_>>>) -> String {
    let w = runs
        .keys()
        .map(|k| k.case.len() + k.duration.len() + 6)
        .max()
        .unwrap_or(4);
    let mut rows = Vec::new();
    for (pk, pruns) in runs.iter().filter(|(k, _)| k.simulator != MYELIN) {
        let same = |k: &CaseKey| {
            k.simulator == MYELIN
                && k.case == pk.case
                && k.scale == pk.scale
                && k.ranks == pk.ranks
                && k.duration == pk.duration
        };
        let mine = runs
            .iter()
            .filter(|(k, _)| same(k))
            .max_by_key(|(k, _)| (k.threads == pk.threads, k.threads));
        let Some((mk, mruns)) = mine else { continue };
        let med = |r: &RunSamples<'_>, m: Metric| median(&r.values(m));
        let (m, p) = (&mruns[0], &pruns[0]);
        rows.push(format!(
            "{:<w$} {:>4} {:>9} {:>9} {:>9} | {:<6} {:>4} {:>9} {:>9} {:>9} | {:>6} {:>6} {:>6}",
            format!("{} ({} ms)", pk.case, pk.duration),
            mk.threads,
            sig(med(m, Metric::Construction)),
            sig(med(m, Metric::Rtf)),
            sig(med(m, Metric::Memory)),
            pk.simulator,
            pk.threads,
            sig(med(p, Metric::Construction)),
            sig(med(p, Metric::Rtf)),
            sig(med(p, Metric::Memory)),
            ratio(med(p, Metric::Construction), med(m, Metric::Construction)),
            ratio(med(p, Metric::Rtf), med(m, Metric::Rtf)),
            ratio(med(p, Metric::Memory), med(m, Metric::Memory)),
        ));
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Myelin and its peers (medians; construction [s], RTF, peak memory [MiB]; ratios peer / Myelin)"
    );
    let _ = writeln!(
        s,
        "{:<w$} {:>4} {:>9} {:>9} {:>9} | {:<6} {:>4} {:>9} {:>9} {:>9} | {:>6} {:>6} {:>6}",
        "case",
        "thr",
        "constr",
        "RTF",
        "memory",
        "peer",
        "thr",
        "constr",
        "RTF",
        "memory",
        "constr",
        "RTF",
        "memory"
    );
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
    s
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// An integer with thousands separators.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::record::tests::sample;

    #[test]
    fn the_report_compares_with_the_previous_run_and_the_peers() {
        let mk = |id: &str, sim: &str, t: f64| -> Vec<Record> {
            (0..3)
                .map(|i| {
                    let mut r = sample("brunel", sim, i, t * (1.0 + 0.01 * i as f64));
                    r.run_id = id.into();
                    r
                })
                .collect()
        };
        let history = mk("old", MYELIN, 1.0);
        let mut now = mk("new", MYELIN, 1.5);
        now.extend(mk("new", "nest", 3.0));
        now[0].meta.foreign_load = Some(1.5);
        let text = report(&now, &history, 0.05, 0.95);
        assert!(text.contains("brunel [myelin"), "{text}");
        assert!(text.contains("REGRESSION"), "{text}");
        assert!(text.contains("previous: run old"), "{text}");
        assert!(text.contains("previous: none"), "{text}");
        assert!(text.contains("under load"), "{text}");
        assert!(text.contains("Myelin and its peers"), "{text}");
        assert!(text.contains("2.00x"), "{text}");
        assert_eq!(group(15_625_000), "15,625,000");
    }
}
