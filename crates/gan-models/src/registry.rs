//! How detectors are registered ([`Register`], [`Registration`]) and [`DetectorKind`], a
//! detector's name as runs, checkpoints and the CLI spell it. Adding a detector: a folder under
//! `detectors/` with a type implementing [`Detector`] and [`Register`], its `pub mod` line and
//! its line in [`REGISTRY`] (both in `detectors/mod.rs`).

use std::collections::BTreeSet;

use candle::Device;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::ModelConfig;
use crate::detector::{Detector, Settings};
pub use crate::detectors::REGISTRY;
use crate::error::{ModelError, Result};
use crate::optim::OptimiserConfig;

/// The static side of a detector: its name, its settings type and how to build it.
pub trait Register: Detector + Sized + 'static {
    /// The name runs, checkpoints and `--model` use.
    const NAME: &'static str;
    /// One line for listings.
    const SUMMARY: &'static str;
    /// The headline statistic, fixed before any label is seen: the paper's own anomaly score, or
    /// [`crate::FUSED_TWO_SIDED`] where the paper has none.
    const PRIMARY: &'static str;
    type Settings: Settings;
    /// Top-level keys of a `config.json` written before detectors had their own settings, each
    /// with the setting it became (`reconstruction_weight` was GANomaly's `contextual_weight`).
    const LEGACY_KEYS: &'static [(&'static str, &'static str)] = &[];
    /// Adam's settings from its paper.
    fn optimiser() -> OptimiserConfig {
        OptimiserConfig::default()
    }
    /// Builds it with freshly initialised weights; the same seed gives the same weights.
    fn build(
        config: &ModelConfig,
        settings: Self::Settings,
        device: &Device,
        seed: u64,
    ) -> Result<Self>;
}

/// Builds a registered detector from its network shapes, its settings (JSON), a device and a seed.
pub type Build = fn(&ModelConfig, &serde_json::Value, &Device, u64) -> Result<Box<dyn Detector>>;

/// One entry of [`REGISTRY`].
pub struct Registration {
    pub name: &'static str,
    pub summary: &'static str,
    pub primary: &'static str,
    /// See [`Register::LEGACY_KEYS`].
    pub legacy_keys: &'static [(&'static str, &'static str)],
    /// The default settings as JSON.
    pub default_settings: fn() -> serde_json::Value,
    /// Parses settings (missing keys take their default; unknown keys and bad values are
    /// errors), validates them and fixes what depends on the run length; returns them complete.
    pub settings_for_run: fn(&serde_json::Value, Option<u64>) -> Result<serde_json::Value>,
    pub optimiser: fn() -> OptimiserConfig,
    build: Build,
}

/// The registry entry of `D`.
pub const fn registration<D: Register>() -> Registration {
    Registration {
        name: D::NAME,
        summary: D::SUMMARY,
        primary: D::PRIMARY,
        legacy_keys: D::LEGACY_KEYS,
        default_settings: default_settings::<D>,
        settings_for_run: settings_for_run::<D>,
        optimiser: D::optimiser,
        build: build::<D>,
    }
}

fn default_settings<D: Register>() -> serde_json::Value {
    serde_json::to_value(D::Settings::default()).unwrap_or_default()
}

fn parse_settings<D: Register>(value: &serde_json::Value) -> Result<D::Settings> {
    let settings: D::Settings = if value.is_null() {
        D::Settings::default()
    } else {
        serde_json::from_value(value.clone())
            .map_err(|e| ModelError::Settings(format!("{}: {e}", D::NAME)))?
    };
    settings
        .validate()
        .map_err(|e| ModelError::Settings(format!("{}: {e}", D::NAME)))?;
    Ok(settings)
}

fn settings_for_run<D: Register>(
    value: &serde_json::Value,
    epochs: Option<u64>,
) -> Result<serde_json::Value> {
    let mut settings = parse_settings::<D>(value)?;
    if let Some(epochs) = epochs {
        settings.fix_for_run(epochs);
    }
    serde_json::to_value(settings).map_err(|e| ModelError::Settings(e.to_string()))
}

