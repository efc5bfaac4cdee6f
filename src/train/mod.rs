//! Training: feature cache, spikes-forward/rate-backward gradients, dt annealing, Adam,
//! checkpoints, export to the model file the inference engine loads.
//!
//! The forward pass is [`crate::network::forward_sequence`], the same definition the
//! streaming engine is tested against; only the backward pass lives here ([`grad`]).

pub mod grad;

use crate::augment::{augment, AugmentOptions, NoiseBank, CLIP, RATE};
use crate::audio::load_resampled;
use crate::dataset::{build_split, Clip, Source, LABELS, SILENCE, UNKNOWN};
use crate::detect::DetectionConfig;
use crate::features::{FrontEnd, FrontEndConfig};
use crate::model::{Model, ModelCard, FORMAT_VERSION};
use crate::network::{forward_sequence, Architecture, LayerSpec, Mode, Weights};
use anyhow::{bail, Context, Result};
use crate::progress::bar as progress;
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every hyperparameter of a run; saved beside the weights and in the model card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub synth: Option<PathBuf>,
    pub out: PathBuf,
    pub seed: u64,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub samples_per_epoch: usize,
    pub layers: Vec<LayerSpec>,
    /// Epochs run as the non-spiking (ReLU) network before spiking starts.
    pub dense_epochs: usize,
    /// dt at the first spiking epoch, decayed geometrically to `target_dt` over `anneal_epochs`.
    pub start_dt: f32,
    pub target_dt: f32,
    pub anneal_epochs: usize,
    pub rate_reg: f32,
    /// Decoupled weight decay (AdamW), per step, relative to the learning rate.
    pub weight_decay: f32,
    /// SpecAugment: masks per example of up to this many mel bands / frames, drawn afresh
    /// every time an example is used.
    pub freq_masks: usize,
    pub freq_mask_width: usize,
    pub time_masks: usize,
    pub time_mask_width: usize,
    pub label_smoothing: f32,
    /// How much more often `_unknown_` examples are drawn than each other class: real
    /// non-keyword speech is far more varied than any keyword, and it is what false alarms
    /// are made of.
    pub unknown_weight: f32,
    pub smoothing_frames: usize,
    /// Augmented versions per real Speech Commands clip.
    pub versions_real: usize,
    pub versions_synth: usize,
    pub versions_other: usize,
    /// Word onsets (a keyword cut mid-word, labelled `_unknown_`) per real / other keyword
    /// clip: they teach the network not to fire before a word is complete.
    pub onsets_real: usize,
    pub onsets_other: usize,
    pub max_digits: usize,
    pub continuous_crops: usize,
    pub silence_clips: usize,
    /// Use at most this many training clips (tests and quick runs).
    pub limit_clips: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::from("../shared/data"),
            synth: Some(PathBuf::from("data/synth")),
            out: PathBuf::from("runs/kws12"),
            seed: 1,
            epochs: 24,
            batch: 64,
            lr: 2e-3,
            samples_per_epoch: 12_000,
            layers: vec![
                LayerSpec { memory_d: 40, order: 12, theta: 100.0, units: 256 },
                LayerSpec { memory_d: 16, order: 8, theta: 50.0, units: 256 },
            ],
            dense_epochs: 4,
            start_dt: 16.0,
            target_dt: 1.0,
            anneal_epochs: 12,
            rate_reg: 0.02,
            weight_decay: 0.01,
            freq_masks: 2,
            freq_mask_width: 7,
            time_masks: 2,
            time_mask_width: 12,
            label_smoothing: 0.05,
            unknown_weight: 3.0,
            smoothing_frames: 8,
            versions_real: 8,
            versions_synth: 1,
            versions_other: 2,
            onsets_real: 2,
            onsets_other: 1,
            max_digits: 800,
            continuous_crops: 4000,
            silence_clips: 1200,
            limit_clips: None,
        }
    }
}

