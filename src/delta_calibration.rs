//! Choosing a trained model's delta-coding steps (`spikeword calibrate-delta`): the largest
//! steps, signal by signal, that keep clip accuracy within a tolerance of the exact
//! (uncoded) spiking network, measured on clips of speakers the test never uses, with the
//! real streaming network and the evaluator's clip decision.
//!
//! Each coded signal (layer 0's input, then each layer's memory read-out) gets a step in
//! proportion to its own spread: delta_i = s * rms_i, measured on the same clips, so every
//! signal is coded to the same relative precision. One scale s for all signals, swept over
//! a grid.
//!
//! A spiking network's decisions are noisy under any perturbation: a change anywhere flips a
//! few borderline clips either way, about a point on a thousand clips, more than the
//! tolerance. So every clip is streamed at several sub-frame offsets (each a different
//! feature sequence and spike pattern), accuracy is averaged over them, and the accuracies
//! along the grid are smoothed into a non-increasing curve (pool-adjacent-violators) before
//! the largest scale within the tolerance is chosen. A model trained with the codings in the
//! loop needs this only to check them.

use crate::audio::load_resampled;
use crate::augment::{centre_offset, place, CLIP};
use crate::corpus::{Part, Split};
use crate::dataset::split_id;
use crate::eval::{clip_decision, labelled_clips, padded};
use crate::model::Model;
use crate::network::{Mode, OpCount, MAX_DELTA, MIN_DELTA};
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;

pub struct DeltaOptions {
    /// A folder laid out like Speech Commands; its test speakers are never used.
    pub data: PathBuf,
    /// Use only the dev speakers (else every speaker outside the test part).
    pub dev_only: bool,
    /// Accuracy (points) the coded network may lose against the exact one.
    pub tolerance: f64,
    /// Scales tried (step = scale * the signal's rms), ascending.
    pub grid: Vec<f32>,
    /// Use at most this many clips (quick runs, tests).
    pub limit: Option<usize>,
    /// Sub-frame offsets at which every clip is streamed (at least 1).
    pub offsets: usize,
}

/// Default scales: a step of s times the signal's rms bounds its error by s/2 rms.
pub const DEFAULT_GRID: [f32; 9] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7];

#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Layer 0's input, then each layer's memory read-out (0: not coded).
    pub deltas: Vec<f32>,
    /// Clip accuracy (the evaluator's streaming decision), spiking.
    pub accuracy: f64,
    /// Share of clips decided as the exact (uncoded) network decides them.
    pub agreement: f64,
    /// Arithmetic per frame (adds + multiplies) against the dense twin's MACs.
    pub ops_per_frame: f64,
    pub dense_macs_per_frame: f64,
    pub memory_events_per_frame: Vec<f64>,
    pub input_events_per_frame: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeltaCalibration {
    pub clips: usize,
    pub exact: Trial,
    pub chosen: Trial,
    pub tolerance_points: f64,
    /// Streams per clip (sub-frame offsets).
    pub offsets: usize,
    /// Accuracy along the grid after smoothing (non-increasing), per trial after the exact.
    pub smoothed_accuracy: Vec<f64>,
    /// Root mean square of each coded signal over the clips (input, then each memory).
    pub signal_rms: Vec<f64>,
    /// The scale chosen (0: no scale kept the accuracy, nothing is coded).
    pub scale: f32,
    pub tried: Vec<Trial>,
}

/// One clip's features, streamed as the evaluator streams it, and where the clip is in it.
struct ClipFrames {
    frames: Vec<f32>,
    label: usize,
    first: usize,
    last: usize,
}

fn load_clips(model: &Model, opt: &DeltaOptions) -> Result<Vec<ClipFrames>> {
    let set = labelled_clips(&opt.data, &model.card.labels, false)?;
    let split = Split::of(&model.card.provenance);
    let wanted = |p: &PathBuf| match split.part_of(&split_id(p)) {
        Part::Test => false,
        Part::Dev => true,
        Part::Train | Part::Calib => !opt.dev_only,
    };
    let clips: Vec<&(PathBuf, usize)> = set.clips.iter().filter(|(p, _)| wanted(p)).take(opt.limit.unwrap_or(usize::MAX)).collect();
    if clips.is_empty() {
        bail!("no clips outside the test speakers in {}", opt.data.display());
    }
    let hop = model.card.frontend.hop_length;
    let rate = model.card.frontend.sample_rate;
    let offsets = opt.offsets.max(1);
    let jobs: Vec<(&(PathBuf, usize), usize)> = clips.iter().flat_map(|c| (0..offsets).map(move |k| (*c, k))).collect();
    let out: Vec<Option<ClipFrames>> = jobs
        .par_iter()
        .map_init(
            || model.frontend(),
            |fe, ((path, label), k)| {
                let audio = load_resampled(path, rate).ok()?;
                let (x, span) = padded(&place(&audio, CLIP, centre_offset(&audio, CLIP)), rate);
                // Offset k of `offsets` delays the stream by that share of a hop.
                let shift = k * hop / offsets;
                let mut shifted = vec![0.0f32; shift];
                shifted.extend_from_slice(&x);
                fe.reset();
                Some(ClipFrames { frames: fe.frames_of(&shifted), label: *label, first: (span.start + shift) / hop, last: (span.end + shift) / hop - 1 })
            },
        )
        .collect();
    Ok(out.into_iter().flatten().collect())
}

