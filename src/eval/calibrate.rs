//! Per-keyword thresholds chosen on non-test audio only (the train and dev parts of every
//! negative source), so that the test figures stay honest.

use super::stream::{collect_traces, det_grid, BenchmarkOptions, NegativeTrace, Scorer};
use crate::corpus::{Corpus, Part};
use crate::detect::is_keyword;
use crate::model::Model;
use crate::network::Mode;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub thresholds: BTreeMap<String, f32>,
    pub parts: Vec<Part>,
    pub negative_hours: f64,
    /// False alarms per hour on those negatives at the chosen thresholds (all keywords).
    pub false_alarms_per_hour: f64,
    /// Recall of the dev part's clean keyword clips at the chosen thresholds.
    pub dev_recall: f64,
}

/// For each keyword, the lowest threshold at which it alone raises at most
/// `per_keyword_per_hour` false alarms on the negatives of `parts`.
pub fn calibrate(model: &Model, corpus: &Corpus, parts: &[Part], per_keyword_per_hour: f64, limit: Option<usize>) -> Result<Calibration> {
    let labels = &model.card.labels;
    let fs = model.card.frontend.frame_seconds();
    let sc = Scorer { labels, refractory: (model.card.detection.refractory_s as f64 / fs).round() as usize };
    let mut negatives: Vec<NegativeTrace> = Vec::new();
    let mut dev_clean = Vec::new();
    for &part in parts {
        let opt = BenchmarkOptions { part, snr_db: vec![], threshold: None, dense_twin: false, limit, seed: 7, gain_db: 0.0 };
        let t = collect_traces(model, corpus, Mode::Spiking, &opt)?;
        negatives.extend(t.negatives);
        if part == Part::Dev {
            dev_clean = t.clean;
        }
    }
    let hours: f64 = negatives.iter().map(|n| n.seconds).sum::<f64>() / 3600.0;
    let grid = det_grid();
    let mut thresholds = BTreeMap::new();
    for (k, label) in labels.iter().enumerate() {
        if !is_keyword(label) {
            continue;
        }
        let t = grid
            .iter()
            .copied()
            .find(|&t| {
                let only = |c: u16| if c as usize == k { t } else { f32::INFINITY };
                (sc.fa_per_hour(&negatives, &only).1) <= per_keyword_per_hour
            })
            .unwrap_or(1.0);
        thresholds.insert(label.clone(), t);
    }
    let th = |c: u16| thresholds.get(&labels[c as usize]).copied().unwrap_or(f32::INFINITY);
    let fa = sc.fa_per_hour(&negatives, &th).1;
    let dev_recall = sc.recall(&dev_clean, &th).recall;
    Ok(Calibration { thresholds, parts: parts.to_vec(), negative_hours: hours, false_alarms_per_hour: fa, dev_recall })
}

/// Writes chosen thresholds into a model's card, with how they were chosen.
pub fn apply(model: &mut Model, c: &Calibration, per_keyword_per_hour: f64) {
    model.card.detection.thresholds = c.thresholds.clone();
    let mut record = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
    record["per_keyword_false_alarms_per_hour"] = serde_json::json!(per_keyword_per_hour);
    if !model.card.provenance.is_object() {
        model.card.provenance = serde_json::json!({});
    }
    model.card.provenance["calibration"] = record;
}
