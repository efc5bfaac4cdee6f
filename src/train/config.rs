//! A run's configuration: every hyperparameter, saved beside the weights (`config.json`)
//! and inside the model card, and the dt schedule it implies.

use super::compose::ComposeConfig;
use super::loss::LossWeights;
use crate::features::FrontEndConfig;
use crate::network::{LayerSpec, Mode};
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
    /// Sequences composed afresh for every epoch.
    pub sequences_per_epoch: usize,
    pub layers: Vec<LayerSpec>,
    /// Delta-coding step of layer 0's input (0: off). Each layer's memory read-out has its
    /// own in `layers[l].memory_delta`. Both are in the loop whenever the network spikes.
    #[serde(default)]
    pub input_delta: f32,
    pub frontend: FrontEndConfig,
    /// Epochs run as the non-spiking (ReLU) network before spiking starts.
    pub dense_epochs: usize,
    /// dt at the first spiking epoch, decayed geometrically to `target_dt` over `anneal_epochs`.
    pub start_dt: f32,
    pub target_dt: f32,
    pub anneal_epochs: usize,
    pub rate_reg: f32,
    /// Decoupled weight decay (AdamW), per step, relative to the learning rate.
    pub weight_decay: f32,
    /// SpecAugment: masks per sequence of up to this many mel bands / frames, drawn afresh
    /// every time.
    pub freq_masks: usize,
    pub freq_mask_width: usize,
    pub time_masks: usize,
    pub time_mask_width: usize,
    pub smoothing_frames: usize,
    pub compose: ComposeConfig,
    pub loss: LossWeights,
    /// Mine hard negatives every this many epochs once spiking has started (0: never).
    pub mine_every: usize,
    pub mine_threshold: f32,
    pub mine_fraction: f32,
    pub max_hard_negatives: usize,
    /// Measure the streaming metric on the dev part every this many epochs (and at the end).
    pub eval_every: usize,
    /// Average the weights of this many last epochs (stochastic weight averaging: a flatter
    /// solution that is less tied to the few real training speakers) and keep the average if
    /// the dev streaming metric prefers it to the best single epoch. 0: off.
    #[serde(default)]
    pub average_last: usize,
    /// Use at most this many files per source (tests and quick runs).
    pub limit_files: Option<usize>,
    /// Which non-test ids are dev (kept out of training, choose checkpoints and thresholds).
    /// Recorded in the model's card; `--set split.dev_percent=30` for recipe comparisons.
    #[serde(default)]
    pub split: crate::corpus::Split,
    /// Stop (checkpointed) after this epoch, to go on later with `--resume`. Not part of
    /// the run's settings, so it is not saved.
    #[serde(skip)]
    pub stop_after: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::from("../shared/data"),
            synth: Some(PathBuf::from("data/synth")),
            out: PathBuf::from("runs/kws12"),
            seed: 1,
            epochs: 45,
            batch: 32,
            lr: 2e-3,
            sequences_per_epoch: 5000,
            layers: vec![
                LayerSpec { memory_d: 40, order: 12, theta: 100.0, units: 512, memory_delta: 0.0 },
                LayerSpec { memory_d: 16, order: 8, theta: 50.0, units: 512, memory_delta: 0.0 },
            ],
            input_delta: 0.0,
            frontend: FrontEndConfig::default(),
            dense_epochs: 6,
            start_dt: 16.0,
            target_dt: 1.0,
            anneal_epochs: 12,
            rate_reg: 0.02,
            weight_decay: 0.01,
            freq_masks: 2,
            freq_mask_width: 7,
            time_masks: 1,
            time_mask_width: 10,
            smoothing_frames: 8,
            compose: ComposeConfig::default(),
            loss: LossWeights::default(),
            mine_every: 3,
            mine_threshold: 0.5,
            mine_fraction: 0.4,
            max_hard_negatives: 4000,
            eval_every: 2,
            average_last: 12,
            limit_files: None,
            split: Default::default(),
            stop_after: None,
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

    /// Frames per training sequence.
    pub fn frames(&self) -> usize {
        (self.compose.seconds * self.frontend.sample_rate as f32 / self.frontend.hop_length as f32).round() as usize
    }
}
