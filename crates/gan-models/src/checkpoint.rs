//! The checkpoint format: one safetensors file holding every player's variables (weights,
//! BatchNorm statistics, spectral-norm vectors) under `<player>.…` names, with the detector's
//! name, its `ModelConfig` and its settings as JSON in the safetensors metadata. Callers may add their own tensors and
//! metadata (the trainer stores optimiser moments under `optim.…`). Files are written atomically.
//! A SHA-256 of every tensor's name, type, shape and bytes is stored too, so a damaged or edited
//! file is refused. Loading checks the kind, the configuration and every tensor's presence and
//! shape, and says precisely what does not match.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle::safetensors::Load;
use candle::{Device, Tensor};

use crate::config::ModelConfig;
use crate::detector::Detector;
use crate::error::{ModelError, Result};
use crate::registry::DetectorKind;

/// Value of the `format` metadata entry.
pub const FORMAT: &str = "xray-gan-checkpoint-1";

/// A checkpoint read from disk.
#[derive(Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub kind: DetectorKind,
    pub config: ModelConfig,
    /// The detector's settings (null in a checkpoint written before detectors had settings: the
    /// defaults).
    pub settings: serde_json::Value,
    /// Every metadata entry, including `format`, `model_kind`, `model_config` and
    /// `detector_settings`.
    pub metadata: HashMap<String, String>,
    pub tensors: HashMap<String, Tensor>,
}

fn checkpoint_error(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes `model` (and `extra` tensors and metadata) to `path` atomically.
pub fn save_checkpoint(
    path: &Path,
    model: &dyn Detector,
    extra_tensors: &[(String, Tensor)],
    extra_metadata: &[(String, String)],
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = model
        .players()
        .iter()
        .flat_map(|p| p.named_vars())
        .map(|(name, var)| (name, var.as_tensor().clone()))
        .collect();
    tensors.extend(extra_tensors.iter().cloned());
    let mut metadata: HashMap<String, String> = extra_metadata.iter().cloned().collect();
    metadata.insert("format".into(), FORMAT.into());
    metadata.insert(
        "content_sha256".into(),
        content_digest(tensors.iter().map(|(n, t)| (n.as_str(), t)))?,
    );
    metadata.insert("model_kind".into(), model.kind().name().into());
    metadata.insert(
        "detector_settings".into(),
        serde_json::to_string(&model.settings())
            .map_err(|e| checkpoint_error(path, e.to_string()))?,
    );
    metadata.insert(
        "model_config".into(),
        serde_json::to_string(model.config()).map_err(|e| checkpoint_error(path, e.to_string()))?,
    );
    let bytes =
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| checkpoint_error(path, format!("cannot serialise: {e}")))?;
    gan_data::write_atomically(path, &bytes)?;
    Ok(())
}

