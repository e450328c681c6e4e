//! `scores.csv`: one row per image — path, split (`calib` for the run's normal validation images),
//! group (body part or class), patient, study, label (0 normal, 1 abnormal) — then one column per
//! statistic. Written through a temporary file and renamed, read back with every problem named.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{MetricsError, Result};

/// The split name of the normal validation images in `scores.csv`.
pub const CALIBRATION_SPLIT: &str = "calib";

/// The identifying columns, in order.
pub const ID_COLUMNS: [&str; 6] = ["path", "split", "group", "patient", "study", "label"];

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub path: String,
    pub split: String,
    pub group: String,
    pub patient: String,
    pub study: String,
    pub abnormal: bool,
    /// One value per statistic of the table.
    pub values: Vec<f64>,
}

impl ScoreRow {
    /// Key of the row's study; empty when the dataset has no studies.
    pub fn study_key(&self) -> Option<String> {
        (!self.study.is_empty()).then(|| format!("{}/{}/{}", self.group, self.patient, self.study))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoreTable {
    pub statistics: Vec<String>,
    pub rows: Vec<ScoreRow>,
}

impl ScoreTable {
    /// Reads `scores.csv`; a missing column, a bad label or a non-finite score is an error naming
    /// the file, line and column.
    pub fn read(path: &Path) -> Result<ScoreTable> {
        let csv_err = |line: u64, message: String| MetricsError::Csv {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut reader = csv::Reader::from_path(path).map_err(|e| match e.kind() {
            csv::ErrorKind::Io(_) => MetricsError::Input {
                path: path.to_path_buf(),
                message: e.to_string(),
            },
            _ => csv_err(1, e.to_string()),
        })?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_err(1, e.to_string()))?
            .iter()
            .map(String::from)
            .collect();
        for (i, name) in ID_COLUMNS.iter().enumerate() {
            if header.get(i).map(String::as_str) != Some(*name) {
                return Err(csv_err(
                    1,
                    format!(
                        "expected column {} to be `{name}`; the header must start with {}",
                        i + 1,
                        ID_COLUMNS.join(",")
                    ),
                ));
            }
        }
        let statistics: Vec<String> = header[ID_COLUMNS.len()..].to_vec();
        if statistics.is_empty() {
            return Err(csv_err(1, "no statistic columns after `label`".into()));
        }
        let mut rows = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let record = record.map_err(|e| csv_err(line, e.to_string()))?;
            if record.len() != header.len() {
                return Err(csv_err(
                    line,
                    format!("{} fields, expected {}", record.len(), header.len()),
                ));
            }
            let abnormal = match record.get(5) {
                Some("0") => false,
                Some("1") => true,
                other => {
                    return Err(csv_err(
                        line,
                        format!("label must be 0 or 1, found {:?}", other.unwrap_or("")),
                    ));
                }
            };
            let mut values = Vec::with_capacity(statistics.len());
            for (k, name) in statistics.iter().enumerate() {
                let text = record.get(ID_COLUMNS.len() + k).unwrap_or("");
                let value: f64 = text.trim().parse().map_err(|_| {
                    csv_err(line, format!("column {name}: {text:?} is not a number"))
                })?;
                if !value.is_finite() {
                    return Err(csv_err(
                        line,
                        format!("column {name}: {text} is not a finite score"),
                    ));
                }
                values.push(value);
            }
            let field = |k: usize| record.get(k).unwrap_or("").to_string();
            rows.push(ScoreRow {
                path: field(0),
                split: field(1),
                group: field(2),
                patient: field(3),
                study: field(4),
                abnormal,
                values,
            });
        }
        Ok(ScoreTable { statistics, rows })
    }

    /// The values of statistic `k` for the rows `keep` selects.
    pub fn column(&self, k: usize, keep: impl Fn(&ScoreRow) -> bool) -> Vec<f64> {
        self.rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.values[k])
            .collect()
    }
}

/// Writes `scores.csv` row by row to a temporary file; [`ScoreWriter::finish`] renames it into
/// place, so an interrupted scoring run leaves no partial file under the final name.
pub struct ScoreWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: csv::Writer<fs::File>,
    columns: usize,
}

impl ScoreWriter {
    pub fn create(path: &Path, statistics: &[&str]) -> Result<Self> {
        let io = |e: std::io::Error| MetricsError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("csv.partial");
        let file = fs::File::create(&tmp).map_err(io)?;
        let mut writer = csv::Writer::from_writer(file);
        let header: Vec<&str> = ID_COLUMNS
            .iter()
            .copied()
            .chain(statistics.iter().copied())
            .collect();
        writer.write_record(&header).map_err(|e| io(e.into()))?;
        Ok(ScoreWriter {
            path: path.to_path_buf(),
            tmp,
            writer,
            columns: header.len(),
        })
    }

    pub fn write(&mut self, row: &ScoreRow) -> Result<()> {
        let mut fields = vec![
            row.path.clone(),
            row.split.clone(),
            row.group.clone(),
            row.patient.clone(),
            row.study.clone(),
            u8::from(row.abnormal).to_string(),
        ];
        fields.extend(row.values.iter().map(|v| v.to_string()));
        if fields.len() != self.columns {
            return Err(MetricsError::Input {
                path: self.path.clone(),
                message: format!("row has {} fields, header {}", fields.len(), self.columns),
            });
        }
        self.writer
            .write_record(&fields)
            .map_err(|e| MetricsError::Io {
                path: self.tmp.clone(),
                source: e.into(),
            })
    }

    pub fn finish(self) -> Result<()> {
        let io = |p: &Path, e: std::io::Error| MetricsError::Io {
            path: p.to_path_buf(),
            source: e,
        };
        let file = self
            .writer
            .into_inner()
            .map_err(|e| io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))?;
        Ok(())
    }
}

/// Writes a whole file at once, atomically (temp file, sync, rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| MetricsError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let tmp = path.with_extension(format!(
        "{}.partial",
        path.extension().and_then(|e| e.to_str()).unwrap_or("tmp")
    ));
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}
