//! A dataset's own `manifest.csv`: one row per image with a `path` relative to the dataset root
//! and columns describing it. FracAtlas prepared here has one, with a `hardware` column (metal
//! fixation visible, a shortcut to the fractured class) that results are reported with and
//! without.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{DataError, Result};

/// `path → (column == 1)` for every row of the manifest at `csv_path`; `Ok(None)` when the file
/// has no such column.
pub fn read_manifest_flag(csv_path: &Path, column: &str) -> Result<Option<HashMap<String, bool>>> {
    let error = |line: u64, message: String| DataError::Csv {
        path: csv_path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::Reader::from_path(csv_path).map_err(|e| error(0, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| error(1, e.to_string()))?
        .clone();
    let Some(path_at) = headers.iter().position(|h| h == "path") else {
        return Err(error(1, "a manifest needs a path column".into()));
    };
    let Some(flag_at) = headers.iter().position(|h| h == column) else {
        return Ok(None);
    };
    let mut flags = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let row = row.map_err(|e| error(line, e.to_string()))?;
        let (Some(path), Some(flag)) = (row.get(path_at), row.get(flag_at)) else {
            return Err(error(line, format!("expected a path and a {column} value")));
        };
        let flag = match flag.trim() {
            "1" | "true" | "True" => true,
            "0" | "false" | "False" | "" => false,
            other => return Err(error(line, format!("{column} = {other:?} is not 0 or 1"))),
        };
        flags.insert(path.to_string(), flag);
    }
    Ok(Some(flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_flag_column_by_name_and_names_the_line_of_a_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("manifest.csv");
        std::fs::write(&csv, "path,split,hardware\na.png,test,1\nb.png,test,0\n").unwrap();
        let flags = read_manifest_flag(&csv, "hardware").unwrap().unwrap();
        assert_eq!(flags.len(), 2);
        assert!(flags["a.png"] && !flags["b.png"]);
        assert!(read_manifest_flag(&csv, "multiscan").unwrap().is_none());
        std::fs::write(&csv, "path,hardware\na.png,yes\n").unwrap();
        let err = read_manifest_flag(&csv, "hardware")
            .unwrap_err()
            .to_string();
        assert!(err.contains("manifest.csv") && err.contains('2'), "{err}");
    }
}
