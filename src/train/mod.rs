//! Training for streaming use: multi-second sequences composed from real and synthetic
//! speech, noise and non-keyword audio ([`compose`]), per-frame targets and the streaming
//! loss ([`loss`]), hard negatives mined from the training audio every few epochs
//! ([`mine`]), spikes forward and the rate derivative backward ([`grad`]), dt annealed from
//! the ReLU network to the target, checkpoints every epoch (`checkpoint`), and the model
//! chosen by the streaming metric on the dev part; every setting in one [`TrainConfig`].
//!
//! The forward pass is [`crate::network::forward_sequence`], the same definition the
//! streaming engine is tested against; only the backward pass lives here.

mod checkpoint;
pub mod compose;
pub mod config;
pub mod data;
pub mod grad;
pub mod loss;
pub mod mine;

use crate::corpus::{Corpus, Part};
use crate::dataset::LABELS;
use crate::detect::{is_keyword, DetectionConfig};
use crate::eval::score::score;
use crate::eval::stream::{add_calibration_negatives, collect_traces, BenchmarkOptions};
use crate::features::FrontEnd;
use crate::model::{Model, ModelCard, FORMAT_VERSION};
use crate::network::{forward_sequence, Architecture, Mode, Weights};
use crate::progress::bar as progress;
use anyhow::{bail, Context, Result};
use checkpoint::{clear_earlier_run, move_pending, pending, Checkpoint, RunState, CHECKPOINT_STATE};
use compose::{compose, HardOrigin, Pool};
pub use config::TrainConfig;
use loss::{streaming_loss, SeqLabels};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One composed training sequence, as features.
pub struct Example {
    pub features: Vec<f32>,
    pub labels: SeqLabels,
}

/// Composes and featurises one epoch's sequences (in parallel; deterministic per seed).
pub fn make_examples(pool: &Pool, cfg: &TrainConfig, n: usize, seed: u64, what: &str) -> Vec<Example> {
    let frames = cfg.frames();
    let hop = cfg.frontend.hop_length;
    let pb = progress(n as u64, what);
    let out = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let seq = compose(pool, &cfg.compose, frames, hop, &mut rng);
            let mut fe = FrontEnd::with_warp(cfg.frontend.clone(), seq.warp).expect("training front end is valid");
            fe.push(&seq.warm_up, |_| {});
            let mut features = fe.frames_of(&seq.audio);
            features.truncate(frames * cfg.frontend.n_mels);
            pb.inc(1);
            Example { features, labels: seq.labels }
        })
        .collect();
    pb.finish_and_clear();
    out
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

/// Parts a batch's gradient is split into. Fixed, not the thread count, so a run gives the
/// same weights however many threads do the work; 8 keeps every core of a small machine busy.
const GRAD_PARTS: usize = 8;

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

/// Per-feature mean and standard deviation over a set of examples.
fn feature_stats(examples: &[Example], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; dim];
    let mut sq = vec![0f64; dim];
    let mut rows = 0usize;
    for e in examples {
        for r in e.features.chunks_exact(dim) {
            rows += 1;
            for i in 0..dim {
                sum[i] += r[i] as f64;
                sq[i] += (r[i] as f64).powi(2);
            }
        }
    }
    let rows = rows.max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / rows) as f32).collect();
    let std = sq.iter().zip(&mean).map(|(q, &m)| ((q / rows - (m as f64).powi(2)).max(1e-6)).sqrt() as f32).collect();
    (mean, std)
}

/// The streaming metric on the dev part (never trained on): recall of clean and noisy
/// keyword clips at the lowest global threshold with at most 2 false alarms per hour on the
/// dev negatives, and the clean recall at a threshold of 0.9.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DevMetrics {
    pub recall_clean_at_2fa: f64,
    pub recall_noisy_at_2fa: f64,
    pub threshold_at_2fa: Option<f32>,
    pub recall_clean_at_0_9: f64,
    pub false_alarms_per_hour_at_0_9: f64,
    pub negative_hours: f64,
}

