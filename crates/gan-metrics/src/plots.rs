//! Figures as PNG bytes (plotters, drawn with a bundled DejaVu font so no system fonts are needed):
//! ROC and precision–recall curves with AUROC/AP in the legend, per-statistic histograms of normal
//! vs abnormal scores, and training loss curves.

use std::collections::BTreeMap;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::{MetricsError, Result};
use crate::precision::PrPoint;
use crate::roc::RocPoint;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn plot_err(what: &str) -> impl Fn(String) -> MetricsError + '_ {
    move |message| MetricsError::Plot {
        what: what.to_string(),
        message,
    }
}

/// Renders into an RGB buffer and encodes it as PNG.
fn render(
    what: &str,
    (w, h): (u32, u32),
    draw: impl FnOnce(
        DrawingArea<BitMapBackend, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    register_font();
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| plot_err(what)(e.to_string()))?;
        draw(root.clone()).map_err(plot_err(what))?;
        root.present().map_err(|e| plot_err(what)(e.to_string()))?;
    }
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| plot_err(what)("buffer size".into()))?;
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| plot_err(what)(e.to_string()))?;
    Ok(png)
}

fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(80, 80, 80),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

/// One curve per statistic: (label for the legend, points as (x, y)).
fn curves_png(
    what: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    curves: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
) -> Result<Vec<u8>> {
    render(what, (900, 700), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 26))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        if diagonal {
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
                .map_err(e)?;
        }
        for (i, (label, points)) in curves.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(e)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        Ok(())
    })
}

/// `name (WHAT 0.123)`, or `undefined` when the value is.
fn legend(name: &str, what: &str, values: &BTreeMap<String, Option<f64>>) -> String {
    let value = values
        .get(name)
        .copied()
        .flatten()
        .map(|v| format!("{v:.3}"));
    format!(
        "{name} ({what} {})",
        value.as_deref().unwrap_or("undefined")
    )
}

/// ROC curves, AUROC in the legend.
pub fn roc_png(
    curves: &BTreeMap<String, Vec<RocPoint>>,
    aurocs: &BTreeMap<String, Option<f64>>,
) -> Result<Vec<u8>> {
    let series: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(name, c)| {
            (
                legend(name, "AUROC", aurocs),
                c.iter().map(|p| (p.fpr, p.tpr)).collect(),
            )
        })
        .collect();
    curves_png(
        "roc.png",
        "ROC, image level",
        "false positive rate (1 − specificity)",
        "true positive rate (sensitivity)",
        &series,
        true,
    )
}

/// Precision–recall curves, AP in the legend.
pub fn pr_png(
    curves: &BTreeMap<String, Vec<PrPoint>>,
    aps: &BTreeMap<String, Option<f64>>,
) -> Result<Vec<u8>> {
    let series: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(name, c)| {
            let mut points = vec![(0.0, c.first().map(|p| p.precision).unwrap_or(1.0))];
            points.extend(c.iter().map(|p| (p.recall, p.precision)));
            (legend(name, "AP", aps), points)
        })
        .collect();
    curves_png(
        "pr.png",
        "Precision–recall, image level",
        "recall (sensitivity)",
        "precision",
        &series,
        false,
    )
}

/// One histogram panel per statistic: normal (blue) and abnormal (red) densities.
pub fn histograms_png(distributions: &BTreeMap<String, (Vec<f64>, Vec<f64>)>) -> Result<Vec<u8>> {
    let panels: Vec<_> = distributions.iter().collect();
    let cols = 4usize;
    let rows = panels.len().div_ceil(cols).max(1);
    render("histograms.png", (1200, 300 * rows as u32), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let areas = root.split_evenly((rows, cols));
        for ((name, (normal, abnormal)), area) in panels.iter().zip(areas) {
            let all: Vec<f64> = normal.iter().chain(abnormal.iter()).copied().collect();
            if all.is_empty() {
                continue;
            }
            let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
            let mut hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if hi <= lo {
                hi = lo + 1.0;
            }
            let bins = 30usize;
            let width = (hi - lo) / bins as f64;
            let density = |v: &[f64]| -> Vec<f64> {
                let mut h = vec![0.0; bins];
                for x in v {
                    let b = (((x - lo) / width) as usize).min(bins - 1);
                    h[b] += 1.0;
                }
                let n = v.len().max(1) as f64;
                h.iter().map(|c| c / n).collect()
            };
            let (hn, ha) = (density(normal), density(abnormal));
            let top = hn.iter().chain(&ha).copied().fold(0.0, f64::max).max(1e-9) * 1.1;
            let mut chart = ChartBuilder::on(&area)
                .caption(name.as_str(), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(25)
                .y_label_area_size(35)
                .build_cartesian_2d(lo..hi, 0.0..top)
                .map_err(e)?;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 11))
                .x_labels(4)
                .y_labels(4)
                .draw()
                .map_err(e)?;
            for (h, c, label) in [(&hn, BLUE, "normal"), (&ha, RED, "abnormal")] {
                chart
                    .draw_series(h.iter().enumerate().map(|(i, v)| {
                        let x0 = lo + i as f64 * width;
                        Rectangle::new([(x0, 0.0), (x0 + width, *v)], c.mix(0.35).filled())
                    }))
                    .map_err(e)?
                    .label(label)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.mix(0.5).filled())
                    });
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 11))
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(e)?;
        }
        Ok(())
    })
}

/// Training curves from `losses.csv`: one line per loss column, and the calibration L1.
pub fn losses_png(csv_text: &str) -> Result<Vec<u8>> {
    let mut lines = csv_text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let columns: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].ends_with("_loss") || header[i] == "calibration_l1")
        .collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = columns
        .iter()
        .map(|&c| {
            (
                header[c].to_string(),
                rows.iter()
                    .filter(|r| r.len() > c && r[c].is_finite())
                    .map(|r| (r[0] + 1.0, r[c]))
                    .collect(),
            )
        })
        .collect();
    let max_x = rows.len().max(2) as f64;
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    render("losses.png", (900, 500), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut chart = ChartBuilder::on(&root)
            .caption("Training losses per epoch", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(1f64..max_x, 0f64..max_y)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("mean loss")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(e)?;
        for (i, (label, points)) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(e)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(e)?;
        Ok(())
    })
}
