//! Evaluation on the real streaming pipeline. Clip accuracy (spiking and its non-spiking
//! twin side by side) lives here; the streaming benchmark (recall of keywords, false alarms
//! per hour on every kind of non-keyword audio, the detection-error trade-off) in
//! [`stream`] (scored in [`score`]), threshold calibration in [`calibrate`], the DET plot in [`det`].

pub mod calibrate;
pub mod compare;
pub mod det;
pub mod interval;
pub mod score;
pub mod stream;

use crate::audio::{audio_files_in, load_resampled};
use crate::augment::{centre_offset, place, CLIP};
use crate::dataset::{is_held_out_speaker, split_id};
use crate::detect::is_keyword;
use crate::energy::{ActivityMeter, EnergyReport};
use crate::model::Model;
use crate::network::Mode;
use crate::pipeline::Pipeline;
use crate::progress::bar as progress_bar;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Labelled clips of a folder laid out like Speech Commands.
#[derive(Debug, Default)]
pub struct LabelledClips {
    pub clips: Vec<(PathBuf, usize)>,
    /// Clips left out because their speaker was trained on.
    pub excluded: usize,
}

/// Reads `dir/<class>/*`. Every class folder must be one of the model's labels. With
/// `held_out_only`, clips of speakers (or, for names without one, files) that training
/// uses are left out, by the same rule training splits on.
pub fn labelled_clips(dir: &Path, labels: &[String], held_out_only: bool) -> Result<LabelledClips> {
    let mut out = LabelledClips::default();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let name = d.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let Some(label) = labels.iter().position(|l| *l == name) else {
            bail!("{}: class '{name}' is not one the model knows ({})", d.display(), labels.join(", "));
        };
        for f in audio_files_in(&d)? {
            if held_out_only && !is_held_out_speaker(&split_id(&f)) {
                out.excluded += 1;
                continue;
            }
            out.clips.push((f, label));
        }
    }
    if out.clips.is_empty() {
        bail!("no audio files in class sub-folders of {} (expected {}/<class>/*.wav|flac|ogg|mp3)", dir.display(), dir.display());
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    /// The streaming decision (see [`clip_decision`]).
    pub accuracy: f64,
    pub accuracy_dense: f64,
    /// The class with the highest smoothed probability at the clip's last frame (how models
    /// trained on 1 s clips were scored before streaming training).
    pub accuracy_end_of_clip: f64,
    pub accuracy_end_of_clip_dense: f64,
    pub classes: Vec<String>,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<u32>>,
    pub confusion_dense: Vec<Vec<u32>>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub precision_dense: Vec<f64>,
    pub recall_dense: Vec<f64>,
    pub clips: usize,
    pub excluded_trained_speakers: usize,
    /// Accuracy on each part of the split (train / dev / test speakers), when the clips
    /// come from more than one (`eval --all-speakers`): how well the model fits the
    /// speakers it was trained on against how well it carries to new ones.
    pub by_part: Vec<PartAccuracy>,
    pub energy: EnergyReport,
    pub energy_dense: EnergyReport,
}

fn precision_recall(conf: &[Vec<u32>]) -> (Vec<f64>, Vec<f64>) {
    let c = conf.len();
    let p = (0..c)
        .map(|j| {
            let col: u32 = (0..c).map(|i| conf[i][j]).sum();
            conf[j][j] as f64 / col.max(1) as f64
        })
        .collect();
    let r = (0..c).map(|i| conf[i][i] as f64 / conf[i].iter().sum::<u32>().max(1) as f64).collect();
    (p, r)
}

#[derive(Debug, Clone, Serialize)]
pub struct PartAccuracy {
    pub part: crate::corpus::Part,
    pub clips: usize,
    pub accuracy: f64,
    pub accuracy_dense: f64,
}

/// Silence before and after a clip when it is streamed on its own (clip accuracy and recall).
pub const PAD_BEFORE_S: f64 = 0.5;
pub const PAD_AFTER_S: f64 = 1.0;

/// `x` with zeros before and after, at `rate` Hz; returns the stream and the sample range
/// of the clip in it.
pub fn padded(x: &[f32], rate: u32) -> (Vec<f32>, std::ops::Range<usize>) {
    let (a, b) = ((PAD_BEFORE_S * rate as f64) as usize, (PAD_AFTER_S * rate as f64) as usize);
    let mut out = vec![0.0; a + x.len() + b];
    out[a..a + x.len()].copy_from_slice(x);
    (out, a..a + x.len())
}

/// The class a streaming detector reports for one clip heard on its own: the keyword whose
/// smoothed probability peaks highest from the clip's start to the end of the stream, if
/// that peak is above one half (more likely than everything else together); otherwise
/// whichever of `_unknown_` / `_silence_` was more probable on average over the clip.
/// `peaks` are each class's highest probability, `means` each class's mean over the clip.
pub fn clip_decision(labels: &[String], peaks: &[f32], means: &[f32]) -> usize {
    let mut best = usize::MAX;
    for (i, l) in labels.iter().enumerate() {
        if is_keyword(l) && (best == usize::MAX || peaks[i] > peaks[best]) {
            best = i;
        }
    }
    if best != usize::MAX && peaks[best] > 0.5 {
        return best;
    }
    let mut other = 0;
    let mut found = false;
    for (i, l) in labels.iter().enumerate() {
        if !is_keyword(l) && (!found || means[i] > means[other]) {
            other = i;
            found = true;
        }
    }
    if found {
        other
    } else {
        best.min(labels.len().saturating_sub(1))
    }
}