impl DevMetrics {
    /// What checkpoints are chosen by.
    pub fn score(&self) -> f64 {
        0.5 * (self.recall_clean_at_2fa + self.recall_noisy_at_2fa)
    }
}

/// The streaming metric checkpoints are chosen by: keyword clips of the dev part, negatives
/// of the dev and calibration parts.
pub fn dev_metrics(model: &Model, corpus: &Corpus, mode: Mode, limit: Option<usize>) -> Result<DevMetrics> {
    let opt = BenchmarkOptions {
        part: Part::Dev,
        snr_db: vec![10.0],
        threshold: Some(0.9),
        dense_twin: false,
        limit,
        seed: 11,
        back_to_back: None,
        ..Default::default()
    };
    let mut traces = collect_traces(model, corpus, mode, &opt)?;
    add_calibration_negatives(model, corpus, mode, &opt, &mut traces)?;
    let r = score(model, traces, mode, &opt);
    let at2 = r.recall_at.iter().find(|a| a.false_alarms_per_hour == 2.0);
    Ok(DevMetrics {
        recall_clean_at_2fa: at2.map_or(0.0, |a| a.recall_clean),
        recall_noisy_at_2fa: at2.and_then(|a| a.recall_noisy.first().copied()).unwrap_or(0.0),
        threshold_at_2fa: at2.and_then(|a| a.threshold),
        recall_clean_at_0_9: r.clean.recall,
        false_alarms_per_hour_at_0_9: r.false_alarms_per_hour,
        negative_hours: r.negative_hours,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub mode: Mode,
    pub dt: f32,
    pub loss: f32,
    /// Share of training keyword windows in which the keyword reached p > 0.5.
    pub train_caught: f64,
    /// Share of training sequences in which a keyword reached p > 0.5 outside any window.
    pub train_false_fire: f64,
    pub hard_negatives: usize,
    pub dev: Option<DevMetrics>,
    pub seconds: f64,
}

/// The model card of the current weights.
pub fn card(cfg: &TrainConfig, dt: f32, metrics: serde_json::Value) -> ModelCard {
    ModelCard {
        format_version: FORMAT_VERSION,
        name: "spikeword-kws12".into(),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        frontend: cfg.frontend.clone(),
        architecture: Architecture { input_dim: cfg.frontend.n_mels, layers: cfg.layers.clone(), classes: LABELS.len(), dt, input_delta: cfg.input_delta },
        detection: DetectionConfig { smoothing_frames: cfg.smoothing_frames, ..Default::default() },
        provenance: serde_json::json!({ "train_config": cfg, "split": cfg.split.record() }),
        metrics,
    }
}

/// A new run's starting point: random weights, the input statistics of a first sample of
/// sequences, Adam at rest.
fn fresh(cfg: &TrainConfig, pool: &Pool, arch: &Architecture) -> RunState {
    let mut weights = Weights::random(arch, cfg.seed);
    let first = make_examples(pool, cfg, cfg.sequences_per_epoch.min(1000), cfg.seed ^ 0xFEA7, "features: statistics");
    (weights.input_mean, weights.input_std) = feature_stats(&first, cfg.frontend.n_mels);
    RunState {
        weights,
        adam: Adam { m: Weights::zeros(arch), v: Weights::zeros(arch), t: 0 },
        next_epoch: 0,
        log: Vec::new(),
        best_score: None,
        averaged: 0,
        average: None,
    }
}

/// Trains (resuming from `cfg.out` when `resume`), returns the chosen model (the best
/// checkpoint by the dev streaming metric once dt has reached its target, else the last).
/// `pool` replaces loading the data folder (tests); `corpus` is needed for the dev metric.
pub fn train(cfg: &TrainConfig, resume: bool, pool: Option<Pool>) -> Result<Model> {
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let (mut pool, summary, corpus) = match pool {
        Some(p) => (p, data::PoolSummary::default(), None),
        None => {
            // One read of the data folder serves the training pool and the dev metric.
            let corpus = crate::corpus::load(&cfg.data, cfg.split)?;
            let (p, s) = data::load_pool(&corpus, cfg.synth.as_deref(), cfg.limit_files)?;
            eprintln!(
                "training audio: {} real + {} synthetic keyword clips, {} keywords inside sentences, {} non-keyword words ({:.2} h), {} running-speech files ({:.2} h), {} noise recordings",
                s.keyword_clips_real, s.keyword_clips_synthetic, s.keywords_in_sentences, s.words, s.hours_words, s.speech_files, s.hours_speech, s.noise_files
            );
            (p, s, Some(corpus))
        }
    };
    if pool.keywords_real.is_empty() && pool.keywords_synth.is_empty() {
        bail!("no keyword clips to train on");
    }
    let dim = cfg.frontend.n_mels;
    let mut arch = card(cfg, cfg.start_dt, serde_json::Value::Null).architecture;
    let ckpt_state = cfg.out.join(CHECKPOINT_STATE);
    let best_path = cfg.out.join("best.safetensors");
    let RunState { weights: mut w, mut adam, next_epoch: start, mut log, mut best_score, mut averaged, mut average } = if resume && ckpt_state.is_file() {
        checkpoint::resume(cfg, &mut pool)?
    } else {
        clear_earlier_run(&cfg.out)?;
        fresh(cfg, &pool, &arch)
    };
    // Written after the resume check, so a refused resume leaves the run's settings as they were.
    std::fs::write(cfg.out.join("config.json"), serde_json::to_string_pretty(cfg)?)?;
    let is_kw: Vec<bool> = LABELS.iter().map(|l| is_keyword(l)).collect();
    let steps_per_epoch = cfg.sequences_per_epoch.div_ceil(cfg.batch).max(1);
    let total_steps = (steps_per_epoch * cfg.epochs) as f32;
    for epoch in start..cfg.epochs {
        let t0 = std::time::Instant::now();
        let (mode, dt) = cfg.schedule(epoch);
        arch.dt = dt;
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mines = cfg.mine_every > 0 && epoch >= cfg.dense_epochs && (epoch - cfg.dense_epochs).is_multiple_of(cfg.mine_every) && (epoch > 0);
        if mines {
            let model = Model { card: card(cfg, dt, serde_json::Value::Null), weights: w.clone() };
            let opt = mine::MineOptions { threshold: cfg.mine_threshold, fraction: cfg.mine_fraction, seconds: cfg.compose.seconds, after_s: 0.5, mode };
            let found = mine::mine(&model, &pool, &opt, &mut rng);
            eprintln!("mined {} hard negatives (p >= {} on {:.0}% of the training negatives)", found.len(), cfg.mine_threshold, 100.0 * cfg.mine_fraction);
            pool.hard.extend(found);
            let excess = pool.hard.len().saturating_sub(cfg.max_hard_negatives);
            pool.hard.drain(..excess);
        }
        let examples = make_examples(&pool, cfg, cfg.sequences_per_epoch, rng.gen(), &format!("composing epoch {}", epoch + 1));
        let mut idx: Vec<usize> = (0..examples.len()).collect();
        rand::seq::SliceRandom::shuffle(&mut idx[..], &mut rng);
        let pb = progress(idx.len() as u64, &format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        let (mut windows, mut caught, mut false_fires) = (0usize, 0usize, 0usize);
        for (b, batch) in idx.chunks(cfg.batch).enumerate() {
            let seeds: Vec<u64> = batch.iter().map(|_| rng.gen()).collect();
            // A fixed split of the batch, summed in order: the float sums (and so the run)
            // do not depend on how rayon happens to schedule the work.
            let per = batch.len().div_ceil(GRAD_PARTS).max(1);
            let parts: Vec<(&[usize], &[u64])> = batch.chunks(per).zip(seeds.chunks(per)).collect();
            let sums: Vec<(Weights, f64, (usize, usize, usize))> = parts
                .par_iter()
                .map(|&(items, seeds)| {
                    let mut acc = (Weights::zeros(&arch), 0.0f64, (0usize, 0usize, 0usize));
                    for (&i, &s) in items.iter().zip(seeds) {
                        let mut r = rand::rngs::StdRng::seed_from_u64(s);
                        let v0: Vec<Vec<f32>> = arch.layers.iter().map(|l| (0..l.units).map(|_| r.gen::<f32>()).collect()).collect();
                        let ex = &examples[i];
                        let mut x = ex.features.clone();
                        spec_augment(&mut x, dim, &w.input_mean, cfg, &mut r);
                        let trace = forward_sequence(&arch, &w, &x, mode, Some(&v0));
                        let (l, dz, st) = streaming_loss(&trace.logits, &ex.labels, cfg.smoothing_frames, &is_kw, &cfg.loss);
                        grad::backward(&arch, &w, &trace, &dz, cfg.rate_reg, &mut acc.0);
                        acc.1 += l as f64;
                        acc.2 = (acc.2 .0 + st.windows, acc.2 .1 + st.caught, acc.2 .2 + st.false_fire as usize);
                    }
                    acc
                })
                .collect();
            let mut sums = sums.into_iter();
            let Some((mut g, mut loss, mut st)) = sums.next() else { continue };
            for (part, lb, sb) in sums {
                add_weights(&mut g, &part);
                loss += lb;
                st = (st.0 + sb.0, st.1 + sb.1, st.2 + sb.2);
            }
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
            seen += batch.len();
            windows += st.0;
            caught += st.1;
            false_fires += st.2;
            pb.set_prefix(format!(
                "loss {:.3} caught {:.2} false-fire {:.2} dt {}",
                loss_sum / seen as f64,
                caught as f64 / windows.max(1) as f64,
                false_fires as f64 / seen as f64,
                if mode == Mode::Dense { "relu".into() } else { format!("{dt:.2}") }
            ));
            pb.inc(batch.len() as u64);
        }
        pb.finish();
        drop(examples);
        let last_epoch = epoch + 1 == cfg.epochs;
        let annealed = epoch + 1 >= cfg.dense_epochs + cfg.anneal_epochs;
        let model = Model { card: card(cfg, dt, serde_json::Value::Null), weights: w.clone() };
        let dev = match &corpus {
            Some(c) if cfg.eval_every > 0 && ((epoch + 1) % cfg.eval_every == 0 || last_epoch) => Some(dev_metrics(&model, c, mode, cfg.limit_files)?),
            _ => None,
        };
        let entry = EpochLog {
            epoch: epoch + 1,
            mode,
            dt,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            train_caught: caught as f64 / windows.max(1) as f64,
            train_false_fire: false_fires as f64 / seen.max(1) as f64,
            hard_negatives: pool.hard.len(),
            dev: dev.clone(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        eprintln!(
            "epoch {:>2}: {} loss {:.3} caught {:.3} false-fire {:.3}{} | {:.0} s",
            entry.epoch,
            if mode == Mode::Dense { "relu     ".to_string() } else { format!("dt {dt:<6.2}") },
            entry.loss,
            entry.train_caught,
            entry.train_false_fire,
            match &dev {
                Some(d) => format!(
                    " | dev: recall {:.3} clean / {:.3} at 10 dB with <= 2 FA/h (threshold {:?}); at 0.9: recall {:.3}, {:.1} FA/h",
                    d.recall_clean_at_2fa, d.recall_noisy_at_2fa, d.threshold_at_2fa, d.recall_clean_at_0_9, d.false_alarms_per_hour_at_0_9
                ),
                None => String::new(),
            },
            entry.seconds
        );
        log.push(entry);
        if let Some(d) = &dev {
            if annealed && best_score.is_none_or(|b| d.score() > b) {
                best_score = Some(d.score());
                Model { card: card(cfg, dt, serde_json::json!({ "epochs": log, "chosen_epoch": epoch + 1 })), weights: w.clone() }.save(&best_path)?;
                eprintln!("  best so far by the dev streaming metric (score {:.3})", d.score());
            }
        }
        if cfg.average_last > 0 && annealed && epoch + cfg.average_last >= cfg.epochs {
            // Running mean of the weights after each of the last epochs.
            let a = average.get_or_insert_with(|| Weights::zeros(&arch));
            averaged += 1;
            let k = 1.0 / averaged as f32;
            for (x, (_, y)) in a.tensors_mut().into_iter().zip(w.tensors()) {
                x.iter_mut().zip(y).for_each(|(p, q)| *p += k * (q - *p));
            }
            Model { card: card(cfg, dt, serde_json::Value::Null), weights: a.clone() }.save(&pending(&cfg.out, "average.safetensors"))?;
        }
        let checkpoint = Model { card: card(cfg, dt, serde_json::json!({ "epochs": log })), weights: w.clone() };
        checkpoint.save(&pending(&cfg.out, "checkpoint.safetensors"))?;
        Model { card: card(cfg, dt, serde_json::Value::Null), weights: adam.m.clone() }.save(&pending(&cfg.out, "adam_m.safetensors"))?;
        Model { card: card(cfg, dt, serde_json::Value::Null), weights: adam.v.clone() }.save(&pending(&cfg.out, "adam_v.safetensors"))?;
        // The list changes only when mining runs; the first epoch of every invocation writes it
        // too, so a list left by an earlier run in the same folder never outlives it.
        if mines || epoch == start {
            let origins: Vec<&HardOrigin> = pool.hard.iter().map(|h| &h.origin).collect();
            // A plain write: a pending file cut short is never committed, so it is never read.
            let path = pending(&cfg.out, "hard_negatives.json");
            std::fs::write(&path, serde_json::to_string(&origins)?).with_context(|| format!("writing {}", path.display()))?;
        }
        // The commit: from here on, a resume takes this epoch's pending files.
        let commit = serde_json::to_string_pretty(&Checkpoint { next_epoch: epoch + 1, adam_t: adam.t, log: log.clone(), best_score, averaged })?;
        crate::model::write_atomic(&ckpt_state, commit.as_bytes()).with_context(|| format!("writing {}", ckpt_state.display()))?;
        move_pending(&cfg.out)?;
        if cfg.stop_after == Some(epoch + 1) && epoch + 1 < cfg.epochs {
            return Ok(checkpoint);
        }
    }
    let (mode, dt) = cfg.schedule(cfg.epochs.saturating_sub(1));
    // By the run's own record, not by the file: a folder may hold another run's.
    let (mut chosen, chosen_epoch) = if best_score.is_some() {
        let m = Model::load(&best_path)?;
        let e = m.card.metrics["chosen_epoch"].as_u64().unwrap_or(cfg.epochs as u64);
        (m.weights, e as usize)
    } else {
        (w, cfg.epochs)
    };
    let mut average_report = serde_json::Value::Null;
    let mut average_kept = false;
    if let (Some(a), Some(c)) = (average, &corpus) {
        let d = dev_metrics(&Model { card: card(cfg, dt, serde_json::Value::Null), weights: a.clone() }, c, mode, cfg.limit_files)?;
        let kept = best_score.is_none_or(|b| d.score() >= b);
        eprintln!(
            "average of the last {averaged} epochs: dev score {:.3} (best single epoch {:.3}): {}",
            d.score(),
            best_score.unwrap_or(f64::NAN),
            if kept { "kept" } else { "not kept" }
        );
        average_report = serde_json::json!({ "epochs": averaged, "dev": d, "kept": kept });
        if kept {
            chosen = a;
            average_kept = true;
        }
    }
    arch.dt = dt;
    let metrics = serde_json::json!({
        "selection": "best dev streaming score (mean of clean and 10 dB recall at <= 2 false alarms/h; dev keyword clips, dev and calibration negatives) after dt reached its target; the weight average instead when weight_average.kept",
        "chosen_epoch": chosen_epoch,
        "weight_average": average_report,
        "training_audio": summary,
        "epochs": log,
    });
    let model = Model { card: card(cfg, dt, metrics), weights: chosen };
    let out = cfg.out.join("model.safetensors");
    model.save(&out)?;
    let which = if average_kept { format!("average of the last {averaged} epochs") } else { format!("epoch {chosen_epoch}") };
    eprintln!("saved {} ({which})", out.display());
    Ok(model)
}