fn build<D: Register>(
    config: &ModelConfig,
    settings: &serde_json::Value,
    device: &Device,
    seed: u64,
) -> Result<Box<dyn Detector>> {
    config.validate()?;
    let settings = parse_settings::<D>(settings)?;
    Ok(Box::new(D::build(config, settings, device, seed)?))
}

/// A registered detector's name. Parsing checks it against [`REGISTRY`]; it serialises as the
/// name (`"alpha-gan"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DetectorKind(&'static str);

impl DetectorKind {
    /// Every registered detector.
    pub fn all() -> impl Iterator<Item = DetectorKind> {
        REGISTRY.iter().map(|r| DetectorKind(r.name))
    }

    /// The kind of the detector type `D`, which must be in [`REGISTRY`] (a detector's own
    /// `Detector::kind` uses this; an unregistered type would panic in
    /// [`DetectorKind::registration`]).
    pub fn of<D: Register>() -> DetectorKind {
        DetectorKind(D::NAME)
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    pub fn registration(self) -> &'static Registration {
        REGISTRY
            .iter()
            .find(|r| r.name == self.0)
            .expect("a DetectorKind is only made from a registered name")
    }

    /// Builds this detector with `settings` (JSON; null = defaults) and seeded weights.
    pub fn build(
        self,
        config: &ModelConfig,
        settings: &serde_json::Value,
        device: &Device,
        seed: u64,
    ) -> Result<Box<dyn Detector>> {
        (self.registration().build)(config, settings, device, seed)
    }

    pub fn default_settings(self) -> serde_json::Value {
        (self.registration().default_settings)()
    }

    pub fn default_optimiser(self) -> OptimiserConfig {
        (self.registration().optimiser)()
    }

    /// `settings` with `KEY=VALUE` assignments applied, checked against this detector's settings:
    /// an unknown key or a value of the wrong type is an error naming it and listing the keys.
    /// A value is read as JSON (`0.5`, `true`, `null`), else as a string.
    pub fn with_assignments(
        self,
        settings: &serde_json::Value,
        assignments: &[String],
    ) -> Result<serde_json::Value> {
        let defaults = self.default_settings();
        let keys: BTreeSet<&String> = defaults
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let listing = || {
            if keys.is_empty() {
                format!("{self} has no settings")
            } else {
                let shown: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k} (default {})", defaults[k.as_str()]))
                    .collect();
                format!("{self}'s settings: {}", shown.join(", "))
            }
        };
        let mut merged = match settings {
            serde_json::Value::Object(o) => o.clone(),
            _ => defaults.as_object().cloned().unwrap_or_default(),
        };
        for assignment in assignments {
            let Some((key, value)) = assignment.split_once('=') else {
                return Err(ModelError::Settings(format!(
                    "{assignment:?} is not KEY=VALUE; {}",
                    listing()
                )));
            };
            let key = key.trim();
            if !keys.contains(&key.to_string()) {
                return Err(ModelError::Settings(format!(
                    "unknown setting {key:?}; {}",
                    listing()
                )));
            }
            let value = serde_json::from_str(value.trim())
                .unwrap_or_else(|_| serde_json::Value::String(value.trim().to_string()));
            merged.insert(key.to_string(), value);
        }
        (self.registration().settings_for_run)(&serde_json::Value::Object(merged), None).map_err(
            |e| match e {
                ModelError::Settings(message) => {
                    ModelError::Settings(format!("{message}; {}", listing()))
                }
                other => other,
            },
        )
    }

    /// Settings complete and fixed for a run of `epochs` (what `config.json` stores).
    pub fn settings_for_run(
        self,
        settings: &serde_json::Value,
        epochs: u64,
    ) -> Result<serde_json::Value> {
        (self.registration().settings_for_run)(settings, Some(epochs))
    }
}

impl std::fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Debug for DetectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DetectorKind({})", self.0)
    }
}

