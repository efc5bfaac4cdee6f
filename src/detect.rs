//! From per-frame class scores to keyword events: smoothing, thresholds, refractory time.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Detection defaults; they travel in the model file and can be overridden per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionConfig {
    /// Probability a keyword's smoothed score must reach to fire, unless overridden below.
    pub default_threshold: f32,
    /// Per-keyword thresholds.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f32>,
    /// Class scores are averaged over this many frames before the softmax.
    pub smoothing_frames: usize,
    /// After a detection, no keyword fires for this long (seconds).
    pub refractory_s: f32,
    /// Once any keyword's smoothed probability reaches this level, detected or not, the front
    /// end's smoothed energy (PCEN) restarts one refractory time later, so that the next
    /// keyword meets it as a fresh stream's first word does instead of still divided by the
    /// energy of the word just heard. It acts only after keyword-like words, so the running
    /// speech that the smoothed energy keeps quiet is mostly untouched. It does not depend on
    /// the thresholds, so one stream serves every threshold. 0: never (files made before it).
    #[serde(default)]
    pub reseed_level: f32,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self { default_threshold: 0.8, thresholds: BTreeMap::new(), smoothing_frames: 8, refractory_s: 1.0, reseed_level: 0.0 }
    }
}

impl DetectionConfig {
    pub fn validate(&self, labels: &[String]) -> Result<(), String> {
        let ok = |t: f32| t > 0.0 && t <= 1.0;
        if !ok(self.default_threshold) {
            return Err(format!("default_threshold {} must be in (0, 1]", self.default_threshold));
        }
        for (k, &t) in &self.thresholds {
            if !labels.iter().any(|l| l == k) {
                return Err(format!("threshold given for unknown keyword {k:?}"));
            }
            if !ok(t) {
                return Err(format!("threshold {t} for {k:?} must be in (0, 1]"));
            }
        }
        if self.smoothing_frames == 0 || self.smoothing_frames > 1000 {
            return Err(format!("smoothing_frames {} must be in 1..=1000", self.smoothing_frames));
        }
        if !(self.refractory_s >= 0.0 && self.refractory_s <= 60.0) {
            return Err(format!("refractory_s {} must be in 0..=60", self.refractory_s));
        }
        if !is_reseed_level(self.reseed_level) {
            return Err(format!("reseed_level {} must be in 0..=1 (0: never)", self.reseed_level));
        }
        Ok(())
    }

    pub fn threshold_for(&self, label: &str) -> f32 {
        self.thresholds.get(label).copied().unwrap_or(self.default_threshold)
    }
}

/// Whether `level` can be a [`DetectionConfig::reseed_level`]: a probability, 0 for never.
pub fn is_reseed_level(level: f32) -> bool {
    (0.0..=1.0).contains(&level)
}

/// Labels that start with '_' (`_unknown_`, `_silence_`) are not keywords and never fire.
pub fn is_keyword(label: &str) -> bool {
    !label.starts_with('_')
}

/// One keyword event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Seconds from the start of the stream to the end of the frame that fired.
    pub time: f64,
    pub keyword: String,
    pub score: f32,
}

/// Turns one frame of logits at a time into detections. Allocates only at construction.
pub struct Detector {
    labels: Vec<String>,
    thresholds: Vec<f32>,
    cfg: DetectionConfig,
    frame_seconds: f64,
    /// `refractory_s` in frames, computed once rather than every frame.
    refractory_frames: u64,
    history: Vec<f32>,
    pos: usize,
    filled: usize,
    probs: Vec<f32>,
    frames: u64,
    quiet_until: u64,
    /// The frame count at which the refractory time after the last keyword that reached
    /// `reseed_level` runs out (0: none yet).
    refractory_end: u64,
}