impl TrainConfig {
    /// (mode, dt) used in `epoch` (0-based).
    pub fn schedule(&self, epoch: usize) -> (Mode, f32) {
        if epoch < self.dense_epochs {
            return (Mode::Dense, self.start_dt);
        }
        let k = (epoch - self.dense_epochs + 1).min(self.anneal_epochs.max(1)) as f32 / self.anneal_epochs.max(1) as f32;
        (Mode::Spiking, self.start_dt * (self.target_dt / self.start_dt).powf(k))
    }
}

/// Cached log-mel features of fixed-length examples.
#[derive(Debug, Clone, Default)]
pub struct FeatureSet {
    pub frames: usize,
    pub dim: usize,
    pub features: Vec<f32>,
    pub labels: Vec<usize>,
}

impl FeatureSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn example(&self, i: usize) -> &[f32] {
        let n = self.frames * self.dim;
        &self.features[i * n..(i + 1) * n]
    }
    fn push(&mut self, f: &[f32], label: usize) {
        self.features.extend_from_slice(f);
        self.labels.push(label);
    }
}

/// A job of the feature cache: one augmented version of one clip.
struct Job<'a> {
    clip: Option<&'a Clip>,
    label: usize,
    seed: u64,
    augment: bool,
    /// Use only the onset of the word, ending at the window's end (labelled `_unknown_`).
    onset: bool,
}

/// Decodes, augments and computes features for every job, in parallel.
fn featurise(jobs: &[Job], noise: &NoiseBank, fe_cfg: &FrontEndConfig, what: &str) -> Result<FeatureSet> {
    let pb = progress(jobs.len() as u64, what);
    let results: Vec<Option<(Vec<f32>, usize)>> = jobs
        .par_iter()
        .map_init(
            || FrontEnd::new(fe_cfg.clone()).expect("default front end is valid"),
            |fe, job| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(job.seed);
                let raw = match job.clip {
                    Some(c) => match load_resampled(&c.path, RATE) {
                        Ok(x) => x,
                        Err(e) => {
                            pb.println(format!("skipping {}: {e}", c.path.display()));
                            pb.inc(1);
                            return None;
                        }
                    },
                    None => Vec::new(),
                };
                let raw = match job.clip {
                    // Continuous speech: a random 1 s crop.
                    Some(c) if c.source == Source::Continuous && raw.len() > CLIP => {
                        let s = rng.gen_range(0..raw.len() - CLIP);
                        raw[s..s + CLIP].to_vec()
                    }
                    _ => raw,
                };
                let raw = if job.onset { crate::augment::word_onset(&raw, &mut rng) } else { raw };
                let opt = AugmentOptions {
                    enabled: job.augment,
                    max_shift_s: if job.onset { 0.05 } else { 0.1 },
                    align_end: job.onset,
                };
                let y = augment(&raw, job.label == SILENCE, noise, &mut rng, opt);
                fe.reset();
                let f = fe.frames_of(&y);
                pb.inc(1);
                Some((f, job.label))
            },
        )
        .collect();
    pb.finish();
    let mut set = FeatureSet { frames: CLIP / fe_cfg.hop_length, dim: fe_cfg.n_mels, ..Default::default() };
    for (f, l) in results.into_iter().flatten() {
        set.push(&f, l);
    }
    Ok(set)
}

fn load_noise(paths: &[PathBuf]) -> NoiseBank {
    NoiseBank { files: paths.iter().filter_map(|p| load_resampled(p, RATE).ok()).collect() }
}