/// The metadata of a checkpoint (or any safetensors file), read from its header alone: cheap
/// next to [`read_checkpoint`], which reads and verifies every tensor.
pub fn read_checkpoint_metadata(path: &Path) -> Result<HashMap<String, String>> {
    use std::io::Read;
    let bad = |message: String| checkpoint_error(path, message);
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let size = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
    let length = u64::from_le_bytes(length);
    if length > size.saturating_sub(8) || length > 100 << 20 {
        return Err(bad(format!(
            "not a readable safetensors file: its header claims {length} bytes in a file of {size}"
        )));
    }
    let mut header = vec![0u8; length as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("not a readable safetensors header: {e}")))?;
    Ok(header
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// Reads a checkpoint; a file that is not one of ours, truncated or tampered with is an error
/// naming the path.
pub fn read_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| checkpoint_error(path, format!("not a readable safetensors file: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| checkpoint_error(path, format!("not a readable safetensors file: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(checkpoint_error(
            path,
            format!("not an xray-gan checkpoint (no `format: {FORMAT}` metadata)"),
        ));
    }
    let kind: DetectorKind = metadata
        .get("model_kind")
        .ok_or_else(|| checkpoint_error(path, "metadata has no model_kind"))?
        .parse()
        .map_err(|e: ModelError| checkpoint_error(path, e.to_string()))?;
    let settings: serde_json::Value = match metadata.get("detector_settings") {
        None => serde_json::Value::Null,
        Some(text) => serde_json::from_str(text).map_err(|e| {
            checkpoint_error(path, format!("detector_settings is not valid JSON: {e}"))
        })?,
    };
    let config: ModelConfig = serde_json::from_str(
        metadata
            .get("model_config")
            .ok_or_else(|| checkpoint_error(path, "metadata has no model_config"))?,
    )
    .map_err(|e| checkpoint_error(path, format!("model_config is not valid: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let tensor = view
            .load(device)
            .map_err(|e| checkpoint_error(path, format!("tensor {name}: {e}")))?;
        tensors.insert(name, tensor);
    }
    let digest = content_digest(tensors.iter().map(|(n, t)| (n.as_str(), t)))?;
    if metadata.get("content_sha256") != Some(&digest) {
        return Err(checkpoint_error(
            path,
            "tensor contents do not match the checksum written with them: the file was damaged or edited",
        ));
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        kind,
        config,
        settings,
        metadata,
        tensors,
    })
}

/// Hex SHA-256 over (name, dtype, shape, bytes) of every tensor, in name order.
fn content_digest<'a>(tensors: impl Iterator<Item = (&'a str, &'a Tensor)>) -> Result<String> {
    use safetensors::tensor::View;
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<(&str, &Tensor)> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, tensor) in sorted {
        hasher.update(name.as_bytes());
        hasher.update(format!("{:?}{:?}", tensor.dtype(), tensor.dims()).as_bytes());
        hasher.update(View::data(&tensor));
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Checkpoint {
    /// Builds the detector this checkpoint describes and loads its weights.
    pub fn detector(&self, device: &Device) -> Result<Box<dyn Detector>> {
        let detector = self
            .kind
            .build(&self.config, &self.settings, device, 0)
            .map_err(|e| checkpoint_error(&self.path, e.to_string()))?;
        detector.load_checkpoint(self)?;
        Ok(detector)
    }
}

impl dyn Detector {
    /// Copies a checkpoint's variables into this model after checking kind, configuration and every
    /// shape; nothing is changed when anything does not match.
    pub fn load_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        let path = &checkpoint.path;
        if checkpoint.kind != self.kind() {
            return Err(checkpoint_error(
                path,
                format!(
                    "holds a {} model, expected {}",
                    checkpoint.kind,
                    self.kind()
                ),
            ));
        }
        if &checkpoint.config != self.config() {
            return Err(checkpoint_error(
                path,
                format!(
                    "model configuration differs: checkpoint {}, expected {}",
                    serde_json::to_string(&checkpoint.config).unwrap_or_default(),
                    serde_json::to_string(self.config()).unwrap_or_default()
                ),
            ));
        }
        let mut problems = Vec::new();
        let mut pairs = Vec::new();
        for player in self.players() {
            for (name, var) in player.named_vars() {
                match checkpoint.tensors.get(&name) {
                    None => problems.push(format!("missing tensor {name}")),
                    Some(t) if t.shape() != var.shape() => problems.push(format!(
                        "tensor {name} has shape {:?}, expected {:?}",
                        t.dims(),
                        var.dims()
                    )),
                    Some(t) => pairs.push((var, t)),
                }
            }
        }
        let players: Vec<&str> = self.players().iter().map(|p| p.name).collect();
        for name in checkpoint.tensors.keys() {
            let owner = name.split('.').next().unwrap_or("");
            if players.contains(&owner)
                && !self.players().iter().any(|p| {
                    p.vars
                        .data()
                        .lock()
                        .map(|d| d.contains_key(name))
                        .unwrap_or(false)
                })
            {
                problems.push(format!("unexpected tensor {name}"));
            }
        }
        if !problems.is_empty() {
            problems.sort();
            let shown = problems
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            let more = problems.len().saturating_sub(8);
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            return Err(checkpoint_error(
                path,
                format!("does not fit the model: {shown}{tail}"),
            ));
        }
        for (var, tensor) in pairs {
            var.set(&tensor.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }
}
