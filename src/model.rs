//! The model file: one `.safetensors` file holding the weights as f32 tensors and, under
//! the metadata key `spikeword`, a JSON model card (format version, labels, front end,
//! architecture, detection defaults, provenance and metrics).
//!
//! Loading trusts nothing: sizes are bounded before anything is allocated from them, every
//! shape is checked against the architecture and every value must be finite.

use crate::detect::{DetectionConfig, Detector};
use crate::features::{FrontEnd, FrontEndConfig};
use crate::network::{Architecture, Network, Weights};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const FORMAT_VERSION: u32 = 1;
pub const METADATA_KEY: &str = "spikeword";
/// Largest model file accepted (a keyword model is a few MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Largest parameter count accepted, checked before any tensor is read.
pub const MAX_PARAMETERS: usize = 32 << 20;
/// Largest weight magnitude accepted: trained weights are about 1; a value near f32's limit
/// loads as a finite number and overflows to infinity at the first multiply.
pub const MAX_WEIGHT: f32 = 1e6;
/// Smallest feature scale accepted (features are divided by it).
pub const MIN_INPUT_STD: f32 = 1e-6;
/// File name of the shipped model inside `models/`.
pub const DEFAULT_MODEL_FILE: &str = "spikeword-kws12.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("model file is {size} bytes, more than the {max} a model may have")]
    TooLarge { size: u64, max: u64 },
    #[error("not a valid safetensors file (truncated or corrupt?): {0}")]
    Corrupt(String),
    #[error("the file has no '{METADATA_KEY}' metadata: it is a safetensors file but not a spikeword model")]
    MissingMetadata,
    #[error("the model card in the metadata is not valid: {0}")]
    BadMetadata(String),
    #[error("model format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion { found: u32 },
    #[error("absurd {what}: {value} (allowed: {allowed})")]
    AbsurdDimension { what: String, value: String, allowed: String },
    #[error("tensor '{0}' is missing")]
    MissingTensor(String),
    #[error("tensor '{name}' has an unexpected extra tensor in the file")]
    UnexpectedTensor { name: String },
    #[error("tensor '{name}' has dtype {found}, expected F32")]
    WrongDtype { name: String, found: String },
    #[error("tensor '{name}' has shape {found:?}, the architecture needs {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor '{name}' holds a non-finite value ({value}) at index {index}")]
    NonFinite { name: String, index: usize, value: f32 },
    #[error("tensor '{name}' holds {value:e} at index {index}, beyond the ±{MAX_WEIGHT:e} a weight may have")]
    AbsurdWeight { name: String, index: usize, value: f32 },
    #[error("the model's outputs are not finite on a test signal ({0}): its weights overflow")]
    Overflows(String),
    #[error("cannot write model file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot serialise the model: {0}")]
    Serialise(String),
}

/// Everything about a model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format_version: u32,
    pub name: String,
    pub labels: Vec<String>,
    pub frontend: FrontEndConfig,
    pub architecture: Architecture,
    pub detection: DetectionConfig,
    /// How it was made: command, data, seed, schedule (free-form JSON).
    #[serde(default)]
    pub provenance: serde_json::Value,
    /// What it measured (free-form JSON).
    #[serde(default)]
    pub metrics: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub card: ModelCard,
    pub weights: Weights,
}

fn absurd(what: &str, value: impl ToString, allowed: &str) -> ModelError {
    ModelError::AbsurdDimension { what: what.into(), value: value.to_string(), allowed: allowed.into() }
}

/// A delta-coding step is 0 (off) or in [MIN_DELTA, MAX_DELTA].
fn check_delta(what: &str, d: f32) -> Result<(), ModelError> {
    use crate::network::{MAX_DELTA, MIN_DELTA};
    if d == 0.0 || (d.is_finite() && (MIN_DELTA..=MAX_DELTA).contains(&d)) {
        Ok(())
    } else {
        Err(absurd(what, d, &format!("0 (off) or {MIN_DELTA}..={MAX_DELTA}")))
    }
}

