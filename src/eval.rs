//! Evaluation on the real streaming pipeline: clip accuracy (spiking and its non-spiking
//! twin side by side), false alarms per hour on continuous speech, false rejects of
//! keywords embedded in noise at given SNRs, the detection-error trade-off, and energy.

use crate::audio::{audio_files_in, load_resampled};
use crate::augment::{centre_offset, place, rms, NoiseBank, CLIP};
use crate::dataset::{is_held_out_file, is_held_out_speaker, split_id};
use crate::detect::is_keyword;
use crate::energy::{ActivityMeter, EnergyReport};
use crate::model::Model;
use crate::network::Mode;
use crate::pipeline::Pipeline;
use anyhow::{bail, Context, Result};
use crate::progress::bar as progress_bar;
use rand::SeedableRng;
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
    pub accuracy: f64,
    pub accuracy_dense: f64,
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

/// Clip classification accuracy with both the spiking network and its dense twin.
pub fn evaluate_clips(model: &Model, set: &LabelledClips) -> Result<ClassReport> {
    let labels = &model.card.labels;
    let c = labels.len();
    let mut p = Pipeline::new(model);
    let fs = model.card.frontend.frame_seconds();
    let mut meters = [ActivityMeter::new(&p.network, fs), ActivityMeter::new(&p.network, fs)];
    let mut confs = [vec![vec![0u32; c]; c], vec![vec![0u32; c]; c]];
    let pb = progress_bar(set.clips.len() as u64, "classifying clips");
    let rate = p.sample_rate();
    for (path, label) in &set.clips {
        let audio = match load_resampled(path, rate) {
            Ok(a) => a,
            Err(e) => {
                pb.println(format!("skipping {}: {e}", path.display()));
                pb.inc(1);
                continue;
            }
        };
        let x = place(&audio, CLIP, centre_offset(&audio, CLIP));
        for (k, mode) in [Mode::Spiking, Mode::Dense].into_iter().enumerate() {
            p.reset();
            p.network.set_mode(mode);
            let mut last = vec![0.0f32; c];
            let meter = &mut meters[k];
            p.push(&x, |r| {
                meter.record(r.network);
                last.copy_from_slice(r.probs);
            });
            let pred = last.iter().enumerate().fold(0, |b, (i, &v)| if v > last[b] { i } else { b });
            confs[k][*label][pred] += 1;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let n: u32 = confs[0].iter().flatten().sum();
    let acc = |m: &Vec<Vec<u32>>| (0..c).map(|i| m[i][i]).sum::<u32>() as f64 / n.max(1) as f64;
    let (precision, recall) = precision_recall(&confs[0]);
    let (precision_dense, recall_dense) = precision_recall(&confs[1]);
    Ok(ClassReport {
        accuracy: acc(&confs[0]),
        accuracy_dense: acc(&confs[1]),
        classes: labels.clone(),
        confusion: confs[0].clone(),
        confusion_dense: confs[1].clone(),
        precision,
        recall,
        precision_dense,
        recall_dense,
        clips: n as usize,
        excluded_trained_speakers: set.excluded,
        energy: meters[0].report(),
        energy_dense: meters[1].report(),
    })
}

/// Per frame: the most probable keyword and its smoothed probability.
type Trace = Vec<(u16, f32)>;

/// The most probable keyword (`is_kw` marks keyword classes) and its probability.
fn best_keyword(probs: &[f32], is_kw: &[bool]) -> (u16, f32) {
    let (mut best, mut score) = (0u16, -1.0f32);
    for (i, &q) in probs.iter().enumerate() {
        if is_kw[i] && q > score {
            best = i as u16;
            score = q;
        }
    }
    (best, score)
}

fn keyword_mask(model: &Model) -> Vec<bool> {
    model.card.labels.iter().map(|l| is_keyword(l)).collect()
}

fn keyword_trace(p: &mut Pipeline, x: &[f32], is_kw: &[bool], out: &mut Trace) {
    p.push(x, |r| out.push(best_keyword(r.probs, is_kw)));
}

/// Detections (frame, class) of the detector's rule with one global threshold.
pub fn simulate(trace: &[(u16, f32)], threshold: f32, refractory_frames: usize) -> Vec<(usize, u16)> {
    let mut events = Vec::new();
    let mut quiet_until = 0;
    for (i, &(c, p)) in trace.iter().enumerate() {
        if i + 1 >= quiet_until && p >= threshold {
            events.push((i, c));
            quiet_until = i + 1 + refractory_frames;
        }
    }
    events
}

#[derive(Debug, Clone, Serialize)]
pub struct DetPoint {
    pub threshold: f32,
    pub false_alarms_per_hour: f64,
    /// False-reject rate per SNR, in the order of `snr_db`.
    pub false_reject_rate: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnrResult {
    pub snr_db: f32,
    pub trials: usize,
    pub false_rejects: usize,
    pub false_reject_rate: f64,
    pub wrong_keyword: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub negatives: String,
    pub negative_files: usize,
    pub hours: f64,
    pub false_alarms: usize,
    pub false_alarms_per_hour: f64,
    /// False-reject rate at the first SNR (at the model's default thresholds).
    pub false_reject_rate: Option<f64>,
    pub default_threshold: f32,
    pub positives: Vec<SnrResult>,
    pub det: Vec<DetPoint>,
    pub energy: EnergyReport,
}

pub struct StreamOptions {
    pub negatives: PathBuf,
    pub positives: Option<PathBuf>,
    pub snr_db: Vec<f32>,
    pub noise: PathBuf,
    /// Which negative files: those the shipped model did not train on, those it did
    /// (for choosing thresholds without touching the held-out half), or all.
    pub files: FileSplit,
    pub threshold: Option<f32>,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileSplit {
    HeldOut,
    Trained,
    All,
}

/// Recursively lists audio files of the chosen split (by name, as training splits them).
fn negative_files(dir: &Path, split: FileSplit) -> Result<Vec<PathBuf>> {
    let files: Vec<PathBuf> = crate::dataset::audio_files_recursive(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .into_iter()
        .filter(|f| {
            let held = f.file_name().and_then(|n| n.to_str()).is_some_and(is_held_out_file);
            match split {
                FileSplit::HeldOut => held,
                FileSplit::Trained => !held,
                FileSplit::All => true,
            }
        })
        .collect();
    if files.is_empty() {
        bail!("no audio files in {}", dir.display());
    }
    Ok(files)
}

pub fn evaluate_stream(model: &Model, opt: &StreamOptions) -> Result<StreamReport> {
    let mut p = Pipeline::new(model);
    if let Some(t) = opt.threshold {
        p.detector.set_threshold(t);
    }
    let rate = p.sample_rate();
    let fs = model.card.frontend.frame_seconds();
    let refractory = (model.card.detection.refractory_s as f64 / fs).round() as usize;
    let default_threshold = opt.threshold.unwrap_or(model.card.detection.default_threshold);
    let is_kw = keyword_mask(model);
    // Negatives: one long stream, never reset.
    let files = negative_files(&opt.negatives, opt.files)?;
    let pb = progress_bar(files.len() as u64, "negatives");
    let mut neg_trace: Trace = Vec::new();
    let mut false_alarms = 0;
    let mut meter = ActivityMeter::new(&p.network, fs);
    let mut samples = 0usize;
    for f in &files {
        let x = load_resampled(f, rate).with_context(|| format!("negative file {}", f.display()))?;
        samples += x.len();
        p.push(&x, |r| {
            meter.record(r.network);
            false_alarms += r.detection.is_some() as usize;
            neg_trace.push(best_keyword(r.probs, &is_kw));
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let hours = samples as f64 / rate as f64 / 3600.0;
    // Positives in noise.
    let mut positives = Vec::new();
    let mut pos_traces: Vec<Vec<(Trace, usize, usize)>> = Vec::new();
    let (pre, post) = ((1.0 * rate as f64) as usize, (1.0 * rate as f64) as usize);
    let window_end_extra = (0.5 / fs) as usize;
    if let Some(pos_dir) = &opt.positives {
        let set = labelled_clips(pos_dir, &model.card.labels, true)?;
        let keyword_clips: Vec<&(PathBuf, usize)> = set.clips.iter().filter(|(_, l)| is_keyword(&model.card.labels[*l])).collect();
        if keyword_clips.is_empty() {
            bail!("no keyword clips in {}", pos_dir.display());
        }
        let noise_files = audio_files_in(&opt.noise).with_context(|| format!("noise folder {}", opt.noise.display()))?;
        let noise = NoiseBank { files: noise_files.iter().filter_map(|f| load_resampled(f, rate).ok()).collect() };
        if noise.files.is_empty() {
            bail!("no noise recordings in {}", opt.noise.display());
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(opt.seed);
        let pb = progress_bar((keyword_clips.len() * opt.snr_db.len()) as u64, "positives in noise");
        for &snr in &opt.snr_db {
            let mut traces = Vec::new();
            let (mut rejects, mut wrong) = (0, 0);
            for (path, label) in &keyword_clips {
                let clip = load_resampled(path, rate).with_context(|| format!("positive clip {}", path.display()))?;
                let mut x = noise.crop(&mut rng, pre + clip.len() + post, true);
                let g = rms(&clip) / rms(&x).max(1e-9) * 10f32.powf(-snr / 20.0);
                x.iter_mut().for_each(|v| *v *= g);
                for (d, s) in x[pre..].iter_mut().zip(&clip) {
                    *d += s;
                }
                // Keep the mix at a realistic level.
                let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                if peak > 0.99 {
                    x.iter_mut().for_each(|v| *v *= 0.99 / peak);
                }
                p.reset();
                let mut t = Vec::new();
                // The real detector (per-keyword thresholds and all) decides at the defaults;
                // the trace serves the threshold sweep.
                let mut ev: Vec<(usize, u16)> = Vec::new();
                let labels = &model.card.labels;
                p.push(&x, |r| {
                    t.push(best_keyword(r.probs, &is_kw));
                    if let Some(d) = r.detection {
                        if let Some(c) = labels.iter().position(|l| *l == d.keyword) {
                            ev.push((r.index as usize, c as u16));
                        }
                    }
                });
                let (start, end) = (pre / model.card.frontend.hop_length, (pre + clip.len()) / model.card.frontend.hop_length + window_end_extra);
                let in_window: Vec<&(usize, u16)> = ev.iter().filter(|(f, _)| *f >= start && *f <= end).collect();
                if !in_window.iter().any(|(_, c)| *c as usize == *label) {
                    rejects += 1;
                }
                wrong += in_window.iter().filter(|(_, c)| *c as usize != *label).count();
                traces.push((t, *label, end));
                pb.inc(1);
            }
            positives.push(SnrResult {
                snr_db: snr,
                trials: traces.len(),
                false_rejects: rejects,
                false_reject_rate: rejects as f64 / traces.len().max(1) as f64,
                wrong_keyword: wrong,
            });
            pos_traces.push(traces);
        }
        pb.finish_and_clear();
    }
    // Detection-error trade-off: sweep one global threshold.
    let start = pre / model.card.frontend.hop_length;
    let det = (1..=99)
        .map(|k| k as f32 / 100.0)
        .map(|th| {
            let fa = simulate(&neg_trace, th, refractory).len() as f64 / hours.max(1e-9);
            let frr = pos_traces
                .iter()
                .map(|traces| {
                    let misses = traces
                        .iter()
                        .filter(|(t, label, end)| {
                            !simulate(t, th, refractory).iter().any(|(f, c)| *f >= start && *f <= *end && *c as usize == *label)
                        })
                        .count();
                    misses as f64 / traces.len().max(1) as f64
                })
                .collect();
            DetPoint { threshold: th, false_alarms_per_hour: fa, false_reject_rate: frr }
        })
        .collect();
    Ok(StreamReport {
        negatives: opt.negatives.display().to_string(),
        negative_files: files.len(),
        hours,
        false_alarms,
        false_alarms_per_hour: false_alarms as f64 / hours.max(1e-9),
        false_reject_rate: positives.first().map(|p| p.false_reject_rate),
        default_threshold,
        positives,
        det,
        energy: meter.report(),
    })
}

/// Thresholds tried by calibration: fine steps near 1, where a confident classifier lives.
pub fn threshold_grid() -> Vec<f32> {
    let mut g: Vec<f32> = (50..99).map(|k| k as f32 / 100.0).collect();
    g.extend((990..1000).map(|k| k as f32 / 1000.0));
    g.extend([0.9995, 0.9998, 0.9999]);
    g
}

/// Per-keyword thresholds: for each keyword the lowest threshold at which it alone raises at
/// most `per_keyword_per_hour` false alarms on the negatives. Run it on files the model was
/// trained on (`FileSplit::Trained`) so the held-out half stays a fair test.
pub fn calibrate_thresholds(
    model: &Model,
    negatives: &Path,
    files: FileSplit,
    per_keyword_per_hour: f64,
) -> Result<(std::collections::BTreeMap<String, f32>, f64)> {
    let mut p = Pipeline::new(model);
    let rate = p.sample_rate();
    let fs = model.card.frontend.frame_seconds();
    let refractory = (model.card.detection.refractory_s as f64 / fs).round() as usize;
    let files = negative_files(negatives, files)?;
    let pb = progress_bar(files.len() as u64, "negatives");
    let is_kw = keyword_mask(model);
    let mut trace: Trace = Vec::new();
    let mut samples = 0;
    for f in &files {
        let x = load_resampled(f, rate).with_context(|| format!("negative file {}", f.display()))?;
        samples += x.len();
        keyword_trace(&mut p, &x, &is_kw, &mut trace);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let hours = samples as f64 / rate as f64 / 3600.0;
    let grid = threshold_grid();
    let mut out = std::collections::BTreeMap::new();
    for (k, label) in model.card.labels.iter().enumerate() {
        if !is_keyword(label) {
            continue;
        }
        let own: Trace = trace.iter().map(|&(c, q)| if c as usize == k { (c, q) } else { (c, 0.0) }).collect();
        let th = grid
            .iter()
            .copied()
            .find(|&th| simulate(&own, th, refractory).len() as f64 / hours <= per_keyword_per_hour)
            .unwrap_or(1.0);
        out.insert(label.clone(), th);
    }
    Ok((out, hours))
}

/// Draws the detection-error trade-off: false-reject rate against false alarms per hour,
/// one curve per SNR, the default threshold marked.
pub fn plot_det(report: &StreamReport, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    use plotters::style::{register_font, FontStyle};
    let _ = register_font("sans-serif", FontStyle::Normal, include_bytes!("../assets/fonts/DejaVuSans.ttf"));
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // Log scale: false alarms span orders of magnitude. Zero is drawn at the floor.
    let floor = 0.5f64;
    let max_fa = report.det.iter().map(|d| d.false_alarms_per_hour).fold(10.0f64, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("Detection-error trade-off (threshold sweep)", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((floor..max_fa).log_scale(), 0f64..100f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!("false alarms per hour, log scale ({:.2} h of non-keyword speech; 0 drawn at {floor})", report.hours))
        .y_desc("false rejects (%)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    let colours = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40), RGBColor(148, 103, 189)];
    for (k, snr) in report.positives.iter().enumerate() {
        let c = colours[k % colours.len()];
        let pts: Vec<(f64, f64)> = report.det.iter().map(|d| (d.false_alarms_per_hour.clamp(floor, max_fa), 100.0 * d.false_reject_rate[k])).collect();
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("{} dB SNR", snr.snr_db))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if let Some(d) = report.det.iter().min_by(|a, b| (a.threshold - report.default_threshold).abs().total_cmp(&(b.threshold - report.default_threshold).abs())) {
            chart
                .draw_series(std::iter::once(Circle::new((d.false_alarms_per_hour.clamp(floor, max_fa), 100.0 * d.false_reject_rate[k]), 5, c.filled())))
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
