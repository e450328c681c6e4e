//! Comparing detectors: several models, each trained with several seeds, summarised per model and
//! statistic as AUROC mean ± sd over seeds, AP, study-level AUROC and training time; written as
//! `benchmark.md`, `benchmark.json` and a page with the ROC curves side by side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evaluate::{FUSED, FUSED_TWO_SIDED, Metrics, StatisticMetrics};
use crate::report::{escape, img, num, page_start};

/// One trained, scored and evaluated (model, seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkCell {
    pub model: String,
    pub seed: u64,
    /// Wall time of training; a cell resumed after an interruption counts only what was left.
    pub train_seconds: f64,
    pub resumed: bool,
    pub metrics: Metrics,
    /// AUROC per abnormality kind (that kind against every normal image) and statistic, where the
    /// data says which kind each abnormal image is (the synthetic radiographs do).
    #[serde(default)]
    pub by_kind: BTreeMap<String, BTreeMap<String, Option<f64>>>,
}

/// Mean and sample standard deviation (`None` below two values) of the defined values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    /// How many seeds gave a defined value.
    pub n: usize,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Spread {
        let defined: Vec<f64> = values.into_iter().flatten().collect();
        let n = defined.len();
        if n == 0 {
            return Spread {
                mean: None,
                sd: None,
                n,
            };
        }
        let mean = defined.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            (defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Spread {
            mean: Some(mean),
            sd,
            n,
        }
    }

    /// `0.712 ± 0.031`, or the mean alone, or `—`.
    pub fn show(&self) -> String {
        match (self.mean, self.sd) {
            (Some(m), Some(sd)) => format!("{m:.3} ± {sd:.3}"),
            (Some(m), None) => format!("{m:.3}"),
            _ => "—".into(),
        }
    }
}

/// One model and statistic over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkRow {
    pub model: String,
    pub statistic: String,
    pub auroc: Spread,
    /// AUROC of each seed, in seed order.
    pub aurocs: Vec<Option<f64>>,
    pub ap: Spread,
    /// AUROC of the mean of each study's image scores; `n` = 0 when the data has no studies.
    pub study_auroc: Spread,
    /// Whether this is the model's primary statistic (fixed before labels).
    pub primary: bool,
}

/// Per model: the seeds, the training time and the headline rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub model: String,
    pub seeds: Vec<u64>,
    pub train_seconds: Spread,
    pub primary: String,
    pub primary_auroc: Spread,
    /// The statistic with the highest mean AUROC: exploratory, chosen with the labels.
    pub best: String,
    pub best_auroc: Spread,
}

/// The content of `benchmark.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    pub models: Vec<ModelSummary>,
    pub rows: Vec<BenchmarkRow>,
    pub cells: Vec<BenchmarkCell>,
}

/// Summarises the cells, models in order of first appearance, each model's statistics in the
/// order its metrics list them.
pub fn summarise(cells: &[BenchmarkCell]) -> Benchmark {
    let mut models: Vec<String> = Vec::new();
    for c in cells {
        if !models.contains(&c.model) {
            models.push(c.model.clone());
        }
    }
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for model in &models {
        let mut mine: Vec<&BenchmarkCell> = cells.iter().filter(|c| &c.model == model).collect();
        mine.sort_by_key(|c| c.seed);
        let primary = mine[0].metrics.primary.statistic.clone();
        let mut statistics: Vec<String> = Vec::new();
        for c in &mine {
            for s in &c.metrics.statistics {
                if !statistics.contains(s) {
                    statistics.push(s.clone());
                }
            }
        }
        let first = rows.len();
        for statistic in &statistics {
            fn image<'a>(c: &'a BenchmarkCell, statistic: &str) -> Option<&'a StatisticMetrics> {
                c.metrics.image_level.get(statistic)
            }
            let metric = |f: fn(&StatisticMetrics) -> Option<f64>| {
                Spread::of(mine.iter().map(|c| image(c, statistic).and_then(f)))
            };
            let study = Spread::of(mine.iter().map(|c| {
                c.metrics
                    .study_level
                    .get("mean")
                    .and_then(|s| s.get(statistic))
                    .and_then(|m| m.auroc)
            }));
            rows.push(BenchmarkRow {
                model: model.clone(),
                statistic: statistic.clone(),
                auroc: metric(|m| m.auroc),
                aurocs: mine
                    .iter()
                    .map(|c| image(c, statistic).and_then(|m| m.auroc))
                    .collect(),
                ap: metric(|m| m.ap),
                study_auroc: study,
                primary: *statistic == primary,
            });
        }
        let own = &rows[first..];
        let headline = |name: &str| {
            own.iter()
                .find(|r| r.statistic == name)
                .map(|r| r.auroc)
                .unwrap_or(Spread::of([]))
        };
        let best = own
            .iter()
            .filter(|r| r.auroc.mean.is_some())
            .max_by(|a, b| {
                a.auroc
                    .mean
                    .partial_cmp(&b.auroc.mean)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|r| r.statistic.clone())
            .unwrap_or_default();
        summaries.push(ModelSummary {
            model: model.clone(),
            seeds: mine.iter().map(|c| c.seed).collect(),
            train_seconds: Spread::of(mine.iter().map(|c| Some(c.train_seconds))),
            primary_auroc: headline(&primary),
            best_auroc: headline(&best),
            primary,
            best,
        });
    }
    Benchmark {
        models: summaries,
        rows,
        cells: cells.to_vec(),
    }
}

