//! The self-contained HTML report: every figure embedded as a base64 PNG (it opens offline, and
//! can be mailed as one file), the metrics table with the primary statistic as the headline and the
//! best one marked exploratory, training curves, a sample sheet and a gallery of the most and least
//! anomalous images with their residual maps.

use base64::Engine;

use crate::evaluate::{Metrics, StatisticMetrics};

/// An image of the gallery.
pub struct GalleryItem {
    pub caption: String,
    pub png: Vec<u8>,
}

/// What goes into a report besides the metrics.
#[derive(Default)]
pub struct ReportParts {
    pub title: String,
    /// (caption, PNG bytes) of each figure, in order.
    pub figures: Vec<(String, Vec<u8>)>,
    pub most_anomalous: Vec<GalleryItem>,
    pub least_anomalous: Vec<GalleryItem>,
    /// Free lines about the run (model, data, checkpoint).
    pub notes: Vec<String>,
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn img(png: &[u8], alt: &str, class: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    format!(
        r#"<img class="{class}" alt="{}" src="data:image/png;base64,{data}">"#,
        escape(alt)
    )
}

pub(crate) fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into())
}

/// A study-level row: the columns that exist at study level (no calibration threshold there).
fn study_row(name: &str, m: &StatisticMetrics) -> String {
    let ci = m
        .auroc_ci
        .map(|[lo, hi]| format!("{lo:.3}–{hi:.3}"))
        .unwrap_or_else(|| "—".into());
    format!(
        "<tr><td>{}</td><td>{}</td><td>{ci}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        escape(name),
        num(m.auroc),
        num(m.ap),
        num(m.sensitivity_at_95_specificity),
        num(m.youden.as_ref().and_then(|y| y.sensitivity)),
    )
}

fn row(name: &str, m: &StatisticMetrics, marks: &str) -> String {
    let ci = m
        .auroc_ci
        .map(|[lo, hi]| format!("{lo:.3}–{hi:.3}"))
        .unwrap_or_else(|| "—".into());
    let calib = m.calibration_threshold.as_ref();
    format!(
        "<tr><td>{}{marks}</td><td>{}</td><td>{ci}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        escape(name),
        num(m.auroc),
        num(m.ap),
        num(m.sensitivity_at_95_specificity),
        num(m.youden.as_ref().and_then(|y| y.sensitivity)),
        num(calib.and_then(|c| c.sensitivity)),
        num(calib.and_then(|c| c.specificity)),
        num(calib.and_then(|c| c.f1)),
        num(calib.and_then(|c| c.kappa)),
    )
}

