//! Scoring the streamed traces: recall of keyword trials, false alarms per hour on the
//! negative streams, why each clean clip was missed, and the detection-error trade-off of
//! one global threshold. One pass of the network (`stream::collect_traces`) serves every
//! threshold here.

use super::interval::{recall_interval, Interval};
use super::simulate_with;
use super::stream::{BenchmarkOptions, NegativeTrace, PositiveTrace, Traces};
use crate::corpus::NegativeKind;
use crate::detect::is_keyword;
use crate::energy::EnergyReport;
use crate::model::Model;
use crate::network::Mode;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Recall {
    pub clips: usize,
    pub caught: usize,
    pub recall: f64,
    /// Detections of another keyword while the clip was playing.
    pub wrong_keyword: usize,
    /// keyword -> (clips, caught)
    pub per_keyword: BTreeMap<String, (usize, usize)>,
    /// 95% interval of `recall` over the clips' speakers ([`super::interval`]); only for the
    /// figures at the model's thresholds, where there is one clip per trial.
    pub interval: Option<Interval>,
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
    /// Whether its trial in each noise condition was caught, in the order of `snr_db`: with
    /// `caught`, what `spikeword compare` pairs two models on.
    pub caught_noisy: Vec<bool>,
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
    /// The back-to-back stream in each trial's noise, in the order of `snr_db` (each clip with
    /// the noise of its fresh trial in `noisy`).
    pub back_to_back_noisy: Vec<(f32, Recall)>,
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
        let recall = caught as f64 / trials.len().max(1) as f64;
        Recall { clips: trials.len(), caught, recall, wrong_keyword: wrong, per_keyword: per, interval: None }
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

    /// Each clean trial's outcome, with its noisy trials' (`noisy[k][i]` is clip `i` in
    /// noise condition `k`).
    pub fn clip_outcomes(&self, trials: &[PositiveTrace], noisy: &[Vec<PositiveTrace>], th: &impl Fn(u16) -> f32) -> Vec<ClipOutcome> {
        trials
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let window = &t.trace[t.first.min(t.trace.len())..(t.last + 1).min(t.trace.len())];
                let mut peaks: BTreeMap<u16, f32> = BTreeMap::new();
                for &(c, p) in window {
                    let e = peaks.entry(c).or_insert(0.0);
                    *e = e.max(p);
                }
                let peak = peaks.get(&t.label).copied().unwrap_or(0.0);
                let rival = peaks.iter().filter(|(&c, _)| c != t.label).max_by(|a, b| a.1.total_cmp(b.1)).map(|(&c, &p)| (self.labels[c as usize].clone(), p));
                ClipOutcome {
                    file: t.file.clone(),
                    keyword: self.labels[t.label as usize].clone(),
                    caught: self.outcome(t, th).0,
                    threshold: th(t.label),
                    peak,
                    rival,
                    level_dbfs: t.level_dbfs,
                    caught_noisy: noisy.iter().filter_map(|n| n.get(i)).map(|n| self.outcome(n, th).0).collect(),
                }
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
        Recall { clips: n, caught, recall: caught as f64 / n.max(1) as f64, wrong_keyword: 0, per_keyword: per, interval: None }
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
    // Each clip's outcomes, clean and in every noise, give the intervals over speakers.
    let clips = sc.clip_outcomes(&traces.clean, &traces.noisy, &th);
    let mut clean = sc.recall(&traces.clean, &th);
    clean.interval = recall_interval(clips.iter().map(|c| (c.file.as_path(), c.caught)));
    let back_to_back = sc.in_sentence(traces.back_to_back.as_slice(), &th);
    let back_to_back_noisy = opt.snr_db.iter().zip(&traces.back_to_back_noisy).map(|(&s, t)| (s, sc.in_sentence(std::slice::from_ref(t), &th))).collect();
    let noisy: Vec<(f32, Recall)> = opt
        .snr_db
        .iter()
        .zip(&traces.noisy)
        .enumerate()
        .map(|(k, (&s, t))| {
            let mut r = sc.recall(t, &th);
            r.interval = recall_interval(clips.iter().filter_map(|c| Some((c.file.as_path(), *c.caught_noisy.get(k)?))));
            (s, r)
        })
        .collect();
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
                Some(d) => {
                    RecallAt { false_alarms_per_hour: target, threshold: Some(d.threshold), recall_clean: d.recall_clean, recall_noisy: d.recall_noisy.clone() }
                }
                None => RecallAt { false_alarms_per_hour: target, threshold: None, recall_clean: 0.0, recall_noisy: vec![0.0; opt.snr_db.len()] },
            }
        })
        .collect();
    ModeResult {
        mode,
        clean,
        back_to_back,
        back_to_back_noisy,
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
