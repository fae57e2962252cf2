//! `myelin bench plot STORE --out DIR`: figures of a store, each as PNG and SVG:
//! `rtf_history` (real-time factor per commit, one line per case), `phases` (stacked
//! per-phase times of each case's latest run), `scaling_threads` (real-time factor over
//! threads) and, when runs with several ranks exist, `scaling_ranks`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::BenchError;
use super::compare::{Metric, runs_by_key, short_commit};
use super::record::{CaseKey, Record};
use super::stats::median;

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];

/// Colours of the phases in `phases` (construction in blues, simulation in warm tones,
/// unattributed time in greys).
const PHASE_COLORS: [(&str, RGBColor); 12] = [
    ("create", RGBColor(198, 219, 239)),
    ("connect", RGBColor(107, 174, 214)),
    ("prepare", RGBColor(33, 113, 181)),
    ("construction (other)", RGBColor(189, 189, 189)),
    ("inputs", RGBColor(254, 217, 118)),
    ("integrate", RGBColor(253, 141, 60)),
    ("exchange", RGBColor(116, 196, 118)),
    ("deliver", RGBColor(227, 26, 28)),
    ("plasticity", RGBColor(158, 154, 200)),
    ("record", RGBColor(140, 81, 10)),
    ("checkpoint", RGBColor(1, 102, 94)),
    ("simulation (other)", RGBColor(115, 115, 115)),
];

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Draws the figures of `records` into `dir`; returns the files written.
pub fn write_plots(dir: &Path, records: &[Record]) -> Result<Vec<PathBuf>, BenchError> {
    if records.is_empty() {
        return Err(BenchError::Empty("no records to plot".into()));
    }
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    let history = History::new(records);
    let h_rows = history.series.len().div_ceil(2) as u32;
    save(
        dir,
        "rtf_history",
        (1200, 600 + 22 * h_rows),
        &mut files,
        &|a| draw_history(a, &history),
        &|a| draw_history(a, &history),
    )?;
    let bars = phase_bars(records);
    let panels = bars.len() as u32;
    save(
        dir,
        "phases",
        (1200, 120 + 420 * panels.div_ceil(2)),
        &mut files,
        &|a| draw_phases(a, &bars),
        &|a| draw_phases(a, &bars),
    )?;
    let threads = scaling(records, |k| k.threads, |k| k.ranks);
    save(
        dir,
        "scaling_threads",
        (1000, 700),
        &mut files,
        &|a| draw_scaling(a, &threads, "threads"),
        &|a| draw_scaling(a, &threads, "threads"),
    )?;
    if records.iter().any(|r| r.params.ranks > 1) {
        let ranks = scaling(records, |k| k.ranks, |k| k.threads);
        save(
            dir,
            "scaling_ranks",
            (1000, 700),
            &mut files,
            &|a| draw_scaling(a, &ranks, "MPI ranks"),
            &|a| draw_scaling(a, &ranks, "MPI ranks"),
        )?;
    }
    Ok(files)
}

/// Writes one figure as `NAME.png` and `NAME.svg`.
fn save(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    files: &mut Vec<PathBuf>,
    png: &dyn Fn(&DrawingArea<BitMapBackend<'_>, Shift>) -> PlotResult,
    svg: &dyn Fn(&DrawingArea<SVGBackend<'_>, Shift>) -> PlotResult,
) -> Result<(), BenchError> {
    let err = |file: &Path, e: &dyn std::fmt::Display| BenchError::Plot {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    let p = dir.join(format!("{name}.png"));
    {
        let root = BitMapBackend::new(&p, size).into_drawing_area();
        png(&root).map_err(|e| err(&p, &e))?;
        root.present().map_err(|e| err(&p, &e))?;
    }
    let s = dir.join(format!("{name}.svg"));
    {
        let root = SVGBackend::new(&s, size).into_drawing_area();
        svg(&root).map_err(|e| err(&s, &e))?;
        root.present().map_err(|e| err(&s, &e))?;
    }
    files.push(p);
    files.push(s);
    Ok(())
}

/// The real-time factor per commit: commits in the order first seen (by date), one
/// series per case key with the median over all repeats of that commit.
struct History {
    commits: Vec<String>,
    series: Vec<(String, Vec<HistoryPoint>)>,
}

/// A point of the history: (commit index, median, min, max).
type HistoryPoint = (usize, f64, f64, f64);

impl History {
    fn new(records: &[Record]) -> Self {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by(|a, b| (&a.meta.date, &a.run_id).cmp(&(&b.meta.date, &b.run_id)));
        let mut commits: Vec<String> = Vec::new();
        for r in &sorted {
            let c = short_commit(r);
            if !commits.contains(&c) {
                commits.push(c);
            }
        }
        let mut per: BTreeMap<CaseKey, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
        for r in &sorted {
            let i = commits
                .iter()
                .position(|c| *c == short_commit(r))
                .unwrap_or(0);
            per.entry(r.key())
                .or_default()
                .entry(i)
                .or_default()
                .push(r.results.real_time_factor);
        }
        let series = per
            .into_iter()
            .map(|(k, m)| {
                let pts = m
                    .into_iter()
                    .map(|(i, v)| {
                        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        (i, median(&v), lo, hi)
                    })
                    .collect();
                (k.to_string(), pts)
            })
            .collect();
        Self { commits, series }
    }
}

/// A logarithmic axis range holding every positive value of `v`, widened a little.
fn log_range(v: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = v
        .filter(|x| *x > 0.0 && x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    if lo.is_finite() {
        lo / 1.5..hi * 1.5
    } else {
        0.1..10.0
    }
}

fn draw_history<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, h: &History) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let n = h.commits.len();
    let y = log_range(
        h.series
            .iter()
            .flat_map(|(_, p)| p.iter().flat_map(|q| [q.2, q.3])),
    );
    let (plot, legend) =
        area.split_vertically(area.dim_in_pixel().1 - 22 * h.series.len().div_ceil(2) as u32 - 10);
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            "Real-time factor per commit (median, min-max over repeats)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y.log_scale())?;
    let commits = h.commits.clone();
    chart
        .configure_mesh()
        .x_labels(n.clamp(1, 30))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                commits.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("commit (+: dirty tree)")
        .y_desc("real-time factor (wall / simulated)")
        .draw()?;
    for (k, (_, pts)) in h.series.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        chart.draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0 as f64, p.1)),
            c.stroke_width(2),
        ))?;
        chart.draw_series(
            pts.iter()
                .map(|p| Circle::new((p.0 as f64, p.1), 4, c.filled())),
        )?;
        chart.draw_series(pts.iter().map(|p| {
            PathElement::new(
                vec![(p.0 as f64, p.2), (p.0 as f64, p.3)],
                c.stroke_width(1),
            )
        }))?;
    }
    legend_strip(
        &legend,
        &h.series
            .iter()
            .enumerate()
            .map(|(k, (name, _))| (name.clone(), PALETTE[k % PALETTE.len()]))
            .collect::<Vec<_>>(),
        2,
    )
}

