//! `spikeword compare`: two `eval-stream` reports of the same clips, paired clip by clip.
//!
//! A dev part of 20 speakers puts a 95% interval of about +-12 points around one model's
//! recall, wider than most differences between runs. Two models heard on the same clips
//! share most of that (a hard speaker is hard for both), so their paired difference, resampled
//! by speaker ([`super::interval`]), says whether one really catches more.

use super::interval::{by_speaker, speaker_bootstrap, Interval, RESAMPLES, SEED};
use crate::corpus::Part;
use crate::network::Mode;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a comparison reads of an `eval-stream` report (the JSON beside its `--plot`).
#[derive(Debug, Deserialize)]
pub struct ReportView {
    pub part: Part,
    pub snr_db: Vec<f32>,
    pub results: Vec<ResultView>,
}

#[derive(Debug, Deserialize)]
pub struct ResultView {
    pub mode: Mode,
    pub clips: Vec<ClipView>,
}

#[derive(Debug, Deserialize)]
pub struct ClipView {
    pub file: PathBuf,
    pub caught: bool,
    /// Absent in reports written before it existed: those compare clean only.
    #[serde(default)]
    pub caught_noisy: Vec<bool>,
}

/// Reads an `eval-stream` JSON report.
pub fn read_report(path: &Path) -> Result<ReportView> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not an eval-stream report (the .json written beside its --plot)", path.display()))
}

/// One condition's paired comparison, A against B.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// "clean" or the SNR, e.g. "10 dB".
    pub condition: String,
    pub clips: usize,
    pub speakers: usize,
    pub recall_a: f64,
    pub recall_b: f64,
    /// `recall_a - recall_b`.
    pub difference: f64,
    /// 95% interval of the difference over speakers (None with a single speaker).
    pub interval: Option<Interval>,
    /// Clips that only A caught, and only B.
    pub only_a: usize,
    pub only_b: usize,
}

/// A's recall (its `mode_a` results) against B's (`mode_b`) on every condition both reports
/// hold per clip: clean, and each SNR that both measured. One report against itself, spiking
/// against dense, is the spiking network's gap to its twin.
pub fn compare(a: &ReportView, b: &ReportView, mode_a: Mode, mode_b: Mode) -> Result<Vec<Difference>> {
    if a.part != b.part {
        bail!("the reports are on different parts ({:?} and {:?}); a paired comparison needs the same clips", a.part, b.part);
    }
    let (ca, cb) = (clips_of(a, "A", mode_a)?, clips_of(b, "B", mode_b)?);
    let in_b: HashMap<&Path, &ClipView> = cb.iter().map(|c| (c.file.as_path(), c)).collect();
    let shared = ca.iter().filter(|c| in_b.contains_key(c.file.as_path())).count();
    if shared != ca.len() || shared != cb.len() || ca.is_empty() {
        bail!("the reports hold different clips ({} and {}, {shared} in both): run both on the same data and part, with the same --limit", ca.len(), cb.len());
    }
    let pairs: Vec<(&ClipView, &ClipView)> = ca.iter().map(|c| (c, in_b[c.file.as_path()])).collect();
    let mut out = vec![paired("clean".into(), &pairs, |c| Some(c.caught), |c| Some(c.caught))];
    for (ka, snr) in a.snr_db.iter().enumerate() {
        if let Some(kb) = b.snr_db.iter().position(|s| s == snr) {
            out.push(paired(format!("{snr} dB"), &pairs, |c| c.caught_noisy.get(ka).copied(), |c| c.caught_noisy.get(kb).copied()));
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// Report `which`'s clips in `mode`.
fn clips_of<'a>(r: &'a ReportView, which: &str, mode: Mode) -> Result<&'a [ClipView]> {
    match r.results.iter().find(|m| m.mode == mode) {
        Some(m) => Ok(&m.clips),
        None => bail!("report {which} has no {mode:?} results (was it run with --no-twin?)"),
    }
}

/// The paired figures of one condition; None where a report lacks a clip's outcome there.
fn paired(
    condition: String,
    pairs: &[(&ClipView, &ClipView)],
    hit_a: impl Fn(&ClipView) -> Option<bool>,
    hit_b: impl Fn(&ClipView) -> Option<bool>,
) -> Option<Difference> {
    let hits: Vec<(&Path, bool, bool)> = pairs.iter().map(|(x, y)| Some((x.file.as_path(), hit_a(x)?, hit_b(y)?))).collect::<Option<_>>()?;
    let n = hits.len() as f64;
    let count = |f: &dyn Fn(&(&Path, bool, bool)) -> bool| hits.iter().filter(|h| f(h)).count();
    let (caught_a, caught_b) = (count(&|h| h.1), count(&|h| h.2));
    let groups = by_speaker(hits.iter().map(|&(p, x, y)| (p, x as u8 as f64 - y as u8 as f64)));
    Some(Difference {
        condition,
        clips: hits.len(),
        speakers: groups.len(),
        recall_a: caught_a as f64 / n,
        recall_b: caught_b as f64 / n,
        difference: (caught_a as f64 - caught_b as f64) / n,
        interval: speaker_bootstrap(&groups, RESAMPLES, SEED),
        only_a: count(&|h| h.1 && !h.2),
        only_b: count(&|h| h.2 && !h.1),
    })
}