/// Pool-adjacent-violators: the non-increasing sequence closest (least squares) to `y`.
pub fn non_increasing(y: &[f64]) -> Vec<f64> {
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for &v in y {
        blocks.push((v, 1));
        while blocks.len() > 1 && blocks[blocks.len() - 2].0 < blocks[blocks.len() - 1].0 {
            let (b, nb) = blocks.pop().expect("two blocks");
            let (a, na) = blocks.pop().expect("two blocks");
            blocks.push(((a * na as f64 + b * nb as f64) / (na + nb) as f64, na + nb));
        }
    }
    blocks.into_iter().flat_map(|(v, n)| std::iter::repeat_n(v, n)).collect()
}

/// Clip accuracy, agreement with `reference` decisions (when given) and arithmetic of the
/// spiking network with the given steps; also returns every clip's decision.
fn trial(model: &Model, clips: &[ClipFrames], deltas: &[f32], reference: Option<&[usize]>) -> (Trial, Vec<usize>) {
    let labels = &model.card.labels;
    let n_layers = model.card.architecture.layers.len();
    let dim = model.card.architecture.input_dim;
    let per_clip: Vec<(usize, OpCount, Vec<f64>, f64, u64)> = clips
        .par_iter()
        .map_init(
            || {
                let mut net = model.network();
                net.set_mode(Mode::Spiking);
                net.set_deltas(deltas[0], &deltas[1..]);
                (net, model.detector())
            },
            |(net, det), clip| {
                net.reset();
                det.reset();
                let c = labels.len();
                let (mut peaks, mut means) = (vec![0.0f32; c], vec![0.0f32; c]);
                let (mut ops, mut mem, mut input, mut frames) = (OpCount::default(), vec![0.0f64; n_layers], 0.0f64, 0u64);
                for (f, x) in clip.frames.chunks_exact(dim).enumerate() {
                    det.push(net.step(x));
                    if f < clip.first {
                        continue;
                    }
                    let st = net.stats();
                    ops.add(&st.total());
                    for (m, &e) in mem.iter_mut().zip(&st.memory_events) {
                        *m += e as f64;
                    }
                    input += st.input_events as f64;
                    frames += 1;
                    for (p, &q) in peaks.iter_mut().zip(det.probabilities()) {
                        *p = p.max(q);
                    }
                    if f <= clip.last {
                        for (m, &q) in means.iter_mut().zip(det.probabilities()) {
                            *m += q;
                        }
                    }
                }
                (clip_decision(labels, &peaks, &means), ops, mem, input, frames)
            },
        )
        .collect();
    let mut ops = OpCount::default();
    let (mut mem, mut input, mut frames, mut correct, mut agree) = (vec![0.0f64; n_layers], 0.0, 0u64, 0usize, 0usize);
    for (k, (decision, o, m, i, f)) in per_clip.iter().enumerate() {
        correct += (*decision == clips[k].label) as usize;
        agree += reference.is_none_or(|r| r[k] == *decision) as usize;
        ops.add(o);
        for (a, b) in mem.iter_mut().zip(m) {
            *a += b;
        }
        input += i;
        frames += f;
    }
    let f = frames.max(1) as f64;
    let n = clips.len().max(1) as f64;
    let trial = Trial {
        deltas: deltas.to_vec(),
        accuracy: correct as f64 / n,
        agreement: agree as f64 / n,
        ops_per_frame: ops.ops() as f64 / f,
        dense_macs_per_frame: ops.dense_macs as f64 / f,
        memory_events_per_frame: mem.iter().map(|m| m / f).collect(),
        input_events_per_frame: input / f,
    };
    (trial, per_clip.into_iter().map(|p| p.0).collect())
}

