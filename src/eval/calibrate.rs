//! Detection thresholds chosen on non-test audio only (by default the calibration and dev
//! parts of every negative source, which training never saw), so that the test figures stay
//! honest.

use super::score::{det_grid, Scorer};
use super::stream::{collect_traces, BenchmarkOptions, NegativeTrace};
use crate::corpus::{Corpus, Part};
use crate::detect::is_keyword;
use crate::model::Model;
use crate::network::Mode;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

/// How thresholds are set from the calibration negatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// One threshold for every keyword, where the tail fitted to all keywords' false alarms
    /// together meets the keywords' summed budget. Pooling gives the fit several times the
    /// counts, so on an hour or two of audio it carries over best.
    Global,
    /// Each keyword's own tail fit against its own budget.
    PerKeyword,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub method: Method,
    pub thresholds: BTreeMap<String, f32>,
    pub parts: Vec<Part>,
    pub negative_hours: f64,
    /// False alarms per hour on those negatives at the chosen thresholds (all keywords).
    pub false_alarms_per_hour: f64,
    /// Recall of the dev part's clean keyword clips at the chosen thresholds.
    pub dev_recall: f64,
    /// Each keyword's own tail (what `Method::PerKeyword` sets).
    pub per_keyword: BTreeMap<String, KeywordCalibration>,
    /// All keywords' false alarms together against the summed budget (what `Method::Global`
    /// sets).
    pub global: KeywordCalibration,
}

/// One keyword's false-alarm tail on the calibration negatives.
#[derive(Debug, Clone, Serialize)]
pub struct KeywordCalibration {
    /// The lowest threshold with at most the allowed false alarms on the audio at hand.
    pub observed: f32,
    /// Where the fitted tail reaches the allowed rate (None: too few false alarms to fit).
    pub extrapolated: Option<f32>,
    /// The fit: ln(false alarms) = intercept + slope * logit(threshold).
    pub slope: Option<f64>,
}

impl KeywordCalibration {
    /// The threshold it sets: the fitted tail's, never below what the audio itself shows.
    pub fn threshold(&self) -> f32 {
        self.extrapolated.map_or(self.observed, |e| e.max(self.observed))
    }
}

/// A threshold from false-alarm counts per threshold (of one keyword, or of all together).
/// Below one per `1 / per_hour` hours of audio a count says nothing more (the lowest
/// threshold with no false alarm in 1.4 h still raises about one every 1.4 h), so the tail
/// of the counts is extrapolated instead. It is close to exponential in the logit of the
/// threshold; a weighted least-squares line through ln(count) over the tail's counts is
/// followed down to the target rate.
pub fn tail_threshold(grid: &[f32], counts: &[usize], hours: f64, per_hour: f64) -> KeywordCalibration {
    let allowed = per_hour * hours;
    let observed = grid.iter().zip(counts).find(|(_, &c)| c as f64 <= allowed).map_or(1.0, |(&t, _)| t);
    let logit = |t: f32| (t as f64 / (1.0 - t as f64)).ln();
    // The tail: thresholds where 2..=TAIL_MAX false alarms remain (one is pure chance).
    const TAIL_MAX: usize = 40;
    let pts: Vec<(f64, f64, f64)> =
        grid.iter().zip(counts).filter(|(&t, &c)| (2..=TAIL_MAX).contains(&c) && t < 1.0).map(|(&t, &c)| (logit(t), (c as f64).ln(), c as f64)).collect();
    let distinct = pts.windows(2).filter(|w| w[0].1 != w[1].1).count() + 1;
    if pts.len() < 3 || distinct < 3 {
        return KeywordCalibration { observed, extrapolated: None, slope: None };
    }
    let sw: f64 = pts.iter().map(|p| p.2).sum();
    let mx = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let my = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = pts.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || sxy >= 0.0 {
        return KeywordCalibration { observed, extrapolated: None, slope: None };
    }
    let slope = sxy / sxx;
    let x = mx + (allowed.ln() - my) / slope;
    let t = (1.0 / (1.0 + (-x).exp())) as f32;
    let extrapolated = (t.clamp(0.0, MAX_THRESHOLD) * 10_000.0).round() / 10_000.0;
    KeywordCalibration { observed, extrapolated: Some(extrapolated), slope: Some(slope) }
}

/// No threshold is set above this (a keyword must stay detectable).
pub const MAX_THRESHOLD: f32 = 0.9995;