/// The start of a page (head, style, `<h1>`) shared by the report, the benchmark page and the
/// predictions page.
pub fn page_start(title: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>\
         body{{font-family:sans-serif;max-width:1250px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.fig{{max-width:100%;border:1px solid #ddd;margin:.5em 0}}\
         .gallery{{display:flex;flex-wrap:wrap;gap:8px}}.thumb{{width:400px;max-width:100%;image-rendering:pixelated;border:1px solid #ddd}}\
         figure{{margin:0;font-size:12px;width:404px;max-width:100%;overflow-wrap:anywhere}}details{{margin:1em 0}}summary{{cursor:pointer;font-weight:bold}}\
         table{{max-width:100%;overflow-x:auto;display:block}}img{{max-width:100%}}\
         .path{{text-align:left;overflow-wrap:anywhere}}.note{{color:#555}}.headline{{font-size:1.3em}}</style></head><body>\n<h1>{0}</h1>\n",
        escape(title)
    )
}

/// The report as one HTML document: the headline (primary statistic, AUROC with its CI) and the
/// figures first, then AUROC per group, then every statistic's numbers folded away, then the
/// gallery of the most and least anomalous images.
pub fn render_html(metrics: &Metrics, parts: &ReportParts) -> String {
    let mut html = page_start(&parts.title);
    let primary = metrics.image_level.get(&metrics.primary.statistic);
    let ci = primary
        .and_then(|m| m.auroc_ci)
        .map(|[lo, hi]| format!(" (95 % CI {lo:.3}–{hi:.3})"))
        .unwrap_or_default();
    html.push_str(&format!(
        "<p class=\"headline\">Primary statistic <b>{}</b> (fixed before looking at labels): image-level AUROC <b>{}</b>{ci}.</p>\n\
         <p>Best statistic <b>{}</b>: AUROC {} — <i>exploratory: chosen with the test labels, an optimistic estimate</i>.</p>\n\
         <p>{} normal and {} abnormal images evaluated; {} normal validation (calibration) images set the unsupervised threshold. \
         AUROC is reported as measured, never flipped; a statistic below 0.5 ranks abnormal images as <i>more</i> normal.</p>\n",
        escape(&metrics.primary.statistic),
        num(metrics.primary.auroc),
        escape(&metrics.best.statistic),
        num(metrics.best.auroc),
        metrics.n_normal,
        metrics.n_abnormal,
        metrics.n_calibration
    ));
    for note in &parts.notes {
        html.push_str(&format!("<p class=\"note\">{}</p>\n", escape(note)));
    }
    for (caption, png) in &parts.figures {
        html.push_str(&format!(
            "<h2>{}</h2>{}\n",
            escape(caption),
            img(png, caption, "fig")
        ));
    }
    if !metrics.by_group.is_empty() {
        html.push_str(&format!("<h2>By group: AUROC of the primary statistic ({})</h2><table><tr><th>group</th><th>normal</th><th>abnormal</th><th>AUROC</th><th>95% CI</th></tr>\n", escape(&metrics.primary.statistic)));
        for (group, per_stat) in &metrics.by_group {
            if let Some(m) = per_stat.get(&metrics.primary.statistic) {
                let ci = m
                    .auroc_ci
                    .map(|[lo, hi]| format!("{lo:.3}–{hi:.3}"))
                    .unwrap_or_else(|| m.undefined.clone().unwrap_or_else(|| "—".into()));
                html.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{ci}</td></tr>\n",
                    escape(group),
                    m.n_normal,
                    m.n_abnormal,
                    num(m.auroc)
                ));
            }
        }
        html.push_str("</table>\n");
    }
    html.push_str(&format!(
        "<details><summary>Image level: every statistic ({})</summary><table><tr><th>statistic</th><th>AUROC</th><th>95% CI (DeLong)</th><th>AP</th><th>sens @ 95% spec</th><th>Youden sens</th><th>calib-threshold sens</th><th>spec</th><th>F1</th><th>κ</th></tr>\n",
        metrics.statistics.len()
    ));
    for name in &metrics.statistics {
        if let Some(m) = metrics.image_level.get(name) {
            let mut marks = String::new();
            if *name == metrics.primary.statistic {
                marks.push_str(" (primary)");
            }
            if *name == metrics.best.statistic {
                marks.push_str(" (best, exploratory)");
            }
            html.push_str(&row(name, m, &marks));
        }
    }
    html.push_str("</table></details>\n");
    for (how, per_stat) in &metrics.study_level {
        html.push_str(&format!("<details><summary>Study level ({} of image scores)</summary><table><tr><th>statistic</th><th>AUROC</th><th>95% CI</th><th>AP</th><th>sens @ 95% spec</th><th>Youden sens</th></tr>\n", escape(how)));
        for name in &metrics.statistics {
            if let Some(m) = per_stat.get(name) {
                html.push_str(&study_row(name, m));
            }
        }
        html.push_str("</table></details>\n");
    }
    for (title, items) in [
        (
            "Most anomalous images (primary statistic)",
            &parts.most_anomalous,
        ),
        ("Least anomalous images", &parts.least_anomalous),
    ] {
        if items.is_empty() {
            continue;
        }
        html.push_str(&format!("<h2>{title}</h2><p class=\"note\">Each: the image | its reconstruction x̂ | the residual |x − x̂| overlaid in red.</p>\n<div class=\"gallery\">\n"));
        for item in items {
            html.push_str(&format!(
                "<figure>{}<figcaption>{}</figcaption></figure>\n",
                img(&item.png, &item.caption, "thumb"),
                escape(&item.caption)
            ));
        }
        html.push_str("</div>\n");
    }
    html.push_str("</body></html>\n");
    html
}