/// Clip classification accuracy with both the spiking network and its dense twin. Each clip
/// is centred in one second, then streamed from a fresh state with [`PAD_BEFORE_S`] of
/// silence before and [`PAD_AFTER_S`] after it.
pub fn evaluate_clips(model: &Model, set: &LabelledClips) -> Result<ClassReport> {
    // Parts as the model's own split has them (its dev speakers are never its training ones).
    let split = crate::corpus::Split::of(&model.card.provenance);
    let labels = &model.card.labels;
    let c = labels.len();
    let mut p = Pipeline::new(model);
    let fs = model.card.frontend.frame_seconds();
    let hop = model.card.frontend.hop_length;
    let mut meters = [ActivityMeter::new(&p.network, fs), ActivityMeter::new(&p.network, fs)];
    let mut confs = [vec![vec![0u32; c]; c], vec![vec![0u32; c]; c]];
    let mut ends = [vec![vec![0u32; c]; c], vec![vec![0u32; c]; c]];
    let pb = progress_bar(set.clips.len() as u64, "classifying clips");
    let rate = p.sample_rate();
    // part -> (clips, correct spiking, correct twin)
    let mut parts: std::collections::BTreeMap<crate::corpus::Part, (usize, [usize; 2])> = Default::default();
    for (path, label) in &set.clips {
        let audio = match load_resampled(path, rate) {
            Ok(a) => a,
            Err(e) => {
                pb.println(format!("skipping {}: {e}", path.display()));
                pb.inc(1);
                continue;
            }
        };
        let (x, span) = padded(&place(&audio, CLIP, centre_offset(&audio, CLIP)), rate);
        let (first, last_frame) = (span.start / hop, span.end / hop - 1);
        let tally = parts.entry(split.part_of(&split_id(path))).or_default();
        tally.0 += 1;
        for (k, mode) in [Mode::Spiking, Mode::Dense].into_iter().enumerate() {
            p.reset();
            p.network.set_mode(mode);
            let mut at_end = vec![0.0f32; c];
            let mut peaks = vec![0.0f32; c];
            let mut means = vec![0.0f32; c];
            let meter = &mut meters[k];
            p.push(&x, |r| {
                let f = r.index as usize;
                if f < first {
                    return;
                }
                meter.record(r.network);
                for (pk, &q) in peaks.iter_mut().zip(r.probs) {
                    *pk = pk.max(q);
                }
                if f <= last_frame {
                    for (m, &q) in means.iter_mut().zip(r.probs) {
                        *m += q;
                    }
                }
                if f == last_frame {
                    at_end.copy_from_slice(r.probs);
                }
            });
            let decided = clip_decision(labels, &peaks, &means);
            confs[k][*label][decided] += 1;
            tally.1[k] += usize::from(decided == *label);
            let pred = at_end.iter().enumerate().fold(0, |b, (i, &v)| if v > at_end[b] { i } else { b });
            ends[k][*label][pred] += 1;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let n: u32 = confs[0].iter().flatten().sum();
    let acc = |m: &Vec<Vec<u32>>| (0..c).map(|i| m[i][i]).sum::<u32>() as f64 / n.max(1) as f64;
    let (precision, recall) = precision_recall(&confs[0]);
    let (precision_dense, recall_dense) = precision_recall(&confs[1]);
    let by_part = if parts.len() > 1 {
        parts
            .into_iter()
            .map(|(part, (n, ok))| PartAccuracy { part, clips: n, accuracy: ok[0] as f64 / n.max(1) as f64, accuracy_dense: ok[1] as f64 / n.max(1) as f64 })
            .collect()
    } else {
        Vec::new()
    };
    Ok(ClassReport {
        accuracy: acc(&confs[0]),
        accuracy_dense: acc(&confs[1]),
        accuracy_end_of_clip: acc(&ends[0]),
        accuracy_end_of_clip_dense: acc(&ends[1]),
        classes: labels.clone(),
        confusion: confs[0].clone(),
        confusion_dense: confs[1].clone(),
        precision,
        recall,
        precision_dense,
        recall_dense,
        clips: n as usize,
        excluded_trained_speakers: set.excluded,
        by_part,
        energy: meters[0].report(),
        energy_dense: meters[1].report(),
    })
}

/// Per frame: the most probable keyword and its smoothed probability.
pub type Trace = Vec<(u16, f32)>;

/// The most probable keyword (`is_kw` marks keyword classes) and its probability.
pub fn best_keyword(probs: &[f32], is_kw: &[bool]) -> (u16, f32) {
    let (mut best, mut score) = (0u16, -1.0f32);
    for (i, &q) in probs.iter().enumerate() {
        if is_kw[i] && q > score {
            best = i as u16;
            score = q;
        }
    }
    (best, score)
}

pub fn keyword_mask(model: &Model) -> Vec<bool> {
    model.card.labels.iter().map(|l| is_keyword(l)).collect()
}

/// Detections (frame, class) of the detector's rule with one global threshold.
pub fn simulate(trace: &[(u16, f32)], threshold: f32, refractory_frames: usize) -> Vec<(usize, u16)> {
    simulate_with(trace, |_| threshold, refractory_frames)
}

/// The detector's rule with a threshold per class: the most probable keyword fires when it
/// reaches its own threshold, then nothing fires for the refractory time.
pub fn simulate_with(trace: &[(u16, f32)], threshold: impl Fn(u16) -> f32, refractory_frames: usize) -> Vec<(usize, u16)> {
    let mut events = Vec::new();
    let mut quiet_until = 0;
    for (i, &(c, p)) in trace.iter().enumerate() {
        if i + 1 >= quiet_until && p >= threshold(c) {
            events.push((i, c));
            quiet_until = i + 1 + refractory_frames;
        }
    }
    events
}
