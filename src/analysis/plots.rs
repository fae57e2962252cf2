//! Figures a scientist would otherwise make by hand: a raster plot (subsampled per
//! population), per-population rate histograms, and box plots of rates and CVs. Each is
//! written as PNG and SVG with plotters.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::weights::WeightStats;
use super::{PopulationStats, SpikeTrains};

/// Neurons per population shown in the raster plot.
pub const RASTER_NEURONS: usize = 100;
/// Longest stretch of time shown in the raster plot [ms].
pub const RASTER_SPAN_MS: f64 = 300.0;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Writes `raster`, `rates_hist` and `rates_box` as PNG and SVG into `dir`; returns the
/// files written.
pub fn write_plots(
    dir: &Path,
    trains: &[SpikeTrains],
    stats: &[PopulationStats],
    from: f64,
    to: f64,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let mut both = |name: &str,
                    size: (u32, u32),
                    draw: &dyn Fn(&DrawingArea<BitMapBackend<'_>, Shift>) -> PlotResult,
                    draw_svg: &dyn Fn(&DrawingArea<SVGBackend<'_>, Shift>) -> PlotResult|
     -> Result<(), String> {
        let png = dir.join(format!("{name}.png"));
        let svg = dir.join(format!("{name}.svg"));
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            draw(&root).map_err(|e| format!("{}: {e}", png.display()))?;
            root.present()
                .map_err(|e| format!("{}: {e}", png.display()))?;
        }
        {
            let root = SVGBackend::new(&svg, size).into_drawing_area();
            draw_svg(&root).map_err(|e| format!("{}: {e}", svg.display()))?;
            root.present()
                .map_err(|e| format!("{}: {e}", svg.display()))?;
        }
        files.push(png);
        files.push(svg);
        Ok(())
    };
    let t_end = to.min(from + RASTER_SPAN_MS);
    both(
        "raster",
        (1200, 800),
        &|a| raster(a, trains, from, t_end),
        &|a| raster(a, trains, from, t_end),
    )?;
    let rows = stats.len().div_ceil(4).max(1) as u32;
    both(
        "rates_hist",
        (1200, 300 * rows),
        &|a| histograms(a, stats),
        &|a| histograms(a, stats),
    )?;
    both("rates_box", (1200, 600), &|a| boxes(a, stats), &|a| {
        boxes(a, stats)
    })?;
    Ok(files)
}

/// Writes `weights.png` and `weights.svg` into `dir`, one row per weight recorder: the
/// histograms of the first and last samples, and the mean with its 1 % and 99 % quantiles
/// over time; returns the files written (none without recorders).
pub fn write_weight_plots(dir: &Path, stats: &[WeightStats]) -> Result<Vec<PathBuf>, String> {
    let shown: Vec<&WeightStats> = stats.iter().filter(|w| w.histogram.is_some()).collect();
    if shown.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let size = (1200, 360 * shown.len() as u32);
    let png = dir.join("weights.png");
    let svg = dir.join("weights.svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        weight_panels(&root, &shown).map_err(|e| format!("{}: {e}", png.display()))?;
        root.present()
            .map_err(|e| format!("{}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        weight_panels(&root, &shown).map_err(|e| format!("{}: {e}", svg.display()))?;
        root.present()
            .map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    Ok(vec![png, svg])
}

fn weight_panels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    stats: &[&WeightStats],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let rows = area.split_evenly((stats.len(), 2));
    for (k, w) in stats.iter().enumerate() {
        let Some(h) = &w.histogram else { continue };
        let (lo, hi) = (h.edges[0], h.edges[h.edges.len() - 1]);
        let pad = if hi > lo {
            0.0
        } else {
            lo.abs().max(1.0) * 0.01
        };
        let top = h
            .first
            .iter()
            .chain(&h.last)
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let (t0, t1) = (w.samples[0].t_ms, w.samples[w.samples.len() - 1].t_ms);
        let mut chart = ChartBuilder::on(&rows[2 * k])
            .caption(
                format!(
                    "{} ({}): first ({t0} ms) and last ({t1} ms) sample",
                    w.label, w.projection
                ),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("weight")
            .y_desc("synapses")
            .draw()?;
        for (counts, color, name) in [
            (&h.first, PALETTE[7], "first"),
            (&h.last, PALETTE[0], "last"),
        ] {
            chart
                .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                    Rectangle::new(
                        [(h.edges[i], 0.0), (h.edges[i + 1], c as f64)],
                        color.mix(0.55).filled(),
                    )
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        let ylo = w
            .samples
            .iter()
            .map(|s| s.quantiles[0])
            .fold(f64::INFINITY, f64::min);
        let yhi = w
            .samples
            .iter()
            .map(|s| s.quantiles[4])
            .fold(f64::NEG_INFINITY, f64::max);
        let ypad = ((yhi - ylo) * 0.05).max(lo.abs().max(1.0) * 1e-3);
        let mut chart = ChartBuilder::on(&rows[2 * k + 1])
            .caption("mean, 1 % and 99 % quantiles over time", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(t0..t1.max(t0 + 1.0), (ylo - ypad)..(yhi + ypad))?;
        chart
            .configure_mesh()
            .x_desc("time [ms]")
            .y_desc("weight")
            .draw()?;
        for (q, style) in [(0usize, PALETTE[7]), (4, PALETTE[7])] {
            chart.draw_series(LineSeries::new(
                w.samples.iter().map(|s| (s.t_ms, s.quantiles[q])),
                style,
            ))?;
        }
        chart.draw_series(LineSeries::new(
            w.samples.iter().map(|s| (s.t_ms, s.mean)),
            PALETTE[0].stroke_width(2),
        ))?;
    }
    Ok(())
}

fn raster<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    trains: &[SpikeTrains],
    from: f64,
    to: f64,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let rows = trains.len() * RASTER_NEURONS;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Spike raster ({RASTER_NEURONS} neurons per population)"),
            ("sans-serif", 24),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(from..to, 0.0..rows as f64)?;
    chart
        .configure_mesh()
        .x_desc("time [ms]")
        .disable_y_mesh()
        .y_labels(0)
        .draw()?;
    for (k, t) in trains.iter().enumerate() {
        let base = ((trains.len() - 1 - k) * RASTER_NEURONS) as f64;
        let color = PALETTE[k % PALETTE.len()];
        let pts = t
            .times
            .iter()
            .zip(&t.senders)
            .filter(|(time, s)| **time >= from && **time < to && (**s as usize) < RASTER_NEURONS)
            .map(|(time, s)| (*time, base + f64::from(*s)));
        chart.draw_series(pts.map(|p| Circle::new(p, 1, color.filled())))?;
        if k > 0 {
            let top = base + RASTER_NEURONS as f64;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(from, top), (to, top)],
                BLACK.mix(0.4),
            )))?;
        }
        let label_at = (
            from + (to - from) * 0.005,
            base + RASTER_NEURONS as f64 * 0.55,
        );
        chart.draw_series(std::iter::once(Text::new(
            t.population.clone(),
            label_at,
            ("sans-serif", 16).into_font().color(&color),
        )))?;
    }
    Ok(())
}

fn histograms<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    stats: &[PopulationStats],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let rows = stats.len().div_ceil(4).max(1);
    let panels = area.split_evenly((rows, 4));
    for (k, (p, panel)) in stats.iter().zip(panels.iter()).enumerate() {
        let rates = p.rates_hz.as_deref().unwrap_or(&[]);
        let max = rates.iter().copied().fold(0.0f64, f64::max).max(1.0) * 1.05;
        let bins = 30usize;
        let w = max / bins as f64;
        let mut h = vec![0u32; bins];
        for &r in rates {
            h[((r / w) as usize).min(bins - 1)] += 1;
        }
        let top = f64::from(h.iter().copied().max().unwrap_or(1).max(1)) * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(&p.population, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..max, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("rate [Hz]")
            .y_desc("neurons")
            .draw()?;
        let color = PALETTE[k % PALETTE.len()];
        chart.draw_series(h.iter().enumerate().map(|(i, &c)| {
            Rectangle::new(
                [(i as f64 * w, 0.0), ((i + 1) as f64 * w, f64::from(c))],
                color.filled(),
            )
        }))?;
    }
    Ok(())
}

fn boxes<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, stats: &[PopulationStats]) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
    let draw = |a: &DrawingArea<DB, Shift>,
                title: &str,
                unit: &str,
                data: Vec<(String, Vec<f64>)>|
     -> PlotResult {
        let max = data
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0f64, f64::max)
            .max(0.1)
            * 1.05;
        let names: Vec<String> = data.iter().map(|d| d.0.clone()).collect();
        let mut chart = ChartBuilder::on(a)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(names.into_segmented(), 0.0f32..max as f32)?;
        chart
            .configure_mesh()
            .y_desc(unit)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(s) | SegmentValue::Exact(s) => (*s).clone(),
                SegmentValue::Last => String::new(),
            })
            .draw()?;
        for (k, (name, v)) in data.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            let q = Quartiles::new(v);
            chart.draw_series(std::iter::once(
                Boxplot::new_vertical(SegmentValue::CenterOf(name), &q)
                    .width(30)
                    .style(PALETTE[k % PALETTE.len()]),
            ))?;
        }
        Ok(())
    };
    draw(
        &left,
        "Per-neuron rate",
        "rate [Hz]",
        stats
            .iter()
            .map(|p| (p.population.clone(), p.rates_hz.clone().unwrap_or_default()))
            .collect(),
    )?;
    draw(
        &right,
        "CV of inter-spike intervals",
        "CV",
        stats
            .iter()
            .map(|p| (p.population.clone(), p.cvs.clone().unwrap_or_default()))
            .collect(),
    )?;
    Ok(())
}
