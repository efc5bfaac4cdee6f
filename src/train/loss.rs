//! The streaming loss: per-frame targets on the detector's own readout (the softmax of the
//! class scores averaged over the last `smoothing` frames).
//! - Background frames: cross-entropy towards `_unknown_` / `_silence_`, plus the worst
//!   background frame of each sequence once more (punishes firing anywhere it should not).
//! - Each keyword window (a short stretch after the word ends): max-pooling cross-entropy
//!   at the frame where the keyword is most probable (rewards firing once in the window),
//!   plus a lighter cross-entropy on every frame of the window.
//! - While the word is being said: no target.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ignore,
    /// Not a keyword: `_unknown_` (speech around) or `_silence_`.
    Background(usize),
    Keyword(usize),
}

#[derive(Debug, Clone, Default)]
pub struct SeqLabels {
    pub targets: Vec<Target>,
    /// (first frame, last frame, label) of each keyword window.
    pub windows: Vec<(usize, usize, usize)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossWeights {
    pub background: f32,
    pub worst_background: f32,
    pub window_max: f32,
    pub window_mean: f32,
    /// Off by default: smoothing trains every confident output towards the same ceiling
    /// (0.954 at 0.05), so the top of the score range, where a detector with < 1 false alarm
    /// per hour operates, no longer ranks keywords above confusable words.
    pub label_smoothing: f32,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { background: 1.0, worst_background: 0.5, window_max: 1.0, window_mean: 0.3, label_smoothing: 0.0 }
    }
}

/// What a sequence's outputs did, for the progress line.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqStats {
    pub windows: usize,
    /// Windows in which the keyword was the most probable class at some frame with p > 0.5.
    pub caught: usize,
    /// Whether some background frame had a keyword with p > 0.5.
    pub false_fire: bool,
}

/// Causal moving average of `z` [T x C] over `k` frames (fewer at the start), as the
/// detector computes it.
pub fn smooth(z: &Array2<f32>, k: usize) -> Array2<f32> {
    let (t_len, c) = z.dim();
    let k = k.max(1);
    let mut s = Array2::<f32>::zeros((t_len, c));
    let mut acc = vec![0.0f32; c];
    for t in 0..t_len {
        for (a, &v) in acc.iter_mut().zip(z.row(t)) {
            *a += v;
        }
        if t >= k {
            for (a, &v) in acc.iter_mut().zip(z.row(t - k)) {
                *a -= v;
            }
        }
        let n = (t + 1).min(k) as f32;
        for (d, &a) in s.row_mut(t).iter_mut().zip(&acc) {
            *d = a / n;
        }
    }
    s
}

fn softmax_row(s: ndarray::ArrayView1<f32>, out: &mut [f32]) {
    let max = s.iter().fold(f32::MIN, |m, &v| m.max(v));
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(s) {
        *o = (v - max).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o /= sum);
}

