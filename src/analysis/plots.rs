//! Figures a scientist would otherwise make by hand: a raster plot (subsampled per
//! population), per-population rate histograms, and box plots of rates and CVs. Each is
//! written as PNG and SVG with plotters.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

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