/// A legend of coloured squares and names, in `columns` columns.
fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor)],
    columns: usize,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let col_w = (w as usize / columns.max(1)) as i32;
    for (k, (name, c)) in items.iter().enumerate() {
        let x = 20 + (k % columns) as i32 * col_w;
        let y = 4 + (k / columns) as i32 * 22;
        area.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], c.filled()))?;
        area.draw(&Text::new(name.clone(), (x + 20, y), ("sans-serif", 15)))?;
    }
    Ok(())
}

/// Stacked bars of one case (one panel): per variant (simulator, threads, ...) the
/// medians of every phase of its latest run.
struct PhasePanel {
    case: String,
    bars: Vec<(String, Vec<(&'static str, f64)>)>,
}

fn phase_bars(records: &[Record]) -> Vec<PhasePanel> {
    let runs = runs_by_key(records);
    let mut panels: Vec<PhasePanel> = Vec::new();
    for (key, runs) in &runs {
        let Some(run) = runs.last() else { continue };
        let med = |f: &dyn Fn(&Record) -> Option<f64>| {
            let v: Vec<f64> = run.records.iter().filter_map(|r| f(r)).collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let mut segs: Vec<(&'static str, f64)> = Vec::new();
        let construction = med(&|r| Some(r.timers.construction_s)).unwrap_or(0.0);
        let simulation = med(&|r| Some(r.timers.simulation_s)).unwrap_or(0.0);
        let mut c_sum = 0.0;
        for (name, f) in [
            (
                "create",
                (|r: &Record| r.timers.create_s) as fn(&Record) -> Option<f64>,
            ),
            ("connect", |r| r.timers.connect_s),
            ("prepare", |r| r.timers.prepare_s),
        ] {
            if let Some(t) = med(&f) {
                segs.push((name, t));
                c_sum += t;
            }
        }
        segs.push(("construction (other)", (construction - c_sum).max(0.0)));
        let mut s_sum = 0.0;
        for (name, f) in [
            (
                "inputs",
                (|r: &Record| r.timers.inputs_s) as fn(&Record) -> Option<f64>,
            ),
            ("integrate", |r| r.timers.integrate_s),
            ("exchange", |r| r.timers.exchange_s),
            ("deliver", |r| r.timers.deliver_s),
            ("plasticity", |r| r.timers.plasticity_s),
            ("record", |r| r.timers.record_s),
            ("checkpoint", |r| r.timers.checkpoint_s),
        ] {
            if let Some(t) = med(&f) {
                segs.push((name, t));
                s_sum += t;
            }
        }
        segs.push(("simulation (other)", (simulation - s_sum).max(0.0)));
        segs.retain(|(_, t)| *t > 0.0);
        let label = format!(
            "{} {}t s{} {}ms",
            key.simulator, key.threads, key.scale, key.duration
        );
        match panels.iter_mut().find(|p| p.case == key.case) {
            Some(p) => p.bars.push((label, segs)),
            None => panels.push(PhasePanel {
                case: key.case.clone(),
                bars: vec![(label, segs)],
            }),
        }
    }
    panels
}

fn phase_color(name: &str) -> RGBColor {
    PHASE_COLORS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(BLACK, |(_, c)| *c)
}

fn draw_phases<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panels: &[PhasePanel],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (title, rest) = area.split_vertically(40);
    title.draw(&Text::new(
        "Wall time per phase (median over the repeats of each case's latest run)",
        (20, 10),
        ("sans-serif", 22),
    ))?;
    let (legend, body) = rest.split_vertically(60);
    legend_strip(
        &legend,
        &PHASE_COLORS
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect::<Vec<_>>(),
        6,
    )?;
    let rows = panels.len().div_ceil(2).max(1);
    let cells = body.split_evenly((rows, 2));
    for (p, cell) in panels.iter().zip(cells.iter()) {
        let n = p.bars.len();
        let top = p
            .bars
            .iter()
            .map(|(_, s)| s.iter().map(|x| x.1).sum::<f64>())
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let labels: Vec<String> = p.bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(cell)
            .caption(&p.case, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("wall time [s]")
            .draw()?;
        for (i, (_, segs)) in p.bars.iter().enumerate() {
            let mut y0 = 0.0;
            for (name, t) in segs {
                let x = i as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.35, y0), (x + 0.35, y0 + t)],
                    phase_color(name).filled(),
                )))?;
                y0 += t;
            }
        }
    }
    Ok(())
}