impl Benchmark {
    fn row(&self, model: &str, statistic: &str) -> Option<&BenchmarkRow> {
        self.rows
            .iter()
            .find(|r| r.model == model && r.statistic == statistic)
    }

    /// One spread (`pick`) of a model's statistic as a table shows it; `—` where the model has
    /// no such statistic.
    fn shown(&self, model: &str, statistic: &str, pick: fn(&BenchmarkRow) -> &Spread) -> String {
        self.row(model, statistic)
            .map(|r| pick(r).show())
            .unwrap_or_else(|| "—".into())
    }

    /// Every statistic of any model, in first-seen order.
    fn statistics(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.statistic.as_str()) {
                out.push(&r.statistic);
            }
        }
        out
    }

    /// `benchmark.md`: the headline per model, then model × statistic AUROC mean ± sd.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| model | seeds | primary AUROC | fused | fused_2s | best statistic (exploratory) | its AUROC | AP of best | study-level AUROC of best | training s |\n|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for m in &self.models {
            out.push_str(&format!(
                "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} |\n",
                m.model,
                m.seeds.len(),
                m.primary_auroc.show(),
                m.primary,
                self.shown(&m.model, FUSED, |r| &r.auroc),
                self.shown(&m.model, FUSED_TWO_SIDED, |r| &r.auroc),
                m.best,
                m.best_auroc.show(),
                self.shown(&m.model, &m.best, |r| &r.ap),
                self.shown(&m.model, &m.best, |r| &r.study_auroc),
                m.train_seconds
                    .mean
                    .map(|s| format!("{s:.0}"))
                    .unwrap_or_else(|| "—".into()),
            ));
        }
        out.push_str("\nImage-level AUROC, mean ± sd over seeds (— where a model has no such statistic):\n\n| statistic |");
        for m in &self.models {
            out.push_str(&format!(" {} |", m.model));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.models.len()));
        out.push('\n');
        for statistic in self.statistics() {
            out.push_str(&format!("| {statistic} |"));
            for m in &self.models {
                let cell = self.shown(&m.model, statistic, |r| &r.auroc);
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out.push_str(&self.kinds_markdown());
        out
    }

    /// AUROC per abnormality kind of each model's primary and best statistics, mean ± sd over
    /// seeds; empty when no cell knows the kinds.
    fn kinds_markdown(&self) -> String {
        let mut kinds: Vec<&str> = Vec::new();
        for c in &self.cells {
            for k in c.by_kind.keys() {
                if !kinds.contains(&k.as_str()) {
                    kinds.push(k);
                }
            }
        }
        if kinds.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "\nAUROC per abnormality kind (that kind against every normal image), mean ± sd over seeds:\n\n| model | statistic |",
        );
        for k in &kinds {
            out.push_str(&format!(" {k} |"));
        }
        out.push_str("\n|---|---|");
        out.push_str(&"---|".repeat(kinds.len()));
        out.push('\n');
        for m in &self.models {
            let mut shown = vec![(m.primary.as_str(), "primary")];
            if m.best != m.primary {
                shown.push((m.best.as_str(), "best, exploratory"));
            }
            for (statistic, why) in shown {
                out.push_str(&format!("| {} | {statistic} ({why}) |", m.model));
                for k in &kinds {
                    let spread =
                        Spread::of(self.cells.iter().filter(|c| c.model == m.model).map(|c| {
                            c.by_kind
                                .get(*k)
                                .and_then(|s| s.get(statistic))
                                .copied()
                                .flatten()
                        }));
                    out.push_str(&format!(" {} |", spread.show()));
                }
                out.push('\n');
            }
        }
        out
    }

    /// `benchmark.html`: the tables and `roc_png` (the ROC curves to compare), self-contained.
    pub fn to_html(&self, title: &str, roc_png: &[u8]) -> String {
        let mut html = page_start(title);
        html.push_str("<p class=\"note\">Each model trained once per seed on normal images only; AUROC as mean ± sd over seeds. \
            The primary statistic is fixed before labels are seen; the best one is chosen with the labels and is exploratory.</p>\n");
        html.push_str("<table><tr><th>model</th><th>seeds</th><th>primary</th><th>AUROC</th><th>fused</th><th>fused_2s</th><th>best (exploratory)</th><th>AUROC</th><th>AP</th><th>study-level AUROC</th><th>training s</th></tr>\n");
        for m in &self.models {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&m.model),
                m.seeds.len(),
                escape(&m.primary),
                m.primary_auroc.show(),
                self.shown(&m.model, FUSED, |r| &r.auroc),
                self.shown(&m.model, FUSED_TWO_SIDED, |r| &r.auroc),
                escape(&m.best),
                m.best_auroc.show(),
                self.shown(&m.model, &m.best, |r| &r.ap),
                self.shown(&m.model, &m.best, |r| &r.study_auroc),
                num(m.train_seconds.mean),
            ));
        }
        html.push_str("</table>\n<h2>ROC curves</h2>\n");
        html.push_str(&img(roc_png, "ROC curves", "fig"));
        html.push_str("\n<h2>Image-level AUROC per statistic, mean ± sd over seeds</h2><table><tr><th>statistic</th>");
        for m in &self.models {
            html.push_str(&format!("<th>{}</th>", escape(&m.model)));
        }
        html.push_str("</tr>\n");
        for statistic in self.statistics() {
            html.push_str(&format!("<tr><td>{}</td>", escape(statistic)));
            for m in &self.models {
                let cell = self.shown(&m.model, statistic, |r| &r.auroc);
                html.push_str(&format!("<td>{cell}</td>"));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n</body></html>\n");
        html
    }
}

