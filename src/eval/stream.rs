//! The streaming benchmark a keyword spotter is judged by, on one part of the corpus
//! (`Test` for every reported figure, `Dev` for choosing thresholds and checkpoints):
//! - recall on clean keyword clips, each streamed on its own with silence around it;
//! - recall of the same clips in background noise at given SNRs;
//! - false alarms per hour over every held-out negative recording, streamed source by
//!   source as long recordings (continuous speech and isolated non-keyword words);
//! - the detection-error trade-off of one global threshold, and recall at 0.5, 1 and 2
//!   false alarms per hour.
//!
//! Everything runs through [`Pipeline`], the same path `listen` and the app use; per-frame
//! traces of the most probable keyword let one pass serve every threshold ([`super::score`]).

use super::score::{score, ModeResult};
use super::{best_keyword, keyword_mask, padded, Trace};
use crate::audio::load_resampled;
use crate::augment::{active_span, rms};
use crate::corpus::{noise_span, Corpus, NegativeKind, Part};
use crate::detect::is_keyword;
use crate::energy::{ActivityMeter, EnergyReport};
use crate::model::Model;
use crate::network::Mode;
use crate::pipeline::Pipeline;
use crate::progress::bar as progress_bar;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// A detection of a keyword this long after the end of its aligned segment inside a sentence
/// still counts as hearing it (the detector fires after the word ends).
pub const SEGMENT_GRACE_S: f32 = 1.0;

#[derive(Debug, Clone)]
pub struct BenchmarkOptions {
    pub part: Part,
    /// SNRs (dB) for the noisy-recall figures.
    pub snr_db: Vec<f32>,
    /// One threshold for every keyword instead of the model's.
    pub threshold: Option<f32>,
    /// Also run the non-spiking twin.
    pub dense_twin: bool,
    /// Use at most this many clips / files per source (quick runs and tests).
    pub limit: Option<usize>,
    pub seed: u64,
    /// Gain applied to every recording (dB; clipped at full scale): level robustness.
    pub gain_db: f32,
    /// Stream the clips back to back too, resetting before each clip what this says (nothing,
    /// as in use; other resets tell whose state costs recall there, the front end's or the
    /// network's). None where only the fresh figures are read: checkpoint scores, calibration.
    pub back_to_back: Option<BackToBackReset>,
    /// The level at which a keyword restarts the front end's smoothed energy one refractory
    /// time later ([`crate::detect::DetectionConfig::reseed_level`]; 0: never) instead of the
    /// model file's.
    pub reseed_level: Option<f32>,
}

/// Part of the pipeline the back-to-back stream resets before each clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackToBackReset {
    /// Nothing: one running stream, as in use.
    None,
    /// The front end only (PCEN's smoothed energy, the window); the network keeps running.
    FrontEnd,
    /// The network only (memories, voltages); the front end keeps running.
    Network,
    /// Everything: each clip scored as in its own fresh trial.
    All,
}

impl BackToBackReset {
    /// How the report names the stream this reset gives.
    pub fn describe(self) -> &'static str {
        match self {
            BackToBackReset::None => "never reset",
            BackToBackReset::FrontEnd => "only the front end reset before each clip",
            BackToBackReset::Network => "only the network reset before each clip",
            BackToBackReset::All => "everything reset before each clip",
        }
    }
}

impl Default for BenchmarkOptions {
    fn default() -> Self {
        Self {
            part: Part::Test,
            snr_db: vec![10.0],
            threshold: None,
            dense_twin: true,
            limit: None,
            seed: 7,
            gain_db: 0.0,
            back_to_back: Some(BackToBackReset::None),
            reseed_level: None,
        }
    }
}

/// One positive trial: its trace and where its keyword may be detected.
#[derive(Debug, Clone)]
pub struct PositiveTrace {
    pub label: u16,
    pub trace: Trace,
    /// Frames in which a detection of `label` counts (clip start to stream end).
    pub first: usize,
    pub last: usize,
    /// The keyword clip the trial plays, and the RMS level of its active span (dBFS), the
    /// same for its clean and noisy trials: to say which clips are missed and why.
    pub file: std::path::PathBuf,
    pub level_dbfs: f32,
}