impl ModelCard {
    /// Validates every field a buffer size or a loop bound is derived from.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion { found: self.format_version });
        }
        self.frontend.validate().map_err(|e| absurd("front end", e, "see the front-end documentation"))?;
        let a = &self.architecture;
        if a.input_dim != self.frontend.n_mels {
            return Err(absurd("input_dim", a.input_dim, &format!("equal to n_mels = {}", self.frontend.n_mels)));
        }
        if a.layers.is_empty() || a.layers.len() > 8 {
            return Err(absurd("number of layers", a.layers.len(), "1..=8"));
        }
        for (i, l) in a.layers.iter().enumerate() {
            let bounded = |what: &str, v: usize, max: usize| {
                if v == 0 || v > max {
                    Err(absurd(&format!("layer {i} {what}"), v, &format!("1..={max}")))
                } else {
                    Ok(())
                }
            };
            bounded("memory_d", l.memory_d, 1024)?;
            bounded("order", l.order, 256)?;
            bounded("units", l.units, 8192)?;
            if !(l.theta.is_finite() && l.theta >= 1.0 && l.theta <= 100_000.0) {
                return Err(absurd(&format!("layer {i} theta"), l.theta, "1..=100000 frames"));
            }
            check_delta(&format!("layer {i} memory_delta"), l.memory_delta)?;
        }
        check_delta("input_delta", a.input_delta)?;
        if !(a.dt.is_finite() && a.dt > 0.0 && a.dt <= 1e6) {
            return Err(absurd("dt", a.dt, "(0, 1e6]"));
        }
        if a.classes == 0 || a.classes > 1000 || a.classes != self.labels.len() {
            return Err(absurd("classes", a.classes, &format!("1..=1000 and equal to the {} labels", self.labels.len())));
        }
        let mut seen = std::collections::HashSet::new();
        for l in &self.labels {
            if l.is_empty() || l.len() > 64 || !seen.insert(l) {
                return Err(ModelError::BadMetadata(format!("label {l:?} is empty, too long or repeated")));
            }
        }
        if !self.labels.iter().any(|l| crate::detect::is_keyword(l)) {
            return Err(ModelError::BadMetadata("no keyword among the labels (all start with '_')".into()));
        }
        self.detection.validate(&self.labels).map_err(ModelError::BadMetadata)?;
        let params = a.parameter_count();
        if params > MAX_PARAMETERS {
            return Err(absurd("parameter count", params, &format!("at most {MAX_PARAMETERS}")));
        }
        Ok(())
    }
}

impl Model {
    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let io = |source| ModelError::Io { path: path.to_path_buf(), source };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_FILE_BYTES {
            return Err(ModelError::TooLarge { size, max: MAX_FILE_BYTES });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ModelError::TooLarge { size: bytes.len() as u64, max: MAX_FILE_BYTES });
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Corrupt(format!("{e:?}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| ModelError::Corrupt(format!("{e:?}")))?;
        let json = meta.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).ok_or(ModelError::MissingMetadata)?;
        // Read the version first so a newer file says so instead of failing on a field.
        let version = serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| ModelError::BadMetadata(e.to_string()))?
            .get("format_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| ModelError::BadMetadata("format_version is missing".into()))?;
        if version != FORMAT_VERSION as u64 {
            return Err(ModelError::UnsupportedVersion { found: version.min(u32::MAX as u64) as u32 });
        }
        let card: ModelCard = serde_json::from_str(json).map_err(|e| ModelError::BadMetadata(e.to_string()))?;
        card.validate()?;
        let shapes = Weights::shapes(&card.architecture);
        for name in st.names() {
            if !shapes.iter().any(|(n, _)| n == name) {
                return Err(ModelError::UnexpectedTensor { name: name.clone() });
            }
        }
        let mut weights = Weights::zeros(&card.architecture);
        for ((name, shape), dst) in shapes.iter().zip(weights.tensors_mut()) {
            let t = st.tensor(name).map_err(|_| ModelError::MissingTensor(name.clone()))?;
            if t.dtype() != Dtype::F32 {
                return Err(ModelError::WrongDtype { name: name.clone(), found: format!("{:?}", t.dtype()) });
            }
            let found: Vec<usize> = t.shape().to_vec();
            if found != shape.to_vec() {
                return Err(ModelError::WrongShape { name: name.clone(), expected: shape.to_vec(), found });
            }
            for (i, (d, b)) in dst.iter_mut().zip(t.data().chunks_exact(4)).enumerate() {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if !v.is_finite() {
                    return Err(ModelError::NonFinite { name: name.clone(), index: i, value: v });
                }
                if v.abs() > MAX_WEIGHT {
                    return Err(ModelError::AbsurdWeight { name: name.clone(), index: i, value: v });
                }
                *d = v;
            }
        }
        if let Some(i) = weights.input_std.iter().position(|&s| s < MIN_INPUT_STD) {
            return Err(ModelError::BadMetadata(format!("input.std[{i}] is below {MIN_INPUT_STD:e}")));
        }
        let model = Self { card, weights };
        model.check_finite()?;
        Ok(model)
    }