/// The curves a benchmark page draws: per model, its primary statistic's ROC for each seed, keyed
/// `model seed N (statistic)`.
pub fn curve_label(model: &str, seed: u64, statistic: &str) -> String {
    format!("{model} seed {seed} ({statistic})")
}

/// AUROC per curve label, for the legend of [`crate::plots::roc_png`].
pub fn curve_aurocs(cells: &[BenchmarkCell]) -> BTreeMap<String, Option<f64>> {
    cells
        .iter()
        .map(|c| {
            let statistic = &c.metrics.primary.statistic;
            (
                curve_label(&c.model, c.seed, statistic),
                c.metrics.primary.auroc,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(stats: &[(&str, f64)], primary: &str) -> Metrics {
        let image_level = stats
            .iter()
            .map(|(name, auroc)| {
                (
                    name.to_string(),
                    StatisticMetrics {
                        auroc: Some(*auroc),
                        ap: Some(auroc / 2.0),
                        ..Default::default()
                    },
                )
            })
            .collect();
        Metrics {
            n_normal: 10,
            n_abnormal: 10,
            n_calibration: 5,
            statistics: stats.iter().map(|(n, _)| n.to_string()).collect(),
            image_level,
            study_level: BTreeMap::new(),
            by_group: BTreeMap::new(),
            primary: crate::evaluate::Headline {
                statistic: primary.into(),
                auroc: stats.iter().find(|(n, _)| *n == primary).map(|(_, a)| *a),
            },
            best: Default::default(),
        }
    }

    fn cell(model: &str, seed: u64, stats: &[(&str, f64)]) -> BenchmarkCell {
        BenchmarkCell {
            model: model.into(),
            seed,
            train_seconds: 10.0 * (seed + 1) as f64,
            resumed: false,
            metrics: metrics(stats, "fused"),
            by_kind: [(
                "cast".to_string(),
                stats
                    .iter()
                    .map(|(n, a)| (n.to_string(), Some(a + 0.1)))
                    .collect(),
            )]
            .into(),
        }
    }

    #[test]
    fn rows_hold_the_mean_and_sample_sd_over_seeds_and_the_best_by_mean() {
        let cells = vec![
            cell("a", 1, &[("fused", 0.6), ("l1", 0.9)]),
            cell("a", 0, &[("fused", 0.8), ("l1", 0.7)]),
            cell("b", 0, &[("fused", 0.5), ("latent", 0.75)]),
        ];
        let b = summarise(&cells);
        assert_eq!(b.models.len(), 2);
        let a = &b.models[0];
        assert_eq!(a.seeds, vec![0, 1]);
        assert!((a.primary_auroc.mean.unwrap() - 0.7).abs() < 1e-12);
        // sample sd of 0.8 and 0.6
        assert!((a.primary_auroc.sd.unwrap() - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!(a.best, "l1");
        assert!((a.train_seconds.mean.unwrap() - 15.0).abs() < 1e-12);
        let l1 = b.row("a", "l1").unwrap();
        assert_eq!(l1.aurocs, vec![Some(0.7), Some(0.9)]);
        assert!((l1.ap.mean.unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(l1.study_auroc.n, 0);
        // one seed: a mean and no sd
        assert_eq!(b.models[1].best, "latent");
        assert_eq!(b.models[1].best_auroc.sd, None);
        let md = b.to_markdown();
        assert!(
            md.contains(
                "| a | 2 | 0.700 ± 0.141 (fused) | 0.700 ± 0.141 | — | l1 | 0.800 ± 0.141 |"
            ),
            "{md}"
        );
        assert!(md.contains("| latent | — | 0.750 |"), "{md}");
        assert!(
            md.contains("| a | l1 (best, exploratory) | 0.900 ± 0.141 |"),
            "{md}"
        );
        let html = b.to_html("benchmark", &[1, 2, 3]);
        assert!(
            html.contains("<td>latent</td><td>—</td><td>0.750</td>"),
            "{html}"
        );
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Benchmark>(&json).unwrap(), b);
    }

    #[test]
    fn an_undefined_auroc_is_left_out_of_the_mean() {
        let s = Spread::of([Some(0.5), None, Some(0.7)]);
        assert_eq!(s.n, 2);
        assert!((s.mean.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(Spread::of([None]).show(), "—");
    }
}