impl std::str::FromStr for DetectorKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        REGISTRY
            .iter()
            .find(|r| r.name == s)
            .map(|r| DetectorKind(r.name))
            .ok_or_else(|| {
                let names: Vec<&str> = REGISTRY.iter().map(|r| r.name).collect();
                ModelError::Config(format!(
                    "unknown detector {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl Serialize for DetectorKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for DetectorKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> DetectorKind {
        name.parse().unwrap()
    }

    #[test]
    fn every_registered_detector_builds_and_names_itself() {
        let names: Vec<&str> = DetectorKind::all().map(DetectorKind::name).collect();
        assert_eq!(names[..4], ["alpha-gan", "bigan", "ganomaly", "f-anogan"]);
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "a name registered twice: {names:?}"
        );
        let config = ModelConfig {
            image_size: 32,
            width: 8,
            latent: 8,
            ..ModelConfig::default()
        };
        for k in DetectorKind::all() {
            let detector = k
                .build(&config, &serde_json::Value::Null, &Device::Cpu, 0)
                .unwrap();
            assert_eq!(detector.kind(), k);
            assert_eq!(detector.settings(), k.default_settings());
            let primary = k.registration().primary;
            assert!(
                primary == crate::FUSED_TWO_SIDED
                    || detector.statistics().iter().any(|s| s.name() == primary),
                "{k}: primary {primary} is not one of its statistics"
            );
        }
        let err = "wgan".parse::<DetectorKind>().unwrap_err().to_string();
        assert!(
            err.contains("alpha-gan, bigan, ganomaly, f-anogan"),
            "{err}"
        );
        for name in names {
            assert_eq!(kind(name).name(), name);
        }
        let json = serde_json::to_string(&kind("f-anogan")).unwrap();
        assert_eq!(json, "\"f-anogan\"");
        assert_eq!(
            serde_json::from_str::<DetectorKind>(&json).unwrap(),
            kind("f-anogan")
        );
        assert!(serde_json::from_str::<DetectorKind>("\"gan\"").is_err());
    }

    #[test]
    fn assignments_are_checked_against_the_detector_s_settings() {
        let g = kind("ganomaly");
        let defaults = g.default_settings();
        let set = |a: &[&str]| {
            let owned: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            g.with_assignments(&defaults, &owned)
        };
        let changed = set(&["contextual_weight=7", "latent_weight = 0.5"]).unwrap();
        assert_eq!(changed["contextual_weight"], 7.0);
        assert_eq!(changed["latent_weight"], 0.5);
        assert_eq!(changed["adversarial_weight"], 1.0);
        for (bad, says) in [
            (&["wcon=1"][..], "unknown setting \"wcon\""),
            (&["contextual_weight"][..], "is not KEY=VALUE"),
            (&["contextual_weight=abc"][..], "invalid type"),
            (&["contextual_weight=-1"][..], "contextual_weight must be"),
        ] {
            let err = set(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
            // every error lists the keys with their defaults
            assert!(err.contains("latent_weight (default 1.0)"), "{err}");
        }
        let err = kind("bigan")
            .with_assignments(&serde_json::Value::Null, &["x=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("bigan has no settings"), "{err}");
    }

    #[test]
    fn a_run_fixes_what_depends_on_its_length_and_keeps_what_was_set() {
        let f = kind("f-anogan");
        let fixed = f.settings_for_run(&f.default_settings(), 9).unwrap();
        assert_eq!(fixed["gan_epochs"], 4);
        let set = f
            .with_assignments(&f.default_settings(), &["gan_epochs=7".into()])
            .unwrap();
        assert_eq!(f.settings_for_run(&set, 9).unwrap()["gan_epochs"], 7);
        // missing keys take their defaults (a config.json from before a setting existed)
        let partial = serde_json::json!({ "kappa": 2.0 });
        let complete = f.settings_for_run(&partial, 2).unwrap();
        assert_eq!(complete["kappa"], 2.0);
        assert_eq!(complete["critic_steps"], 5);
    }
}