    /// Runs the model over silence, then noise at the loudest level the decoders let through:
    /// every class probability must stay finite. Weights that pass every bound one by one can
    /// still overflow together, and a NaN would sit in the network's memory for good.
    fn check_finite(&self) -> Result<(), ModelError> {
        let mut p = crate::pipeline::Pipeline::new(self);
        let rate = p.sample_rate() as usize;
        let mut state = 0x2545_f491u32;
        let mut signal = vec![0.0f32; rate * 3 / 10];
        signal.extend((0..rate * 3 / 10).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if state & 1 == 0 {
                crate::audio::MAX_SAMPLE
            } else {
                -crate::audio::MAX_SAMPLE
            }
        }));
        let mut bad = None;
        p.push(&signal, |r| {
            if bad.is_none() && (r.probs.iter().any(|v| !v.is_finite()) || r.network.logits().iter().any(|v| !v.is_finite())) {
                bad = Some(format!("frame {}", r.index));
            }
        });
        bad.map_or(Ok(()), |at| Err(ModelError::Overflows(at)))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let json = serde_json::to_string(&self.card).map_err(|e| ModelError::Serialise(e.to_string()))?;
        let meta: HashMap<String, String> = [(METADATA_KEY.to_string(), json)].into();
        let shapes = Weights::shapes(&self.card.architecture);
        let bytes: Vec<(String, Vec<u8>, [usize; 2])> = self
            .weights
            .tensors()
            .into_iter()
            .zip(shapes)
            .map(|((name, v), (_, shape))| (name, v.iter().flat_map(|x| x.to_le_bytes()).collect(), shape))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, s)| TensorView::new(Dtype::F32, s.to_vec(), b).map(|v| (n.clone(), v)).map_err(|e| ModelError::Serialise(format!("{n}: {e:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::tensor::serialize(views, &Some(meta)).map_err(|e| ModelError::Serialise(format!("{e:?}")))
    }

    /// Writes atomically (temp file, then rename) so a crash never leaves half a model.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes).map_err(|source| ModelError::Write { path: path.to_path_buf(), source })
    }

    pub fn network(&self) -> Network {
        Network::new(self.card.architecture.clone(), self.weights.clone())
    }

    pub fn frontend(&self) -> FrontEnd {
        FrontEnd::new(self.card.frontend.clone()).expect("front-end config validated on load")
    }

    pub fn detector(&self) -> Detector {
        Detector::new(self.card.labels.clone(), self.card.detection.clone(), self.card.frontend.frame_seconds())
    }
}

/// Writes through `<path>.tmp` and a rename, so a write cut short (a closed session, Ctrl-C)
/// leaves the previous file whole: a model a user loads, or the commit of a training epoch.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Where the shipped model is looked for when no `--model` is given: `$SPIKEWORD_MODEL`,
/// then `models/` in the current directory, then `models/` of the source tree it was built from.
pub fn default_model_candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os("SPIKEWORD_MODEL") {
        c.push(PathBuf::from(p));
    }
    c.push(Path::new("models").join(DEFAULT_MODEL_FILE));
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(DEFAULT_MODEL_FILE));
    c
}

/// Resolves `--model` (or the default) and loads it; errors name the file.
pub fn load_resolved(explicit: Option<&Path>) -> anyhow::Result<(PathBuf, Model)> {
    use anyhow::Context;
    let path = resolve_model_path(explicit)?;
    let model = Model::load(&path).with_context(|| format!("loading model {}", path.display()))?;
    Ok((path, model))
}

/// Resolves `--model` or the default, with an error that says where it looked.
pub fn resolve_model_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let candidates = default_model_candidates();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no model given and no default model found (looked in: {}). Pass --model FILE, or train one with `spikeword train`.",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}
