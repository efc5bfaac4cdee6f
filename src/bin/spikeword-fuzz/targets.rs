//! What one execution does with an input: the entry points a user reaches.
//! - `decode`: the bytes as an audio file, through the decode boundary and the resampler
//!   (`ResampledStream`, as `listen --input`, the app's file player and whole-file loading
//!   use it), then one pipeline pass over the first seconds.
//! - `model`: the bytes as a model file (`Model::from_bytes`, what `Model::load` runs after
//!   its size check), then one pipeline pass if it loads.
//!
//! Besides crashes, each checks what must hold for any input: decoded samples are finite
//! and within ±MAX_SAMPLE, class probabilities are finite.

use spikeword::audio::{AudioError, ResampledStream, MAX_SAMPLE};
use spikeword::model::Model;
use spikeword::pipeline::Pipeline;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Decode,
    Model,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Decode => "decode",
            Target::Model => "model",
        }
    }
}

/// How an execution ended, short of a crash.
pub enum Outcome {
    /// Loaded; `what` summarises it (rate, channels, length class).
    Ok(String),
    /// A clean error; `kind` is its class (for corpus feedback), `message` the full text.
    Error { kind: String, message: String },
    /// A panic inside a decoder, caught at the boundary and reported as corrupt audio.
    CaughtPanic(String),
    /// A property every input must keep was broken: a finding, like a crash.
    Violation(String),
}

/// Audio seconds run through the pipeline per execution (decoding always runs to the end).
const PIPELINE_SECONDS: usize = 2;

pub struct Runner {
    /// The decode target's pipeline (its model is the shipped one, or a small one).
    pipeline: Pipeline,
    /// Where decode inputs are written (symphonia opens files; so do users).
    dir: PathBuf,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Runner {
    pub fn new(model: Model) -> std::io::Result<Self> {
        let pipeline = Pipeline::new(&model);
        let dir = std::env::temp_dir().join(format!("spikeword-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { pipeline, dir })
    }

    pub fn run(&mut self, target: Target, input: &[u8], ext: &str) -> Outcome {
        match target {
            Target::Decode => self.decode(input, ext),
            Target::Model => self.model(input),
        }
    }

    fn decode(&mut self, input: &[u8], ext: &str) -> Outcome {
        let path = self.dir.join(format!("input.{ext}"));
        if let Err(e) = std::fs::write(&path, input) {
            return Outcome::Violation(format!("cannot write the input file: {e}"));
        }
        decode_file(&mut self.pipeline, &path)
    }

    fn model(&mut self, input: &[u8]) -> Outcome {
        let m = match Model::from_bytes(input) {
            Ok(m) => m,
            Err(e) => return Outcome::Error { kind: error_kind(&e.to_string()), message: e.to_string() },
        };
        let mut p = Pipeline::new(&m);
        let rate = p.sample_rate() as usize;
        let signal: Vec<f32> = (0..rate / 5).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect();
        let mut bad = None;
        p.push(&signal, |r| {
            if bad.is_none() && r.probs.iter().any(|v| !v.is_finite()) {
                bad = Some(format!("non-finite class probability at frame {}", r.index));
            }
        });
        match bad {
            Some(v) => Outcome::Violation(v),
            None => Outcome::Ok(format!("{} layers, {} classes", m.card.architecture.layers.len(), m.card.labels.len())),
        }
    }
}

/// Decode, resample, one pipeline pass; the checks on what comes out.
pub fn decode_file(p: &mut Pipeline, path: &Path) -> Outcome {
    let rate = p.sample_rate();
    let mut s = match ResampledStream::open(path, rate) {
        Ok(s) => s,
        Err(e) => return error_outcome(e),
    };
    p.reset();
    let budget = PIPELINE_SECONDS * rate as usize;
    let (mut n, mut bad) = (0usize, None);
    loop {
        let chunk = match s.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return error_outcome(e),
        };
        if let Some(i) = chunk.iter().position(|v| !v.is_finite() || v.abs() > MAX_SAMPLE) {
            return Outcome::Violation(format!("sample {} out of range: {}", n + i, chunk[i]));
        }
        if n < budget {
            let take = chunk.len().min(budget - n);
            p.push(&chunk[..take], |r| {
                if bad.is_none() && r.probs.iter().any(|v| !v.is_finite()) {
                    bad = Some(format!("non-finite class probability at frame {}", r.index));
                }
            });
        }
        n += chunk.len();
    }
    if let Some(v) = bad {
        return Outcome::Violation(v);
    }
    let src = s.source();
    let secs = n as f64 / rate as f64;
    // Coarse length classes keep the corpus feedback from rewarding every length.
    let class = if secs < 0.1 {
        "<0.1s"
    } else if secs < 1.5 {
        "<1.5s"
    } else if secs < 10.0 {
        "<10s"
    } else {
        ">=10s"
    };
    Outcome::Ok(format!("{} Hz, {} ch, {class}", src.sample_rate(), src.channels()))
}

fn error_outcome(e: AudioError) -> Outcome {
    let message = e.to_string();
    if let AudioError::Corrupt { reason, .. } = &e {
        if reason.starts_with("the decoder failed") {
            return Outcome::CaughtPanic(message);
        }
    }
    Outcome::Error { kind: error_kind(&message), message }
}

/// An error message without its numbers and paths: errors of the same kind compare equal.
pub fn error_kind(message: &str) -> String {
    let text = message.rsplit_once("input.").map_or(message, |(_, rest)| rest.split_once(':').map_or(rest, |(_, r)| r));
    let mut out = String::with_capacity(text.len());
    for c in text.chars().take(120) {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}