/// One negative stream: its trace, and for each frame the keyword that is really being said
/// there (speechocean762 sentences that contain one), if any.
#[derive(Debug, Clone)]
pub struct NegativeTrace {
    pub source: &'static str,
    pub kind: NegativeKind,
    pub files: usize,
    pub seconds: f64,
    pub trace: Trace,
    pub excused: Vec<Option<u16>>,
    /// (frame range, label) of the keywords said inside sentences, for in-sentence recall.
    pub said: Vec<(usize, usize, u16)>,
    /// (first frame, file) of each file in the stream, in order: where a false alarm was.
    pub file_starts: Vec<(usize, std::path::PathBuf)>,
}

impl NegativeTrace {
    /// Appends another stream of the same source, as if its files had followed this one's.
    pub fn append(&mut self, o: NegativeTrace) {
        let at = self.trace.len();
        self.files += o.files;
        self.seconds += o.seconds;
        self.trace.extend(o.trace);
        self.excused.extend(o.excused);
        self.said.extend(o.said.into_iter().map(|(a, b, l)| (a + at, b + at, l)));
        self.file_starts.extend(o.file_starts.into_iter().map(|(f, p)| (f + at, p)));
    }
}

/// Adds the calibration part's negatives to dev traces. The calibration audio is never
/// trained on either, so dev's false-alarm side (and the selection score, recall at <= 2
/// false alarms per hour) rests on twice the audio and turns less on a single false alarm.
/// Streams of the same source are joined, so each source is one row of the report.
pub fn add_calibration_negatives(model: &Model, corpus: &Corpus, mode: Mode, opt: &BenchmarkOptions, traces: &mut Traces) -> Result<()> {
    let calib = BenchmarkOptions { part: Part::Calib, snr_db: vec![], dense_twin: false, ..opt.clone() };
    for n in collect_traces(model, corpus, mode, &calib)?.negatives {
        match traces.negatives.iter_mut().find(|m| m.source == n.source && m.kind == n.kind) {
            Some(m) => m.append(n),
            None => traces.negatives.push(n),
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    pub part: Part,
    /// The split the parts were assigned by (the model's own, for dev).
    pub split: crate::corpus::Split,
    pub thresholds: BTreeMap<String, f32>,
    pub snr_db: Vec<f32>,
    pub positive_source: String,
    /// What the back-to-back stream reset before each clip; `None` when it did not run.
    pub back_to_back_reset: Option<BackToBackReset>,
    /// The level at which a keyword restarted the front end's smoothed energy in these
    /// streams (0: never).
    pub reseed_level: f32,
    pub results: Vec<ModeResult>,
}

/// Everything a mode's traces need to be scored at any thresholds.
pub struct Traces {
    pub clean: Vec<PositiveTrace>,
    /// The clean clips in one stream, shuffled, reset between clips only as
    /// `BenchmarkOptions::back_to_back` says; `said` holds each clip's frames (clip start to
    /// the end of the silence after it). None without positives or without that option.
    pub back_to_back: Option<NegativeTrace>,
    /// The same stream in each trial's noise, in the order of `snr_db` (empty without
    /// positives).
    pub back_to_back_noisy: Vec<NegativeTrace>,
    pub noisy: Vec<Vec<PositiveTrace>>,
    pub negatives: Vec<NegativeTrace>,
    pub energy: EnergyReport,
}

fn run_trace(p: &mut Pipeline, x: &[f32], is_kw: &[bool], mut each: impl FnMut(&crate::pipeline::FrameReport<'_>)) -> Trace {
    let mut t = Vec::with_capacity(x.len() / 160 + 1);
    p.push(x, |r| {
        each(&r);
        t.push(best_keyword(r.probs, is_kw));
    });
    t
}

/// Decodes a recording at `rate` with the benchmark's gain applied.
fn load_with_gain(path: &std::path::Path, rate: u32, gain_db: f32) -> Result<Vec<f32>, crate::audio::AudioError> {
    let mut x = load_resampled(path, rate)?;
    if gain_db != 0.0 {
        let g = 10f32.powf(gain_db / 20.0);
        x.iter_mut().for_each(|v| *v = (*v * g).clamp(-1.0, 1.0));
    }
    Ok(x)
}

/// RMS level of a clip's active span: what an SNR is measured against.
fn speech_rms(clip: &[f32]) -> f32 {
    let (a, b) = active_span(clip);
    rms(&clip[a..b.max(a + 1).min(clip.len())])
}

/// Clip `i`'s padded audio `x` in noise at `snr` dB against its speech: a stretch of one
/// noise recording, drawn from the seed, the clip's index and the SNR alone, so the fresh
/// trial and the back-to-back stream hear the same noise.
fn in_noise(x: &[f32], speech_rms: f32, noise: &[Vec<f32>], snr: f32, seed: u64, i: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ snr.to_bits() as u64);
    let n = &noise[rng.gen_range(0..noise.len())];
    let start = if n.len() > x.len() { rng.gen_range(0..n.len() - x.len()) } else { 0 };
    let bed: Vec<f32> = (0..x.len()).map(|k| n[(start + k) % n.len()]).collect();
    // SNR against the speech itself (its active span), not the padded clip.
    let g = speech_rms / rms(&bed).max(1e-9) * 10f32.powf(-snr / 20.0);
    let mut y: Vec<f32> = x.iter().zip(&bed).map(|(s, v)| s + g * v).collect();
    let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak > 0.99 {
        y.iter_mut().for_each(|v| *v *= 0.99 / peak);
    }
    y
}

/// One keyword clip's trials, with its padded audio and speech level kept for the
/// back-to-back streams.
struct ClipTrials {
    padded: Vec<f32>,
    speech_rms: f32,
    clean: PositiveTrace,
    noisy: Vec<PositiveTrace>,
}

/// Loads the test (or dev) audio once and streams it through the model in `mode`.
pub fn collect_traces(model: &Model, corpus: &Corpus, mode: Mode, opt: &BenchmarkOptions) -> Result<Traces> {
    let rate = model.card.frontend.sample_rate;
    let hop = model.card.frontend.hop_length;
    let is_kw = keyword_mask(model);
    let limit = opt.limit.unwrap_or(usize::MAX);
    let positives: Vec<(&std::path::Path, u16)> =
        corpus.keywords_in(opt.part, Some("speech_commands_v2")).take(limit).map(|c| (c.path.as_path(), c.label as u16)).collect();
    // The calibration part is negatives only.
    if positives.is_empty() && opt.part != Part::Calib {
        bail!("no keyword clips in the {:?} part", opt.part);
    }
    // Decoded only when positives are mixed into it (calibration and the checkpoint score's
    // calibration negatives ask for no SNR).
    let wanted = if opt.snr_db.is_empty() { &[][..] } else { &corpus.noise[..] };
    let noise: Vec<Vec<f32>> = wanted
        .iter()
        .filter_map(|f| load_resampled(f, rate).ok())
        .map(|x| {
            let (a, b) = noise_span(opt.part, x.len());
            x[a..b].to_vec()
        })
        .filter(|x| !x.is_empty())
        .collect();
    if noise.is_empty() && !opt.snr_db.is_empty() {
        bail!("no noise recordings to mix positives into");
    }
    let pb = progress_bar(positives.len() as u64, &format!("{mode:?}: keyword clips"));
    let new_pipeline = || {
        let mut p = Pipeline::new(model);
        p.network.set_mode(mode);
        if let Some(t) = opt.threshold {
            p.detector.set_threshold(t);
        }
        if let Some(level) = opt.reseed_level {
            p.detector.set_reseed_level(level);
        }
        p
    };
    // Positives: clean and at each SNR, one fresh stream per trial.
    let per_clip: Vec<Result<ClipTrials>> = positives
        .par_iter()
        .enumerate()
        .map_init(new_pipeline, |p, (i, &(path, label))| {
            let clip = load_with_gain(path, rate, opt.gain_db)?;
            let (x, span) = padded(&clip, rate);
            let (first, last) = (span.start / hop, x.len() / hop);
            let speech_rms = speech_rms(&clip);
            let trial = |trace| PositiveTrace { label, trace, first, last, file: path.to_path_buf(), level_dbfs: 20.0 * speech_rms.max(1e-9).log10() };
            p.reset();
            let clean = trial(run_trace(p, &x, &is_kw, |_| {}));
            let mut noisy = Vec::new();
            for &snr in &opt.snr_db {
                let y = in_noise(&x, speech_rms, &noise, snr, opt.seed, i);
                p.reset();
                noisy.push(trial(run_trace(p, &y, &is_kw, |_| {})));
            }
            pb.inc(1);
            // Kept only for the back-to-back streams (about 117 MB over the test part).
            let padded = if opt.back_to_back.is_some() { x } else { Vec::new() };
            Ok(ClipTrials { padded, speech_rms, clean, noisy })
        })
        .collect();
    pb.finish_and_clear();
    let mut clean = Vec::new();
    let mut clips = Vec::new();
    let mut noisy: Vec<Vec<PositiveTrace>> = vec![Vec::new(); opt.snr_db.len()];
    for r in per_clip {
        let ClipTrials { padded, speech_rms, clean: c, noisy: n } = r?;
        clips.push((padded, speech_rms));
        clean.push(c);
        for (k, t) in n.into_iter().enumerate() {
            noisy[k].push(t);
        }
    }
    // The same clips back to back, by default never reset: whatever a word leaves in the
    // state (the front end's smoothed energy, the memories, the voltages) meets the next one,
    // as in use. Each trial above starts from a fresh state, which no running detector has.
    // In clean audio the clips' padding is digital silence, which no microphone gives, so the
    // stream is also heard in each trial's noise: every clip with the very noise of its fresh
    // trial, which leaves the carried-over state as the only difference between the two.
    let mut order: Vec<usize> = (0..positives.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(opt.seed));
    let stream = |reset: BackToBackReset, snr: Option<f32>| {
        let mut p = new_pipeline();
        let (mut trace, mut said, mut file_starts, mut samples) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
        for &i in &order {
            let (path, label) = positives[i];
            let (x, speech_rms) = &clips[i];
            let noisy;
            let x = match snr {
                Some(snr) => {
                    noisy = in_noise(x, *speech_rms, &noise, snr, opt.seed, i);
                    &noisy
                }
                None => x,
            };
            match reset {
                BackToBackReset::None => {}
                BackToBackReset::FrontEnd => p.frontend.reset(),
                BackToBackReset::Network => p.network.reset(),
                BackToBackReset::All => p.reset(),
            }
            let at = trace.len();
            file_starts.push((at, path.to_path_buf()));
            trace.extend(run_trace(&mut p, x, &is_kw, |_| {}));
            said.push((at + clean[i].first, trace.len(), label));
            samples += x.len();
        }
        let excused = vec![None; trace.len()];
        NegativeTrace {
            source: "speech_commands_v2",
            kind: NegativeKind::IsolatedWords,
            files: order.len(),
            seconds: samples as f64 / rate as f64,
            trace,
            excused,
            said,
            file_starts,
        }
    };
    let (back_to_back, back_to_back_noisy) = match opt.back_to_back {
        Some(reset) if !positives.is_empty() => {
            let conditions: Vec<Option<f32>> = std::iter::once(None).chain(opt.snr_db.iter().map(|&s| Some(s))).collect();
            let mut streams: Vec<NegativeTrace> = conditions.into_par_iter().map(|snr| stream(reset, snr)).collect();
            let clean = streams.remove(0);
            (Some(clean), streams)
        }
        _ => (None, Vec::new()),
    };
    let sources = negative_streams(corpus, opt.part, limit);
    let total: usize = sources.iter().map(|s| s.files.len()).sum();
    let pb = progress_bar(total as u64, &format!("{mode:?}: negatives"));
    let fs = model.card.frontend.frame_seconds();
    let negatives: Vec<Result<(NegativeTrace, ActivityMeter)>> = sources
        .par_iter()
        .map(|NegativeStream { source, kind, files }| {
            let mut p = new_pipeline();
            let mut meter = ActivityMeter::new(&p.network, fs);
            let mut trace = Vec::new();
            let mut excused = Vec::new();
            let mut said = Vec::new();
            let mut samples = 0usize;
            let mut loaded = 0;
            let mut file_starts = Vec::new();
            for f in files {
                let x = match load_with_gain(f.path, rate, opt.gain_db) {
                    Ok(x) => x,
                    Err(e) => {
                        pb.println(format!("skipping {}: {e}", f.path.display()));
                        pb.inc(1);
                        continue;
                    }
                };
                let at = trace.len();
                file_starts.push((at, f.path.to_path_buf()));
                trace.extend(run_trace(&mut p, &x, &is_kw, |r| meter.record(r.network)));
                excused.resize(trace.len(), None);
                for &(s, e, l) in &f.segments {
                    let a = at + (s as f64 / fs) as usize;
                    let b = (at + ((e + SEGMENT_GRACE_S) as f64 / fs) as usize).min(trace.len());
                    excused[a.min(b)..b].iter_mut().for_each(|v| *v = Some(l));
                    said.push((a, b, l));
                }
                samples += x.len();
                loaded += 1;
                pb.inc(1);
            }
            Ok((NegativeTrace { source, kind: *kind, files: loaded, seconds: samples as f64 / rate as f64, trace, excused, said, file_starts }, meter))
        })
        .collect();
    pb.finish_and_clear();
    let mut out = Vec::new();
    let mut meter: Option<ActivityMeter> = None;
    for r in negatives {
        let (t, m) = r?;
        out.push(t);
        match &mut meter {
            Some(a) => a.merge(&m),
            None => meter = Some(m),
        }
    }
    let energy = match meter {
        Some(m) => m.report(),
        None => ActivityMeter::new(&Pipeline::new(model).network, fs).report(),
    };
    Ok(Traces { clean, back_to_back, back_to_back_noisy, noisy, negatives: out, energy })
}

/// One held-out negative file; sentences carry their aligned keywords (seconds from the file's
/// start, label) so that hearing them is not a false alarm.
pub struct NegativeFileRef<'a> {
    pub path: &'a std::path::Path,
    pub segments: Vec<(f32, f32, u16)>,
}

/// The negatives of one source in `part`, streamed as one long recording, never reset.
pub struct NegativeStream<'a> {
    pub source: &'static str,
    pub kind: NegativeKind,
    pub files: Vec<NegativeFileRef<'a>>,
}