/// Builds (train, validation-real, validation-synthetic) feature sets.
pub fn build_features(cfg: &TrainConfig) -> Result<(FeatureSet, FeatureSet, FeatureSet)> {
    let split = build_split(&cfg.data, cfg.synth.as_deref())?;
    if split.train.is_empty() {
        bail!("no training clips found under {}", cfg.data.display());
    }
    let noise = load_noise(&split.noise);
    let fe_cfg = FrontEndConfig::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut train = split.train.clone();
    train.shuffle(&mut rng);
    let digits: Vec<&Clip> = train.iter().filter(|c| c.source == Source::Digits).take(cfg.max_digits).collect();
    let continuous: Vec<&Clip> = train.iter().filter(|c| c.source == Source::Continuous).collect();
    let mut jobs: Vec<Job> = Vec::new();
    let mut seed = || rng.gen::<u64>();
    let limit = cfg.limit_clips.unwrap_or(usize::MAX);
    for c in train.iter().filter(|c| matches!(c.source, Source::Real | Source::RealV1 | Source::Synth)).take(limit) {
        let n = match c.source {
            Source::Real => cfg.versions_real,
            Source::Synth => cfg.versions_synth,
            _ => cfg.versions_other,
        };
        if c.label < UNKNOWN {
            let onsets = if c.source == Source::Real { cfg.onsets_real } else { cfg.onsets_other };
            for _ in 0..onsets {
                jobs.push(Job { clip: Some(c), label: UNKNOWN, seed: seed(), augment: true, onset: true });
            }
        }
        for _ in 0..n {
            jobs.push(Job { clip: Some(c), label: c.label, seed: seed(), augment: true, onset: false });
        }
    }
    for c in digits.iter().take(limit) {
        jobs.push(Job { clip: Some(c), label: UNKNOWN, seed: seed(), augment: true, onset: false });
    }
    if !continuous.is_empty() {
        for i in 0..cfg.continuous_crops.min(limit) {
            jobs.push(Job { clip: Some(continuous[i % continuous.len()]), label: UNKNOWN, seed: seed(), augment: true, onset: false });
        }
    }
    for _ in 0..cfg.silence_clips.min(limit) {
        jobs.push(Job { clip: None, label: SILENCE, seed: seed(), augment: true, onset: false });
    }
    fn clean(clips: &[Clip], limit: usize) -> Vec<Job<'_>> {
        clips.iter().take(limit).map(|c| Job { clip: Some(c), label: c.label, seed: 0, augment: false, onset: false }).collect()
    }
    let val_real_jobs = clean(&split.val_real, limit);
    let val_synth_jobs = clean(&split.val_synth, limit);
    let train = featurise(&jobs, &noise, &fe_cfg, "features: train")?;
    let val_real = featurise(&val_real_jobs, &noise, &fe_cfg, "features: val real")?;
    let val_synth = featurise(&val_synth_jobs, &noise, &fe_cfg, "features: val synth")?;
    Ok((train, val_real, val_synth))
}

/// Class-balanced sample of example indices for one epoch (`_unknown_` weighted by
/// `unknown_weight`).
fn epoch_indices(set: &FeatureSet, n: usize, unknown_weight: f32, rng: &mut impl Rng) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); LABELS.len()];
    for (i, &l) in set.labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let weights: Vec<f32> =
        by_class.iter().enumerate().map(|(c, v)| if v.is_empty() { 0.0 } else if c == UNKNOWN { unknown_weight } else { 1.0 }).collect();
    let Ok(pick) = rand::distributions::WeightedIndex::new(&weights) else {
        return Vec::new();
    };
    (0..n)
        .map(|_| {
            let members = &by_class[rand::distributions::Distribution::sample(&pick, rng)];
            members[rng.gen_range(0..members.len())]
        })
        .collect()
}

/// Class index of the smoothed readout at the end of a clip.
pub fn predict(logits: &Array2<f32>, window: usize) -> usize {
    let (_, _, pred) = grad::smoothed_cross_entropy(logits, 0, window, 0.0);
    pred
}

/// Accuracy and confusion matrix [true][predicted] of the clip classifier.
pub fn evaluate(arch: &Architecture, w: &Weights, set: &FeatureSet, mode: Mode, window: usize) -> (f64, Vec<Vec<u32>>) {
    let c = arch.classes;
    let preds: Vec<usize> = (0..set.len())
        .into_par_iter()
        .map(|i| predict(&forward_sequence(arch, w, set.example(i), mode, None).logits, window))
        .collect();
    let mut confusion = vec![vec![0u32; c]; c];
    let mut correct = 0;
    for (p, &l) in preds.iter().zip(&set.labels) {
        confusion[l][*p] += 1;
        correct += (*p == l) as usize;
    }
    (correct as f64 / set.len().max(1) as f64, confusion)
}

