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
//! traces of the most probable keyword let one pass serve every threshold.

use super::{best_keyword, keyword_mask, padded, simulate_with, Trace};
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
    /// What the back-to-back stream resets before each clip (nothing, as in use): tells
    /// whose state costs recall there, the front end's or the network's.
    pub back_to_back_reset: BackToBackReset,
}

/// Part of the pipeline the back-to-back stream resets before each clip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackToBackReset {
    /// Nothing: one running stream, as in use.
    #[default]
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
        Self { part: Part::Test, snr_db: vec![10.0], threshold: None, dense_twin: true, limit: None, seed: 7, gain_db: 0.0, back_to_back_reset: BackToBackReset::None }
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
pub struct Recall {
    pub clips: usize,
    pub caught: usize,
    pub recall: f64,
    /// Detections of another keyword while the clip was playing.
    pub wrong_keyword: usize,
    /// keyword -> (clips, caught)
    pub per_keyword: BTreeMap<String, (usize, usize)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NegativeResult {
    pub source: String,
    pub kind: NegativeKind,
    pub files: usize,
    pub hours: f64,
    pub false_alarms: usize,
    pub false_alarms_per_hour: f64,
    /// Detections of a keyword the sentence really says, inside its aligned segment.
    pub excused: usize,
    /// Every false alarm: which file, when, which keyword (to listen to them).
    pub events: Vec<FalseAlarm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FalseAlarm {
    pub file: std::path::PathBuf,
    /// Seconds from the start of that file.
    pub at_s: f64,
    pub keyword: String,
}

/// One clean clip's outcome at the model's thresholds: which clips are missed, and whether
/// the network heard nothing there or heard another keyword.
#[derive(Debug, Clone, Serialize)]
pub struct ClipOutcome {
    pub file: std::path::PathBuf,
    pub keyword: String,
    pub caught: bool,
    /// The threshold its keyword was detected at.
    pub threshold: f32,
    /// Highest smoothed probability its own keyword reached as the top keyword, from the
    /// clip's start to the end of its stream (0 if it never was the top keyword).
    pub peak: f32,
    /// The other keyword that peaked highest there, with its peak.
    pub rival: Option<(String, f32)>,
    /// RMS level of the clip's active span (dB full scale): whether quiet clips are missed.
    pub level_dbfs: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetPoint {
    pub threshold: f32,
    pub false_alarms_per_hour: f64,
    pub recall_clean: f64,
    /// In the order of `snr_db`.
    pub recall_noisy: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallAt {
    pub false_alarms_per_hour: f64,
    /// The lowest global threshold meeting that rate, or None if none does.
    pub threshold: Option<f32>,
    pub recall_clean: f64,
    pub recall_noisy: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    pub mode: Mode,
    pub clean: Recall,
    /// The same clean clips (same padding, same rule) back to back in one stream, as a
    /// detector that runs all day hears them (never reset unless `back_to_back_reset` says).
    pub back_to_back: Recall,
    pub noisy: Vec<(f32, Recall)>,
    pub negatives: Vec<NegativeResult>,
    pub negative_hours: f64,
    pub false_alarms: usize,
    pub false_alarms_per_hour: f64,
    /// Keywords said inside held-out sentences that were detected (extra figure).
    pub in_sentence: Recall,
    pub recall_at: Vec<RecallAt>,
    pub det: Vec<DetPoint>,
    pub energy: EnergyReport,
    /// Every clean clip, in the order of `Traces::clean`.
    pub clips: Vec<ClipOutcome>,
}

impl ModeResult {
    /// The threshold of the sweep that catches the most clean clips, whatever its false
    /// alarms: how many keywords the network recognises at all. The gap from there to the
    /// recall at a tolerable rate is what the false-alarm budget costs; the gap to 100% no
    /// threshold can close. (Recall falls again at low thresholds, where a wrong keyword
    /// fires first and its refractory time hides the right one.)
    pub fn ceiling(&self) -> Option<&DetPoint> {
        self.det.iter().max_by(|a, b| a.recall_clean.total_cmp(&b.recall_clean).then(a.threshold.total_cmp(&b.threshold)))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    pub part: Part,
    /// The split the parts were assigned by (the model's own, for dev).
    pub split: crate::corpus::Split,
    pub thresholds: BTreeMap<String, f32>,
    pub snr_db: Vec<f32>,
    pub positive_source: String,
    pub back_to_back_reset: BackToBackReset,
    pub results: Vec<ModeResult>,
}

/// Everything a mode's traces need to be scored at any thresholds.
pub struct Traces {
    pub clean: Vec<PositiveTrace>,
    /// Each clean clip's file and the level of its active span (dBFS), in the same order.
    pub clean_files: Vec<(std::path::PathBuf, f32)>,
    /// The clean clips in one stream, shuffled, reset between clips only as
    /// `back_to_back_reset` says; `said` holds each clip's frames (clip start to the end of
    /// the silence after it). None without positives.
    pub back_to_back: Option<NegativeTrace>,
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

/// One keyword clip's trials, with its audio kept for the back-to-back stream.
struct ClipTrials {
    audio: Vec<f32>,
    level_dbfs: f32,
    clean: PositiveTrace,
    noisy: Vec<PositiveTrace>,
}

/// Loads the test (or dev) audio once and streams it through the model in `mode`.
pub fn collect_traces(model: &Model, corpus: &Corpus, mode: Mode, opt: &BenchmarkOptions) -> Result<Traces> {
    let rate = model.card.frontend.sample_rate;
    let hop = model.card.frontend.hop_length;
    let is_kw = keyword_mask(model);
    let limit = opt.limit.unwrap_or(usize::MAX);
    let positives: Vec<(&std::path::Path, u16)> = corpus
        .keywords_in(opt.part, Some("speech_commands_v2"))
        .take(limit)
        .map(|c| (c.path.as_path(), c.label as u16))
        .collect();
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
            p.reset();
            let clean = PositiveTrace { label, trace: run_trace(p, &x, &is_kw, |_| {}), first, last };
            let (a, b) = active_span(&clip);
            let speech_rms = rms(&clip[a..b.max(a + 1).min(clip.len())]);
            let mut noisy = Vec::new();
            for &snr in &opt.snr_db {
                let mut rng = rand::rngs::StdRng::seed_from_u64(opt.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ snr.to_bits() as u64);
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
                p.reset();
                noisy.push(PositiveTrace { label, trace: run_trace(p, &y, &is_kw, |_| {}), first, last });
            }
            pb.inc(1);
            Ok(ClipTrials { audio: clip, level_dbfs: 20.0 * speech_rms.max(1e-9).log10(), clean, noisy })
        })
        .collect();
    pb.finish_and_clear();
    let mut clean = Vec::new();
    let mut clean_files = Vec::new();
    let mut clips = Vec::new();
    let mut noisy: Vec<Vec<PositiveTrace>> = vec![Vec::new(); opt.snr_db.len()];
    for (r, &(path, _)) in per_clip.into_iter().zip(&positives) {
        let ClipTrials { audio, level_dbfs, clean: c, noisy: n } = r?;
        clips.push(audio);
        clean_files.push((path.to_path_buf(), level_dbfs));
        clean.push(c);
        for (k, t) in n.into_iter().enumerate() {
            noisy[k].push(t);
        }
    }
    // The same clips back to back, by default never reset: whatever a word leaves in the
    // state (the front end's smoothed energy, the memories, the voltages) meets the next one,
    // as in use. Each trial above starts from a fresh state, which no running detector has.
    let back_to_back = if positives.is_empty() {
        None
    } else {
        let mut order: Vec<usize> = (0..positives.len()).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(opt.seed));
        let mut p = new_pipeline();
        let (mut trace, mut said, mut file_starts, mut samples) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
        for &i in &order {
            let (path, label) = positives[i];
            let (x, span) = padded(&clips[i], rate);
            match opt.back_to_back_reset {
                BackToBackReset::None => {}
                BackToBackReset::FrontEnd => p.frontend.reset(),
                BackToBackReset::Network => p.network.reset(),
                BackToBackReset::All => p.reset(),
            }
            let at = trace.len();
            file_starts.push((at, path.to_path_buf()));
            trace.extend(run_trace(&mut p, &x, &is_kw, |_| {}));
            said.push((at + span.start / hop, trace.len(), label));
            samples += x.len();
        }
        let excused = vec![None; trace.len()];
        Some(NegativeTrace { source: "speech_commands_v2", kind: NegativeKind::IsolatedWords, files: order.len(), seconds: samples as f64 / rate as f64, trace, excused, said, file_starts })
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
    Ok(Traces { clean, clean_files, back_to_back, noisy, negatives: out, energy })
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

/// Scores traces at per-keyword thresholds (`th(class)`).
pub struct Scorer<'a> {
    pub labels: &'a [String],
    pub refractory: usize,
}

impl Scorer<'_> {
    /// Whether one trial's keyword was detected inside its window, and how many detections
    /// of another keyword landed there.
    fn outcome(&self, t: &PositiveTrace, th: &impl Fn(u16) -> f32) -> (bool, usize) {
        let ev = simulate_with(&t.trace, th, self.refractory);
        let inside = ev.iter().filter(|(f, _)| *f >= t.first && *f <= t.last);
        inside.fold((false, 0), |(hit, wrong), &(_, c)| if c == t.label { (true, wrong) } else { (hit, wrong + 1) })
    }

    pub fn recall(&self, trials: &[PositiveTrace], th: &impl Fn(u16) -> f32) -> Recall {
        let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let (mut caught, mut wrong) = (0, 0);
        for t in trials {
            let (hit, w) = self.outcome(t, th);
            wrong += w;
            caught += hit as usize;
            let e = per.entry(self.labels[t.label as usize].clone()).or_default();
            e.0 += 1;
            e.1 += hit as usize;
        }
        Recall { clips: trials.len(), caught, recall: caught as f64 / trials.len().max(1) as f64, wrong_keyword: wrong, per_keyword: per }
    }

    /// The detections of one negative stream that are false alarms (frame, class), and how
    /// many were excused (a keyword the sentence really says, inside its segment).
    fn false_alarm_frames(&self, n: &NegativeTrace, th: &impl Fn(u16) -> f32) -> (Vec<(usize, u16)>, usize) {
        let (excused, false_alarms): (Vec<_>, Vec<_>) = simulate_with(&n.trace, th, self.refractory).into_iter().partition(|(f, c)| n.excused[*f] == Some(*c));
        (false_alarms, excused.len())
    }

    /// (false alarms, excused detections) of one negative stream.
    pub fn false_alarms(&self, n: &NegativeTrace, th: &impl Fn(u16) -> f32) -> (usize, usize) {
        let (fa, excused) = self.false_alarm_frames(n, th);
        (fa.len(), excused)
    }

    /// The false alarms of one negative stream located in their files (`fs`: seconds per
    /// frame), and the excused detections.
    pub fn false_alarm_events(&self, n: &NegativeTrace, th: &impl Fn(u16) -> f32, fs: f64) -> (Vec<FalseAlarm>, usize) {
        let (fa, excused) = self.false_alarm_frames(n, th);
        let events = fa
            .into_iter()
            .filter_map(|(f, c)| {
                let k = n.file_starts.partition_point(|(start, _)| *start <= f).checked_sub(1)?;
                let (start, file) = &n.file_starts[k];
                Some(FalseAlarm { file: file.clone(), at_s: (f - start) as f64 * fs, keyword: self.labels[c as usize].clone() })
            })
            .collect();
        (events, excused)
    }

    /// Each clean clip's outcome (`files` in the order of `trials`).
    pub fn clip_outcomes(&self, trials: &[PositiveTrace], files: &[(std::path::PathBuf, f32)], th: &impl Fn(u16) -> f32) -> Vec<ClipOutcome> {
        trials
            .iter()
            .zip(files)
            .map(|(t, (file, level_dbfs))| {
                let window = &t.trace[t.first.min(t.trace.len())..(t.last + 1).min(t.trace.len())];
                let mut peaks: BTreeMap<u16, f32> = BTreeMap::new();
                for &(c, p) in window {
                    let e = peaks.entry(c).or_insert(0.0);
                    *e = e.max(p);
                }
                let peak = peaks.get(&t.label).copied().unwrap_or(0.0);
                let rival = peaks.iter().filter(|(&c, _)| c != t.label).max_by(|a, b| a.1.total_cmp(b.1)).map(|(&c, &p)| (self.labels[c as usize].clone(), p));
                ClipOutcome { file: file.clone(), keyword: self.labels[t.label as usize].clone(), caught: self.outcome(t, th).0, threshold: th(t.label), peak, rival, level_dbfs: *level_dbfs }
            })
            .collect()
    }

    pub fn in_sentence(&self, negs: &[NegativeTrace], th: &impl Fn(u16) -> f32) -> Recall {
        let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut caught = 0;
        let mut n = 0;
        for neg in negs {
            let ev = simulate_with(&neg.trace, th, self.refractory);
            for &(a, b, l) in &neg.said {
                let hit = ev.iter().any(|&(f, c)| f >= a && f < b && c == l);
                caught += hit as usize;
                n += 1;
                let e = per.entry(self.labels[l as usize].clone()).or_default();
                e.0 += 1;
                e.1 += hit as usize;
            }
        }
        Recall { clips: n, caught, recall: caught as f64 / n.max(1) as f64, wrong_keyword: 0, per_keyword: per }
    }

    /// Total false alarms per hour over all negatives.
    pub fn fa_per_hour(&self, negs: &[NegativeTrace], th: &impl Fn(u16) -> f32) -> (usize, f64) {
        let fa: usize = negs.iter().map(|n| self.false_alarms(n, th).0).sum();
        let hours: f64 = negs.iter().map(|n| n.seconds).sum::<f64>() / 3600.0;
        (fa, fa as f64 / hours.max(1e-9))
    }
}

/// Thresholds of the DET sweep: coarse in the middle, fine near 1 where a confident
/// detector operates.
pub fn det_grid() -> Vec<f32> {
    let mut g: Vec<f32> = (5..95).map(|k| k as f32 / 100.0).collect();
    g.extend((950..999).map(|k| k as f32 / 1000.0));
    g.extend((9990..10000).map(|k| k as f32 / 10000.0));
    g
}

/// Scores one mode's traces at the model's thresholds and over the global-threshold sweep.
pub fn score(model: &Model, traces: Traces, mode: Mode, opt: &BenchmarkOptions) -> ModeResult {
    let labels = &model.card.labels;
    let fs = model.card.frontend.frame_seconds();
    let refractory = (model.card.detection.refractory_s as f64 / fs).round() as usize;
    let sc = Scorer { labels, refractory };
    let det_cfg = &model.card.detection;
    let shipped: Vec<f32> = labels
        .iter()
        .map(|l| match opt.threshold {
            Some(t) => t,
            None if is_keyword(l) => det_cfg.threshold_for(l),
            None => f32::INFINITY,
        })
        .collect();
    let th = |c: u16| shipped[c as usize];
    let clean = sc.recall(&traces.clean, &th);
    let clips = sc.clip_outcomes(&traces.clean, &traces.clean_files, &th);
    let back_to_back = sc.in_sentence(traces.back_to_back.as_slice(), &th);
    let noisy: Vec<(f32, Recall)> = opt.snr_db.iter().zip(&traces.noisy).map(|(&s, t)| (s, sc.recall(t, &th))).collect();
    let mut negatives = Vec::new();
    for n in &traces.negatives {
        let (events, excused) = sc.false_alarm_events(n, &th, fs);
        let fa = events.len();
        let hours = n.seconds / 3600.0;
        negatives.push(NegativeResult {
            source: n.source.to_string(),
            kind: n.kind,
            files: n.files,
            hours,
            false_alarms: fa,
            false_alarms_per_hour: fa as f64 / hours.max(1e-9),
            excused,
            events,
        });
    }
    let negative_hours: f64 = negatives.iter().map(|n| n.hours).sum();
    let false_alarms: usize = negatives.iter().map(|n| n.false_alarms).sum();
    let in_sentence = sc.in_sentence(&traces.negatives, &th);
    let det: Vec<DetPoint> = det_grid()
        .into_par_iter()
        .map(|t| {
            let g = |_: u16| t;
            DetPoint {
                threshold: t,
                false_alarms_per_hour: sc.fa_per_hour(&traces.negatives, &g).1,
                recall_clean: sc.recall(&traces.clean, &g).recall,
                recall_noisy: traces.noisy.iter().map(|n| sc.recall(n, &g).recall).collect(),
            }
        })
        .collect();
    let recall_at = [0.5, 1.0, 2.0]
        .into_iter()
        .map(|target| {
            // The lowest threshold that meets the rate (recall only falls as it rises).
            match det.iter().find(|d| d.false_alarms_per_hour <= target) {
                Some(d) => RecallAt { false_alarms_per_hour: target, threshold: Some(d.threshold), recall_clean: d.recall_clean, recall_noisy: d.recall_noisy.clone() },
                None => RecallAt { false_alarms_per_hour: target, threshold: None, recall_clean: 0.0, recall_noisy: vec![0.0; opt.snr_db.len()] },
            }
        })
        .collect();
    ModeResult {
        mode,
        clean,
        back_to_back,
        noisy,
        negatives,
        negative_hours,
        false_alarms,
        false_alarms_per_hour: false_alarms as f64 / negative_hours.max(1e-9),
        in_sentence,
        recall_at,
        det,
        energy: traces.energy,
        clips,
    }
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
        back_to_back_reset: opt.back_to_back_reset,
        results,
    })
}