impl Detector {
    pub fn new(labels: Vec<String>, cfg: DetectionConfig, frame_seconds: f64) -> Self {
        let thresholds = labels.iter().map(|l| if is_keyword(l) { cfg.threshold_for(l) } else { f32::INFINITY }).collect();
        let c = labels.len();
        let refractory_frames = (cfg.refractory_s as f64 / frame_seconds).round() as u64;
        Self {
            history: vec![0.0; c * cfg.smoothing_frames.max(1)],
            probs: vec![0.0; c],
            thresholds,
            labels,
            cfg,
            frame_seconds,
            refractory_frames,
            pos: 0,
            filled: 0,
            frames: 0,
            quiet_until: 0,
            refractory_end: 0,
        }
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    pub fn config(&self) -> &DetectionConfig {
        &self.cfg
    }

    /// Replaces every keyword's threshold.
    pub fn set_threshold(&mut self, t: f32) {
        for (th, l) in self.thresholds.iter_mut().zip(&self.labels) {
            if is_keyword(l) {
                *th = t;
            }
        }
    }
    pub fn set_threshold_for(&mut self, label: &str, t: f32) {
        if let Some(i) = self.labels.iter().position(|l| l == label) {
            if is_keyword(label) {
                self.thresholds[i] = t;
            }
        }
    }
    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    /// Replaces [`DetectionConfig::reseed_level`] for this detector (0: never restart).
    pub fn set_reseed_level(&mut self, level: f32) {
        self.cfg.reseed_level = level;
    }

    /// True on the last frame of the refractory time after a keyword reached
    /// [`DetectionConfig::reseed_level`]: the front end should restart before the next frame
    /// (with no refractory time, on the frame the keyword reached it).
    pub fn refractory_ends_next(&self) -> bool {
        self.refractory_end != 0 && self.frames + 1 == self.refractory_end
    }

    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.pos = 0;
        self.filled = 0;
        self.frames = 0;
        self.quiet_until = 0;
        self.refractory_end = 0;
    }

    /// Smoothed class probabilities after the latest frame.
    pub fn probabilities(&self) -> &[f32] {
        &self.probs
    }

    /// Feeds one frame of class scores; returns a detection if one fires on this frame.
    pub fn push(&mut self, logits: &[f32]) -> Option<Detection> {
        let c = self.labels.len();
        let s = self.cfg.smoothing_frames.max(1);
        self.history[self.pos * c..(self.pos + 1) * c].copy_from_slice(&logits[..c]);
        self.pos = (self.pos + 1) % s;
        self.filled = (self.filled + 1).min(s);
        self.frames += 1;
        smoothed_probabilities(&self.history, c, self.filled, &mut self.probs);
        let (best, score) =
            self.probs
                .iter()
                .enumerate()
                .filter(|(i, _)| is_keyword(&self.labels[*i]))
                .fold((usize::MAX, f32::MIN), |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc });
        let refractory = self.refractory_frames;
        let level = self.cfg.reseed_level;
        if level > 0.0 && self.frames >= self.refractory_end && best != usize::MAX && score >= level {
            self.refractory_end = self.frames + refractory.max(1);
        }
        if self.frames < self.quiet_until {
            return None;
        }
        if best == usize::MAX || score < self.thresholds[best] {
            return None;
        }
        self.quiet_until = self.frames + refractory;
        Some(Detection { time: self.frames as f64 * self.frame_seconds, keyword: self.labels[best].clone(), score })
    }
}

/// Softmax of the mean of the first `rows` rows of `history` ([rows x classes]): the
/// readout that training optimises for the end of a clip.
pub fn smoothed_probabilities(history: &[f32], classes: usize, rows: usize, out: &mut [f32]) {
    out.fill(0.0);
    for r in 0..rows {
        for (o, &z) in out.iter_mut().zip(&history[r * classes..(r + 1) * classes]) {
            *o += z;
        }
    }
    let inv = 1.0 / rows.max(1) as f32;
    let max = out.iter().fold(f32::MIN, |m, &z| m.max(z * inv));
    let mut sum = 0.0;
    for o in out.iter_mut() {
        *o = (*o * inv - max).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o /= sum);
}