/// Masks random bands and frames with the band's mean (zero after normalisation).
fn spec_augment(x: &mut [f32], dim: usize, mean: &[f32], cfg: &TrainConfig, rng: &mut impl Rng) {
    let frames = x.len() / dim;
    for _ in 0..cfg.freq_masks {
        let w = rng.gen_range(0..=cfg.freq_mask_width.min(dim));
        let f0 = rng.gen_range(0..=dim - w);
        for row in x.chunks_exact_mut(dim) {
            row[f0..f0 + w].copy_from_slice(&mean[f0..f0 + w]);
        }
    }
    for _ in 0..cfg.time_masks {
        let w = rng.gen_range(0..=cfg.time_mask_width.min(frames));
        let t0 = rng.gen_range(0..=frames - w);
        for row in x.chunks_exact_mut(dim).skip(t0).take(w) {
            row.copy_from_slice(mean);
        }
    }
}

struct Adam {
    m: Weights,
    v: Weights,
    t: i32,
}

impl Adam {
    fn step(&mut self, w: &mut Weights, g: &Weights, lr: f32, weight_decay: f32) {
        self.t += 1;
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let grads = g.tensors();
        // Skip the input normalisation (the first two tensors): it is fixed from the data.
        for (((p, m), v), (_, g)) in w.tensors_mut().into_iter().zip(self.m.tensors_mut()).zip(self.v.tensors_mut()).zip(grads).skip(2) {
            for i in 0..p.len() {
                p[i] -= lr * weight_decay * p[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        }
    }
}

fn add_weights(a: &mut Weights, b: &Weights) {
    for (x, y) in a.tensors_mut().into_iter().zip(b.tensors()) {
        for (p, q) in x.iter_mut().zip(y.1) {
            *p += q;
        }
    }
}

fn scale_weights(a: &mut Weights, s: f32) {
    for x in a.tensors_mut() {
        x.iter_mut().for_each(|v| *v *= s);
    }
}

/// Per-feature mean and standard deviation over the training set.
fn feature_stats(set: &FeatureSet) -> (Vec<f32>, Vec<f32>) {
    let d = set.dim;
    let mut sum = vec![0f64; d];
    let mut sq = vec![0f64; d];
    let rows = set.features.len() / d;
    for r in set.features.chunks_exact(d) {
        for i in 0..d {
            sum[i] += r[i] as f64;
            sq[i] += (r[i] as f64).powi(2);
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / rows as f64) as f32).collect();
    let std = sq.iter().zip(&mean).map(|(q, &m)| ((q / rows as f64 - (m as f64).powi(2)).max(1e-6)).sqrt() as f32).collect();
    (mean, std)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub mode: Mode,
    pub dt: f32,
    pub loss: f32,
    pub train_accuracy: f64,
    pub val_real_accuracy: f64,
    pub val_real_accuracy_dense: f64,
    pub val_synth_accuracy: f64,
    pub seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    next_epoch: usize,
    adam_t: i32,
    log: Vec<EpochLog>,
}

/// The model card of the current weights.
pub fn card(cfg: &TrainConfig, dt: f32, metrics: serde_json::Value) -> ModelCard {
    ModelCard {
        format_version: FORMAT_VERSION,
        name: "spikeword-kws12".into(),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        frontend: FrontEndConfig::default(),
        architecture: Architecture { input_dim: FrontEndConfig::default().n_mels, layers: cfg.layers.clone(), classes: LABELS.len(), dt },
        detection: DetectionConfig { smoothing_frames: cfg.smoothing_frames, ..Default::default() },
        provenance: serde_json::json!({ "train_config": cfg }),
        metrics,
    }
}

/// Trains (resuming from `cfg.out` when `resume`), returns the final model.
pub fn train(cfg: &TrainConfig, resume: bool, features: Option<(FeatureSet, FeatureSet, FeatureSet)>) -> Result<Model> {
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    std::fs::write(cfg.out.join("config.json"), serde_json::to_string_pretty(cfg)?)?;
    let (train, val_real, val_synth) = match features {
        Some(f) => f,
        None => build_features(cfg)?,
    };
    eprintln!(
        "examples: {} train (augmented), {} validation real (held-out speakers), {} validation synthetic (held-out voices)",
        train.len(),
        val_real.len(),
        val_synth.len()
    );
    let mut arch = card(cfg, cfg.start_dt, serde_json::Value::Null).architecture;
    let mut w = Weights::random(&arch, cfg.seed);
    (w.input_mean, w.input_std) = feature_stats(&train);
    let mut adam = Adam { m: Weights::zeros(&arch), v: Weights::zeros(&arch), t: 0 };
    let mut log: Vec<EpochLog> = Vec::new();
    let mut start = 0;
    let ckpt_model = cfg.out.join("checkpoint.safetensors");
    let ckpt_state = cfg.out.join("checkpoint.json");
    if resume && ckpt_state.is_file() {
        let c: Checkpoint = serde_json::from_str(&std::fs::read_to_string(&ckpt_state)?)?;
        w = Model::load(&ckpt_model)?.weights;
        adam.m = Model::load(&cfg.out.join("adam_m.safetensors"))?.weights;
        adam.v = Model::load(&cfg.out.join("adam_v.safetensors"))?.weights;
        adam.t = c.adam_t;
        start = c.next_epoch;
        log = c.log;
        eprintln!("resuming at epoch {}", start + 1);
    }
    let steps_per_epoch = cfg.samples_per_epoch.div_ceil(cfg.batch).max(1);
    let total_steps = (steps_per_epoch * cfg.epochs) as f32;
    for epoch in start..cfg.epochs {
        let t0 = std::time::Instant::now();
        let (mode, dt) = cfg.schedule(epoch);
        arch.dt = dt;
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15));
        let idx = epoch_indices(&train, cfg.samples_per_epoch, cfg.unknown_weight, &mut rng);
        let pb = progress(idx.len() as u64, &format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (b, batch) in idx.chunks(cfg.batch).enumerate() {
            let seeds: Vec<u64> = batch.iter().map(|_| rng.gen()).collect();
            let (g, loss, ok) = batch
                .par_iter()
                .zip(seeds)
                .fold(
                    || (Weights::zeros(&arch), 0.0f64, 0usize),
                    |(mut g, loss, ok), (&i, s)| {
                        let mut r = rand::rngs::StdRng::seed_from_u64(s);
                        let v0: Vec<Vec<f32>> = arch.layers.iter().map(|l| (0..l.units).map(|_| r.gen::<f32>()).collect()).collect();
                        let mut x = train.example(i).to_vec();
                        spec_augment(&mut x, train.dim, &w.input_mean, cfg, &mut r);
                        let trace = forward_sequence(&arch, &w, &x, mode, Some(&v0));
                        let (l, dz, pred) = grad::smoothed_cross_entropy(&trace.logits, train.labels[i], cfg.smoothing_frames, cfg.label_smoothing);
                        let impulse: Vec<Vec<f32>> = arch.layers.iter().map(|s| crate::lmu::impulse_response(s.order, s.theta as f64, trace.steps)).collect();
                        grad::backward(&arch, &w, &trace, &dz, cfg.rate_reg, &impulse, &mut g);
                        (g, loss + l as f64, ok + (pred == train.labels[i]) as usize)
                    },
                )
                .reduce(
                    || (Weights::zeros(&arch), 0.0, 0),
                    |(mut a, la, oa), (b, lb, ob)| {
                        add_weights(&mut a, &b);
                        (a, la + lb, oa + ob)
                    },
                );
            let mut g = g;
            scale_weights(&mut g, 1.0 / batch.len() as f32);
            // Global-norm clipping keeps the early spiking epochs stable.
            let norm = g.tensors().iter().skip(2).map(|(_, t)| t.iter().map(|v| v * v).sum::<f32>()).sum::<f32>().sqrt();
            if norm > 5.0 {
                scale_weights(&mut g, 5.0 / norm);
            }
            let step = (epoch * steps_per_epoch + b) as f32;
            let lr = cfg.lr * 0.5 * (1.0 + (std::f32::consts::PI * step / total_steps).cos()).max(0.02);
            adam.step(&mut w, &g, lr, cfg.weight_decay);
            loss_sum += loss;
            correct += ok;
            seen += batch.len();
            pb.set_prefix(format!("loss {:.3} acc {:.3} dt {}", loss_sum / seen as f64, correct as f64 / seen as f64, if mode == Mode::Dense { "relu".into() } else { format!("{dt:.2}") }));
            pb.inc(batch.len() as u64);
        }
        pb.finish();
        let (acc_real, _) = evaluate(&arch, &w, &val_real, mode, cfg.smoothing_frames);
        let (acc_dense, _) = evaluate(&arch, &w, &val_real, Mode::Dense, cfg.smoothing_frames);
        let (acc_synth, _) = evaluate(&arch, &w, &val_synth, mode, cfg.smoothing_frames);
        let entry = EpochLog {
            epoch: epoch + 1,
            mode,
            dt,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_real_accuracy: acc_real,
            val_real_accuracy_dense: acc_dense,
            val_synth_accuracy: acc_synth,
            seconds: t0.elapsed().as_secs_f64(),
        };
        eprintln!(
            "epoch {:>2}: {} loss {:.3} train acc {:.3} | held-out real speakers: {:.3} ({:.3} non-spiking) | held-out voices {:.3} | {:.0} s",
            entry.epoch,
            if mode == Mode::Dense { "relu     ".to_string() } else { format!("dt {dt:<6.2}") },
            entry.loss,
            entry.train_accuracy,
            acc_real,
            acc_dense,
            acc_synth,
            entry.seconds
        );
        log.push(entry);
        let metrics = serde_json::json!({ "epochs": log });
        Model { card: card(cfg, dt, metrics.clone()), weights: w.clone() }.save(&ckpt_model)?;
        Model { card: card(cfg, dt, serde_json::Value::Null), weights: adam.m.clone() }.save(&cfg.out.join("adam_m.safetensors"))?;
        Model { card: card(cfg, dt, serde_json::Value::Null), weights: adam.v.clone() }.save(&cfg.out.join("adam_v.safetensors"))?;
        std::fs::write(&ckpt_state, serde_json::to_string_pretty(&Checkpoint { next_epoch: epoch + 1, adam_t: adam.t, log: log.clone() })?)?;
    }
    let (_, dt) = cfg.schedule(cfg.epochs.saturating_sub(1));
    arch.dt = dt;
    let (acc, confusion) = evaluate(&arch, &w, &val_real, Mode::Spiking, cfg.smoothing_frames);
    let (acc_dense, confusion_dense) = evaluate(&arch, &w, &val_real, Mode::Dense, cfg.smoothing_frames);
    let metrics = serde_json::json!({
        "validation": "Speech Commands v0.02 test_a, held-out speakers (never trained on)",
        "validation_clips": val_real.len(),
        "accuracy_spiking": acc,
        "accuracy_dense": acc_dense,
        "confusion_spiking": confusion,
        "confusion_dense": confusion_dense,
        "epochs": log,
    });
    let model = Model { card: card(cfg, dt, metrics), weights: w };
    let out = cfg.out.join("model.safetensors");
    model.save(&out)?;
    eprintln!("saved {} (held-out real speakers: {:.3} spiking, {:.3} non-spiking)", out.display(), acc, acc_dense);
    Ok(model)
}