/// Loss, gradient with respect to the raw logits [T x C], and stats. `is_kw[c]` marks
/// keyword classes.
pub fn streaming_loss(logits: &Array2<f32>, labels: &SeqLabels, smoothing: usize, is_kw: &[bool], w: &LossWeights) -> (f32, Array2<f32>, SeqStats) {
    let (t_len, c) = logits.dim();
    let s = smooth(logits, smoothing);
    let mut p = Array2::<f32>::zeros((t_len, c));
    for t in 0..t_len {
        let mut row = vec![0.0; c];
        softmax_row(s.row(t), &mut row);
        p.row_mut(t).iter_mut().zip(&row).for_each(|(d, &v)| *d = v);
    }
    let eps = w.label_smoothing;
    let mut ds = Array2::<f32>::zeros((t_len, c));
    let mut loss = 0.0f32;
    // Adds weight * CE(p_t, label) and its gradient.
    let ce = |t: usize, label: usize, weight: f32, ds: &mut Array2<f32>| -> f32 {
        let mut l = 0.0;
        for i in 0..c {
            let q = if i == label { 1.0 - eps } else { 0.0 } + eps / c as f32;
            l -= q * p[[t, i]].max(1e-12).ln();
            ds[[t, i]] += weight * (p[[t, i]] - q);
        }
        weight * l
    };
    let mut stats = SeqStats::default();
    let bg: Vec<usize> = (0..t_len).filter(|&t| matches!(labels.targets.get(t), Some(Target::Background(_)))).collect();
    if !bg.is_empty() {
        let wt = w.background / bg.len() as f32;
        let mut worst = (0usize, -1.0f32);
        for &t in &bg {
            let Some(Target::Background(b)) = labels.targets.get(t).copied() else { continue };
            loss += ce(t, b, wt, &mut ds);
            let kw_mass: f32 = (0..c).filter(|&i| is_kw[i]).map(|i| p[[t, i]]).sum();
            if kw_mass > worst.1 {
                worst = (t, kw_mass);
            }
            if (0..c).any(|i| is_kw[i] && p[[t, i]] > 0.5) {
                stats.false_fire = true;
            }
        }
        if w.worst_background > 0.0 {
            if let Some(Target::Background(b)) = labels.targets.get(worst.0).copied() {
                loss += ce(worst.0, b, w.worst_background, &mut ds);
            }
        }
    }
    for &(a, b, k) in &labels.windows {
        let b = b.min(t_len.saturating_sub(1));
        if a > b {
            continue;
        }
        stats.windows += 1;
        let best = (a..=b).max_by(|&x, &y| p[[x, k]].total_cmp(&p[[y, k]])).unwrap_or(a);
        if p[[best, k]] > 0.5 {
            stats.caught += 1;
        }
        loss += ce(best, k, w.window_max, &mut ds);
        if w.window_mean > 0.0 {
            let wt = w.window_mean / (b - a + 1) as f32;
            for t in a..=b {
                loss += ce(t, k, wt, &mut ds);
            }
        }
    }
    // Back through the moving average: z_j feeds s_t for t in j..j+k, each with weight 1/n_t.
    let k = smoothing.max(1);
    let mut dz = Array2::<f32>::zeros((t_len, c));
    for t in 0..t_len {
        let n = (t + 1).min(k) as f32;
        let lo = (t + 1).saturating_sub(k);
        for j in lo..=t {
            for i in 0..c {
                dz[[j, i]] += ds[[t, i]] / n;
            }
        }
    }
    (loss, dz, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> SeqLabels {
        let mut targets = vec![Target::Background(1); 40];
        for t in targets.iter_mut().take(25).skip(10) {
            *t = Target::Ignore;
        }
        for t in targets.iter_mut().take(31).skip(25) {
            *t = Target::Keyword(0);
        }
        SeqLabels { targets, windows: vec![(25, 30, 0)] }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (t_len, c) = (40, 3);
        let z = Array2::from_shape_fn((t_len, c), |(t, i)| ((t * 7 + i * 3) % 11) as f32 * 0.3 - 1.5);
        let is_kw = [true, false, false];
        // The worst-frame and max-pool terms pick a frame: away from ties they are smooth.
        let w = LossWeights { worst_background: 0.0, ..Default::default() };
        let (l0, dz, _) = streaming_loss(&z, &labels(), 4, &is_kw, &w);
        for &(t, i) in &[(3, 0), (12, 1), (26, 0), (28, 2), (39, 1)] {
            let h = 2e-3;
            let mut zp = z.clone();
            zp[[t, i]] += h;
            let mut zm = z.clone();
            zm[[t, i]] -= h;
            let num = (streaming_loss(&zp, &labels(), 4, &is_kw, &w).0 - streaming_loss(&zm, &labels(), 4, &is_kw, &w).0) / (2.0 * h);
            assert!((num - dz[[t, i]]).abs() < 2e-3 + 0.02 * num.abs(), "({t},{i}): numeric {num} vs analytic {}", dz[[t, i]]);
        }
        assert!(l0.is_finite() && l0 > 0.0);
        // The worst background frame adds gradient at exactly one background frame.
        let with = LossWeights::default();
        let (_, dz2, _) = streaming_loss(&z, &labels(), 1, &is_kw, &with);
        let (_, dz1, _) = streaming_loss(&z, &labels(), 1, &is_kw, &w);
        let changed: Vec<usize> = (0..t_len).filter(|&t| (0..c).any(|i| (dz2[[t, i]] - dz1[[t, i]]).abs() > 1e-7)).collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(matches!(labels().targets[changed[0]], Target::Background(_)));
    }

    #[test]
    fn smoothing_is_the_detectors_running_mean() {
        let z = Array2::from_shape_fn((5, 1), |(t, _)| t as f32);
        let s = smooth(&z, 2);
        assert_eq!(s.column(0).to_vec(), vec![0.0, 0.5, 1.5, 2.5, 3.5]);
    }
}