/// Evaluates fixed steps (no search) on the calibration clips, with the exact network for
/// comparison.
pub fn measure(model: &Model, opt: &DeltaOptions, deltas: &[f32]) -> Result<DeltaCalibration> {
    let clips = load_clips(model, opt)?;
    let n = 1 + model.card.architecture.layers.len();
    let (exact, reference) = trial(model, &clips, &vec![0.0; n], None);
    let (chosen, _) = trial(model, &clips, deltas, Some(&reference));
    let signal_rms = signal_rms(model, &clips);
    Ok(DeltaCalibration {
        clips: clips.len(),
        tried: vec![exact.clone(), chosen.clone()],
        exact,
        chosen,
        tolerance_points: opt.tolerance,
        offsets: opt.offsets.max(1),
        smoothed_accuracy: Vec::new(),
        signal_rms,
        scale: 0.0,
    })
}

/// Root mean square of each coded signal (layer 0's normalised input, each layer's memory)
/// over the clips, from the exact spiking network.
fn signal_rms(model: &Model, clips: &[ClipFrames]) -> Vec<f64> {
    let n_layers = model.card.architecture.layers.len();
    let dim = model.card.architecture.input_dim;
    let sums: Vec<(Vec<f64>, Vec<u64>)> = clips
        .par_iter()
        .map_init(
            || model.network(),
            |net, clip| {
                net.reset();
                let (mut sq, mut n) = (vec![0.0f64; 1 + n_layers], vec![0u64; 1 + n_layers]);
                for (f, x) in clip.frames.chunks_exact(dim).enumerate() {
                    net.step(x);
                    if f < clip.first {
                        continue;
                    }
                    sq[0] += net.input().iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
                    n[0] += dim as u64;
                    for l in 0..n_layers {
                        let m = net.memory(l).state();
                        sq[1 + l] += m.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
                        n[1 + l] += m.len() as u64;
                    }
                }
                (sq, n)
            },
        )
        .collect();
    (0..=n_layers)
        .map(|i| {
            let (sq, n) = sums.iter().fold((0.0, 0u64), |(a, b), (s, c)| (a + s[i], b + c[i]));
            (sq / n.max(1) as f64).sqrt()
        })
        .collect()
}

/// Rounds a step to two significant digits (readable model cards).
fn round_step(d: f64) -> f32 {
    if d <= 0.0 {
        return 0.0;
    }
    let p = 10f64.powf(d.log10().floor() - 1.0);
    ((d / p).round() * p) as f32
}

/// The sweep (see the module documentation). `progress` sees every trial.
pub fn calibrate(model: &Model, opt: &DeltaOptions, progress: &dyn Fn(&Trial)) -> Result<DeltaCalibration> {
    if opt.grid.is_empty() || opt.grid.windows(2).any(|w| w[0] >= w[1]) || opt.grid[0] <= 0.0 {
        bail!("the grid of scales must be positive and ascending");
    }
    let clips = load_clips(model, opt)?;
    let n = 1 + model.card.architecture.layers.len();
    let rms = signal_rms(model, &clips);
    let (exact, reference) = trial(model, &clips, &vec![0.0; n], None);
    progress(&exact);
    let floor = exact.accuracy - opt.tolerance / 100.0;
    let mut tried = vec![exact.clone()];
    let mut run = Vec::new();
    for &s in &opt.grid {
        let deltas: Vec<f32> = rms.iter().map(|&r| round_step(s as f64 * r).clamp(MIN_DELTA, MAX_DELTA)).collect();
        let (t, _) = trial(model, &clips, &deltas, Some(&reference));
        progress(&t);
        tried.push(t.clone());
        let below = t.accuracy < floor - opt.tolerance / 100.0;
        run.push((s, t));
        // Well below the tolerance: larger scales only lose more.
        if below {
            break;
        }
    }
    // The exact network leads the curve: coding never helps beyond noise.
    let mut curve = vec![exact.accuracy];
    curve.extend(run.iter().map(|(_, t)| t.accuracy));
    let smoothed = non_increasing(&curve);
    let (mut chosen, mut scale) = (exact.clone(), 0.0);
    for (i, (s, t)) in run.iter().enumerate() {
        if smoothed[i + 1] >= floor {
            (chosen, scale) = (t.clone(), *s);
        }
    }
    Ok(DeltaCalibration {
        clips: clips.len(),
        exact,
        chosen,
        tolerance_points: opt.tolerance,
        offsets: opt.offsets.max(1),
        smoothed_accuracy: smoothed[1..].to_vec(),
        signal_rms: rms,
        scale,
        tried,
    })
}