/// Thresholds at which each keyword is expected to raise at most `per_keyword_per_hour`
/// false alarms (`Method::PerKeyword`), or all of them together that many times the number
/// of keywords (`Method::Global`): the lowest threshold meeting the rate on the negatives of
/// `parts`, raised to where their fitted tail meets it ([`tail_threshold`]).
pub fn calibrate(model: &Model, corpus: &Corpus, parts: &[Part], per_keyword_per_hour: f64, method: Method, limit: Option<usize>) -> Result<Calibration> {
    let labels = &model.card.labels;
    let fs = model.card.frontend.frame_seconds();
    let sc = Scorer { labels, refractory: (model.card.detection.refractory_s as f64 / fs).round() as usize };
    let mut negatives: Vec<NegativeTrace> = Vec::new();
    let mut dev_clean = Vec::new();
    for &part in parts {
        let opt = BenchmarkOptions { part, snr_db: vec![], threshold: None, dense_twin: false, limit, seed: 7, back_to_back: None, ..Default::default() };
        let t = collect_traces(model, corpus, Mode::Spiking, &opt)?;
        negatives.extend(t.negatives);
        if part == Part::Dev {
            dev_clean = t.clean;
        }
    }
    let hours: f64 = negatives.iter().map(|n| n.seconds).sum::<f64>() / 3600.0;
    let grid = det_grid();
    let mut thresholds = BTreeMap::new();
    let mut per_keyword = BTreeMap::new();
    for (k, label) in labels.iter().enumerate() {
        if !is_keyword(label) {
            continue;
        }
        let counts: Vec<usize> = grid
            .iter()
            .map(|&t| {
                let only = |c: u16| if c as usize == k { t } else { f32::INFINITY };
                sc.fa_per_hour(&negatives, &only).0
            })
            .collect();
        per_keyword.insert(label.clone(), tail_threshold(&grid, &counts, hours, per_keyword_per_hour));
    }
    let all: Vec<usize> =
        grid.iter().map(|&t| sc.fa_per_hour(&negatives, &|c: u16| if is_keyword(&labels[c as usize]) { t } else { f32::INFINITY }).0).collect();
    let global = tail_threshold(&grid, &all, hours, per_keyword_per_hour * per_keyword.len() as f64);
    for (label, kc) in &per_keyword {
        let kc = if method == Method::Global { &global } else { kc };
        thresholds.insert(label.clone(), kc.threshold());
    }
    let th = |c: u16| thresholds.get(&labels[c as usize]).copied().unwrap_or(f32::INFINITY);
    let fa = sc.fa_per_hour(&negatives, &th).1;
    let dev_recall = sc.recall(&dev_clean, &th).recall;
    Ok(Calibration { thresholds, parts: parts.to_vec(), negative_hours: hours, false_alarms_per_hour: fa, dev_recall, per_keyword, global, method })
}

/// Writes chosen thresholds into a model's card, with how they were chosen.
/// With `Method::Global` the one threshold becomes the card's default (what the app's "all
/// keywords" slider shows) and no keyword overrides it.
pub fn apply(model: &mut Model, c: &Calibration, per_keyword_per_hour: f64) {
    match c.method {
        Method::Global => {
            model.card.detection.default_threshold = c.global.threshold();
            model.card.detection.thresholds.clear();
        }
        Method::PerKeyword => model.card.detection.thresholds = c.thresholds.clone(),
    }
    let mut record = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
    record["per_keyword_false_alarms_per_hour"] = serde_json::json!(per_keyword_per_hour);
    if !model.card.provenance.is_object() {
        model.card.provenance = serde_json::json!({});
    }
    model.card.provenance["calibration"] = record;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::score::det_grid;

    #[test]
    fn an_exponential_tail_is_followed_below_the_audio_at_hand() {
        // 2 h of audio whose false alarms fall as 500 * exp(-2 * logit(t)): the rate of 0.5
        // per hour (1 in these 2 h) is reached at logit(t) = ln(500) / 2.
        let grid = det_grid();
        let logit = |t: f32| (t as f64 / (1.0 - t as f64)).ln();
        let counts: Vec<usize> = grid.iter().map(|&t| (500.0 * (-2.0 * logit(t)).exp()).floor() as usize).collect();
        let kc = tail_threshold(&grid, &counts, 2.0, 0.25);
        let want = 1.0 / (1.0 + (-(500f64.ln() - 0.5f64.ln()) / 2.0).exp());
        let got = kc.extrapolated.expect("enough false alarms to fit") as f64;
        assert!((logit(got as f32) - logit(want as f32)).abs() < 0.3, "extrapolated {got}, exact {want}");
        assert!((kc.slope.unwrap() + 2.0).abs() < 0.3, "slope {:?}", kc.slope);
        // The counts alone stop at the last threshold with a false alarm or none: lower.
        assert!(kc.observed < got as f32);
        // A keyword that never fired cannot be fitted; its observed threshold stands.
        let none = tail_threshold(&grid, &vec![0; grid.len()], 2.0, 0.25);
        assert_eq!((none.extrapolated, none.observed), (None, grid[0]));
    }
}