/// Every negative source of `part` (at most `limit` files each), in a fixed order: what
/// `eval-stream` counts false alarms on, and what other engines are compared on.
pub fn negative_streams(corpus: &Corpus, part: Part, limit: usize) -> Vec<NegativeStream<'_>> {
    let mut sources: BTreeMap<(&'static str, NegativeKind), Vec<NegativeFileRef>> = BTreeMap::new();
    for f in corpus.negatives.iter().filter(|f| f.part == part) {
        sources.entry((f.source, f.kind)).or_default().push(NegativeFileRef { path: &f.path, segments: Vec::new() });
    }
    for s in corpus.sentences.iter().filter(|s| s.part == part) {
        let segments = s.keywords.iter().map(|k| (k.start, k.end, k.label as u16)).collect();
        sources.entry(("speechocean762", NegativeKind::Continuous)).or_default().push(NegativeFileRef { path: &s.path, segments });
    }
    sources
        .into_iter()
        .map(|((source, kind), mut files)| {
            files.truncate(limit);
            NegativeStream { source, kind, files }
        })
        .collect()
}

/// The whole benchmark: the spiking network, and its twin when asked.
pub fn benchmark(model: &Model, corpus: &Corpus, opt: &BenchmarkOptions) -> Result<BenchmarkReport> {
    let mut modes = vec![Mode::Spiking];
    if opt.dense_twin {
        modes.push(Mode::Dense);
    }
    let mut results = Vec::new();
    for mode in modes {
        let mut traces = collect_traces(model, corpus, mode, opt)?;
        if opt.part == Part::Dev {
            add_calibration_negatives(model, corpus, mode, opt, &mut traces)?;
        }
        results.push(score(model, traces, mode, opt));
    }
    let thresholds = model
        .card
        .labels
        .iter()
        .filter(|l| is_keyword(l))
        .map(|l| (l.clone(), opt.threshold.unwrap_or_else(|| model.card.detection.threshold_for(l))))
        .collect();
    Ok(BenchmarkReport {
        part: opt.part,
        split: corpus.split,
        thresholds,
        snr_db: opt.snr_db.clone(),
        positive_source: "speech_commands_v2 keyword clips".into(),
        back_to_back_reset: opt.back_to_back,
        reseed_level: opt.reseed_level.unwrap_or(model.card.detection.reseed_level),
        results,
    })
}