/// Scaling series: per key without the varied axis, `(axis value, median RTF)` of the
/// latest run of each value.
type Scaling = Vec<(String, Vec<(usize, f64)>)>;

fn scaling(
    records: &[Record],
    axis: fn(&CaseKey) -> usize,
    other: fn(&CaseKey) -> usize,
) -> Scaling {
    let runs = runs_by_key(records);
    let mut series: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (k, runs) in &runs {
        let Some(run) = runs.last() else { continue };
        let name = format!(
            "{} [{}, scale {}, {} {}, {}, {} ms]",
            k.case,
            k.simulator,
            k.scale,
            other(k),
            if axis(k) == k.threads {
                "rank(s)"
            } else {
                "thread(s)"
            },
            k.backend,
            k.duration
        );
        series
            .entry(name)
            .or_default()
            .push((axis(k), median(&run.values(Metric::Rtf))));
    }
    series
        .into_iter()
        .map(|(n, mut v)| {
            v.sort_by_key(|p| p.0);
            (n, v)
        })
        .collect()
}

fn draw_scaling<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &Scaling,
    axis: &str,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max_x = s
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let y = log_range(s.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)));
    let legend_h = 22 * s.len() as u32 + 10;
    let (plot, legend) =
        area.split_vertically(area.dim_in_pixel().1.saturating_sub(legend_h).max(200));
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!("Real-time factor over {axis} (latest run, median)"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((0.8..max_x * 1.25).log_scale(), y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc(axis)
        .y_desc("real-time factor")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (k, (_, v)) in s.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        chart.draw_series(LineSeries::new(
            v.iter().map(|p| (p.0 as f64, p.1)),
            c.stroke_width(2),
        ))?;
        chart.draw_series(
            v.iter()
                .map(|p| Circle::new((p.0 as f64, p.1), 5, c.filled())),
        )?;
    }
    legend_strip(
        &legend,
        &s.iter()
            .enumerate()
            .map(|(k, (n, _))| (n.clone(), PALETTE[k % PALETTE.len()]))
            .collect::<Vec<_>>(),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::record::MYELIN;
    use crate::bench::record::tests::sample;

    #[test]
    fn plots_are_written_and_not_empty() {
        let mut records = Vec::new();
        for (run, commit, f) in [
            ("r1", "aaaa", 1.0),
            ("r2", "bbbb", 0.9),
            ("r3", "cccc", 0.95),
        ] {
            for threads in [1, 2] {
                for sim in [MYELIN, "nest"] {
                    for i in 0..3 {
                        let mut r = sample("brunel", sim, i, f * 2.0 / threads as f64);
                        r.run_id = run.into();
                        r.meta.date = format!("2026-01-0{}T00:00:00Z", &run[1..]);
                        r.meta.git_commit = Some(commit.repeat(10));
                        r.params.threads = threads;
                        if sim != MYELIN {
                            r.timers.inputs_s = None;
                            r.timers.deliver_s = None;
                        }
                        records.push(r);
                    }
                }
            }
        }
        let mut ranked = sample("mixed", MYELIN, 0, 0.5);
        ranked.params.ranks = 2;
        records.push(ranked);
        let dir = tempfile::tempdir().unwrap();
        let files = write_plots(dir.path(), &records).unwrap();
        for name in ["rtf_history", "phases", "scaling_threads", "scaling_ranks"] {
            for ext in ["png", "svg"] {
                let f = dir.path().join(format!("{name}.{ext}"));
                assert!(files.contains(&f), "{f:?} not listed");
                assert!(
                    std::fs::metadata(&f).unwrap().len() > 1000,
                    "{f:?} is empty"
                );
            }
        }
        assert!(write_plots(dir.path(), &[]).is_err());
    }
}
