//! Streaming log-mel front end: 16 kHz mono in, one frame of log-mel energies every hop.
//!
//! The same code computes features for training, evaluation and the live app, so the
//! network never sees features computed two different ways.

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Front-end parameters. They travel inside the model file so a model is always fed the
/// features it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontEndConfig {
    pub sample_rate: u32,
    /// Analysis window in samples (25 ms at 16 kHz).
    pub win_length: usize,
    /// Samples between frames (10 ms at 16 kHz): one network step per hop.
    pub hop_length: usize,
    /// FFT size (power of two, >= win_length).
    pub n_fft: usize,
    pub n_mels: usize,
    pub f_min: f32,
    pub f_max: f32,
    /// Added to mel energies before compression so silence stays finite.
    pub log_floor: f32,
    /// How mel energies are compressed: `log` (log-mel), or `pcen` (per-channel energy
    /// normalisation: gain- and channel-independent). Older model files have no field and
    /// mean `log`.
    #[serde(default)]
    pub compression: Compression,
}

/// Per-channel energy normalisation (Wang et al. 2017): each band divided by its own smoothed
/// energy, so a constant gain or a fixed microphone response cancels out:
/// `M = (1-s) M + s E;  y = (E / (eps + M)^alpha + delta)^r - delta^r`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PcenConfig {
    pub smoothing: f32,
    pub alpha: f32,
    pub delta: f32,
    pub r: f32,
    pub eps: f32,
    /// Smoothing while the energy falls below `M` (0: `smoothing`, the symmetric smoother
    /// of the paper). With `smoothing` 0.025 a loud word takes 4.5 s to fade by 50 dB, so a
    /// keyword said a second or two later is divided by the last word; a faster release lets
    /// `M` fall back to the room's level within the pause, as an AGC's release does, while
    /// words still rise against a slow attack. (Run r17, 0.08, did not keep its recall back
    /// to back and raised more false alarms; the shipped model has 0.)
    #[serde(default)]
    pub release: f32,
    /// After this many frames in a row whose total energy is at least `reseed_db` below the
    /// smoothed total (a pause: the word is over, only the room is left), `M` restarts at the
    /// mean of those quiet frames, the state a fresh stream starts in. The smoother otherwise
    /// holds a loud word for seconds and divides the next keyword by it (back to back r27
    /// catches 27% against 73% from a fresh state). Unlike a fast release it leaves the frames
    /// inside a word alone: a dip shorter than the pause changes nothing. 0: off. (Run r34,
    /// 40 frames trained in, brought back to back within 9 points of fresh, its dense twin
    /// level with it, but fired three times as often on running speech, where every breath
    /// restarts the smoother; the shipped model has 0.)
    #[serde(default)]
    pub reseed_frames: usize,
    /// How far a frame's total energy must sit below the smoothed total to count as quiet.
    #[serde(default = "default_reseed_db")]
    pub reseed_db: f32,
}

fn default_reseed_db() -> f32 {
    10.0
}

impl Default for PcenConfig {
    fn default() -> Self {
        Self { smoothing: 0.025, alpha: 1.0, delta: 2.0, r: 0.5, eps: 1e-12, release: 0.0, reseed_frames: 0, reseed_db: default_reseed_db() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Compression {
    #[default]
    Log,
    Pcen(PcenConfig),
}

impl Compression {
    /// Short name for people (dashboard, `info`): "log" or "PCEN".
    pub fn name(&self) -> &'static str {
        match self {
            Compression::Log => "log",
            Compression::Pcen(_) => "PCEN",
        }
    }

    /// The name with the non-default PCEN options (`info`), e.g. "PCEN, re-seeded after
    /// 0.40 s of quiet, 10 dB down" for 40 frames of 10 ms.
    pub fn describe(&self, frame_seconds: f64) -> String {
        let mut s = self.name().to_string();
        if let Compression::Pcen(p) = self {
            if p.release > 0.0 {
                s += &format!(", release {}", p.release);
            }
            if p.reseed_frames > 0 {
                s += &format!(", re-seeded after {:.2} s of quiet, {} dB down", p.reseed_frames as f64 * frame_seconds, p.reseed_db);
            }
        }
        s
    }
}

impl Default for FrontEndConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            win_length: 400,
            hop_length: 160,
            n_fft: 512,
            n_mels: 40,
            f_min: 20.0,
            f_max: 8_000.0,
            log_floor: 1e-6,
            compression: Compression::Log,
        }
    }
}

impl FrontEndConfig {
    /// Checks the parameters a model file supplies before any buffer is sized from them.
    pub fn validate(&self) -> Result<(), String> {
        if !(4_000..=96_000).contains(&self.sample_rate) {
            return Err(format!("sample_rate {} outside 4000..=96000", self.sample_rate));
        }
        if !self.n_fft.is_power_of_two() || !(64..=8192).contains(&self.n_fft) {
            return Err(format!("n_fft {} must be a power of two in 64..=8192", self.n_fft));
        }
        if self.win_length == 0 || self.win_length > self.n_fft {
            return Err(format!("win_length {} must be in 1..=n_fft ({})", self.win_length, self.n_fft));
        }
        if self.hop_length == 0 || self.hop_length > self.win_length {
            return Err(format!("hop_length {} must be in 1..=win_length", self.hop_length));
        }
        if self.n_mels == 0 || self.n_mels > 256 || self.n_mels > self.n_fft / 2 {
            return Err(format!("n_mels {} must be in 1..=min(256, n_fft/2)", self.n_mels));
        }
        let nyquist = self.sample_rate as f32 / 2.0;
        if !(self.f_min >= 0.0 && self.f_min < self.f_max && self.f_max <= nyquist) {
            return Err(format!("mel range {}..{} Hz must satisfy 0 <= f_min < f_max <= {} Hz", self.f_min, self.f_max, nyquist));
        }
        if !(self.log_floor > 0.0 && self.log_floor.is_finite()) {
            return Err("log_floor must be a positive finite number".into());
        }
        if let Compression::Pcen(p) = self.compression {
            let ok = |v: f32, lo: f32, hi: f32| v.is_finite() && v >= lo && v <= hi;
            if !(ok(p.smoothing, 1e-4, 1.0)
                && ok(p.alpha, 0.0, 1.0)
                && ok(p.delta, 0.0, 100.0)
                && ok(p.r, 0.01, 1.0)
                && ok(p.eps, 1e-12, 1.0)
                && (p.release == 0.0 || ok(p.release, 1e-4, 1.0))
                && p.reseed_frames <= 10_000
                && ok(p.reseed_db, 0.0, 100.0))
            {
                return Err(format!("PCEN parameters out of range: {p:?}"));
            }
        }
        Ok(())
    }

    /// Seconds of audio per frame (per network step).
    pub fn frame_seconds(&self) -> f64 {
        self.hop_length as f64 / self.sample_rate as f64
    }
}

fn hz_to_mel(f: f32) -> f32 {
    2595.0 * (1.0 + f / 700.0).log10()
}
fn mel_to_hz(m: f32) -> f32 {
    700.0 * (10f32.powf(m / 2595.0) - 1.0)
}

/// One triangular mel filter, stored sparsely: weights for bins start..start+weights.len().
#[derive(Debug, Clone)]
struct MelFilter {
    start: usize,
    weights: Vec<f32>,
}

/// Vocal-tract-length warp of a frequency (Jaitly & Hinton 2013): scaled by `alpha` up to
/// a boundary, then linear so the band edge maps onto itself. alpha = 1 is the identity.
pub fn vtlp_warp(f: f32, alpha: f32, f_max: f32) -> f32 {
    let boundary = 0.85 * f_max * alpha.min(1.0) / alpha;
    if f <= boundary {
        f * alpha
    } else {
        f_max - (f_max - f) * (f_max - alpha * boundary) / (f_max - boundary)
    }
}

fn mel_filters(cfg: &FrontEndConfig, alpha: f32) -> Vec<MelFilter> {
    let n_bins = cfg.n_fft / 2 + 1;
    let bin_hz = cfg.sample_rate as f32 / cfg.n_fft as f32;
    let nyquist = cfg.sample_rate as f32 / 2.0;
    let (lo, hi) = (hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max));
    let edges: Vec<f32> = (0..cfg.n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f32 / (cfg.n_mels + 1) as f32)).collect();
    (0..cfg.n_mels)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let mut start = usize::MAX;
            let mut weights = Vec::new();
            for k in 0..n_bins {
                // Training draws alpha per example to imitate other speakers' vocal tracts;
                // inference always uses alpha = 1 (no warp).
                let f = if alpha == 1.0 { k as f32 * bin_hz } else { vtlp_warp(k as f32 * bin_hz, alpha, nyquist) };
                let w = if f > left && f < centre {
                    (f - left) / (centre - left)
                } else if f >= centre && f < right {
                    (right - f) / (right - centre)
                } else {
                    0.0
                };
                if w > 0.0 {
                    if start == usize::MAX {
                        start = k;
                    }
                    // Fill gaps so the sparse run stays contiguous.
                    weights.resize(k - start, 0.0);
                    weights.push(w);
                }
            }
            if start == usize::MAX {
                // A filter narrower than one bin: give it the nearest bin so no band is dead.
                start = ((centre / bin_hz).round() as usize).min(n_bins - 1);
                weights.push(1.0);
            }
            MelFilter { start, weights }
        })
        .collect()
}

/// Centre frequency of each mel band in Hz (for plots and tests).
pub fn mel_centres(cfg: &FrontEndConfig) -> Vec<f32> {
    let (lo, hi) = (hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max));
    (0..cfg.n_mels).map(|i| mel_to_hz(lo + (hi - lo) * (i + 1) as f32 / (cfg.n_mels + 1) as f32)).collect()
}

/// Streaming log-mel extractor. Every `hop_length` samples pushed it emits one frame
/// computed from the latest `win_length` samples (zeros before the stream began), so the
/// output depends only on the sample sequence, never on how it was chunked.
pub struct FrontEnd {
    cfg: FrontEndConfig,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    filters: Vec<MelFilter>,
    ring: Vec<f32>,
    ring_pos: usize,
    since_frame: usize,
    fft_in: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    power: Vec<f32>,
    scratch: Vec<Complex<f32>>,
    frame: Vec<f32>,
    /// PCEN's smoothed energy per band; empty until the first frame sets it.
    smoothed: Vec<f32>,
    /// Quiet frames in a row (see [`PcenConfig::reseed_frames`]) and their energies summed.
    quiet_run: usize,
    quiet_sum: Vec<f32>,
    /// `reseed_db` as a power ratio, computed once rather than per frame.
    reseed_ratio: f32,
    /// PCEN's offset term delta^r, likewise.
    pcen_offset: f32,
}

impl FrontEnd {
    pub fn new(cfg: FrontEndConfig) -> Result<Self, String> {
        Self::with_warp(cfg, 1.0)
    }

    /// A front end whose mel filters read a frequency axis warped by `alpha` (vocal tract
    /// length perturbation, a training augmentation; see [`vtlp_warp`]).
    pub fn with_warp(cfg: FrontEndConfig, alpha: f32) -> Result<Self, String> {
        cfg.validate()?;
        if !(0.5..=2.0).contains(&alpha) {
            return Err(format!("warp factor {alpha} outside 0.5..=2"));
        }
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(cfg.n_fft);
        // Periodic Hann window.
        let window = (0..cfg.win_length).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / cfg.win_length as f32).cos()).collect();
        // PCEN's per-frame constants (unused by the log front end).
        let (pcen_offset, reseed_ratio) = match cfg.compression {
            Compression::Pcen(p) => (p.delta.powf(p.r), 10f32.powf(p.reseed_db / 10.0)),
            Compression::Log => (0.0, 1.0),
        };
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Ok(Self {
            filters: mel_filters(&cfg, alpha),
            fft_in: fft.make_input_vec(),
            power: vec![0.0; cfg.n_fft / 2 + 1],
            ring: vec![0.0; cfg.win_length],
            ring_pos: 0,
            since_frame: 0,
            frame: vec![0.0; cfg.n_mels],
            smoothed: Vec::with_capacity(cfg.n_mels),
            quiet_run: 0,
            quiet_sum: vec![0.0; cfg.n_mels],
            reseed_ratio,
            pcen_offset,
            window,
            spectrum,
            scratch,
            fft,
            cfg,
        })
    }

    pub fn config(&self) -> &FrontEndConfig {
        &self.cfg
    }

    pub fn n_mels(&self) -> usize {
        self.cfg.n_mels
    }

    /// Samples still needed before the next frame is emitted.
    pub fn samples_to_next_frame(&self) -> usize {
        self.cfg.hop_length - self.since_frame
    }

    /// Forget all audio: the next frame is computed as if the stream started now.
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.ring_pos = 0;
        self.since_frame = 0;
        self.restart_smoothing();
    }

    /// Forgets only PCEN's smoothed energy: the next frame's energy seeds it, as at a
    /// stream's start, while the window keeps its samples (no transient from a zeroed
    /// window). Log-mel keeps no such state. Allocates nothing (capacity stays reserved).
    pub fn restart_smoothing(&mut self) {
        self.smoothed.clear();
        self.quiet_run = 0;
        self.quiet_sum.fill(0.0);
    }

    /// Feeds samples (at `sample_rate`, nominally in [-1, 1]); calls `on_frame` with each
    /// completed log-mel frame. Allocates nothing.
    pub fn push(&mut self, samples: &[f32], mut on_frame: impl FnMut(&[f32])) {
        let hop = self.cfg.hop_length;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (hop - self.since_frame).min(rest.len());
            for &s in &rest[..take] {
                self.ring[self.ring_pos] = s;
                self.ring_pos += 1;
                if self.ring_pos == self.ring.len() {
                    self.ring_pos = 0;
                }
            }
            self.since_frame += take;
            rest = &rest[take..];
            if self.since_frame == hop {
                self.since_frame = 0;
                self.compute_frame();
                on_frame(&self.frame);
            }
        }
    }

    /// Convenience for whole clips: all frames of `samples`, row after row.
    pub fn frames_of(&mut self, samples: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(samples.len() / self.cfg.hop_length * self.cfg.n_mels);
        self.push(samples, |f| out.extend_from_slice(f));
        out
    }

    fn compute_frame(&mut self) {
        let n = self.ring.len();
        // Oldest sample sits at ring_pos.
        let (head, tail) = self.ring.split_at(self.ring_pos);
        for (dst, (&s, &w)) in self.fft_in.iter_mut().zip(tail.iter().chain(head).zip(&self.window)) {
            *dst = s * w;
        }
        self.fft_in[n..].fill(0.0);
        // Lengths are fixed at construction, so this cannot fail.
        let _ = self.fft.process_with_scratch(&mut self.fft_in, &mut self.spectrum, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        for (out, f) in self.frame.iter_mut().zip(&self.filters) {
            let bins = &self.power[f.start..f.start + f.weights.len()];
            let e: f32 = bins.iter().zip(&f.weights).map(|(p, w)| p * w).sum();
            *out = e + self.cfg.log_floor;
        }
        match self.cfg.compression {
            Compression::Log => self.frame.iter_mut().for_each(|e| *e = e.ln()),
            Compression::Pcen(p) => {
                // The smoother starts at the first frame's energy, so a stream's first frames
                // are not divided by nothing (capacity is reserved: no allocation here).
                if self.smoothed.is_empty() {
                    self.smoothed.extend_from_slice(&self.frame);
                }
                if p.reseed_frames > 0 {
                    self.reseed_after_pause(&p);
                }
                let dr = self.pcen_offset;
                let release = if p.release > 0.0 { p.release } else { p.smoothing };
                for (e, m) in self.frame.iter_mut().zip(self.smoothed.iter_mut()) {
                    let s = if *e < *m { release } else { p.smoothing };
                    *m += s * (*e - *m);
                    *e = (*e / (p.eps + *m).powf(p.alpha) + p.delta).powf(p.r) - dr;
                }
            }
        }
    }

    /// Counts quiet frames and, after a pause long enough, restarts PCEN's smoother at the
    /// pause's mean energy.
    fn reseed_after_pause(&mut self, p: &PcenConfig) {
        let energy: f32 = self.frame.iter().sum();
        let smoothed: f32 = self.smoothed.iter().sum();
        if energy * self.reseed_ratio < smoothed {
            self.quiet_run += 1;
            self.quiet_sum.iter_mut().zip(&self.frame).for_each(|(s, e)| *s += e);
            if self.quiet_run >= p.reseed_frames {
                let n = self.quiet_run as f32;
                self.smoothed.iter_mut().zip(&self.quiet_sum).for_each(|(m, s)| *m = s / n);
                self.quiet_run = 0;
                self.quiet_sum.fill(0.0);
            }
        } else if self.quiet_run > 0 {
            self.quiet_run = 0;
            self.quiet_sum.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_options_that_change_pcen() {
        assert_eq!(Compression::Log.describe(0.01), "log");
        assert_eq!(Compression::Pcen(PcenConfig::default()).describe(0.01), "PCEN");
        let p = PcenConfig { reseed_frames: 40, ..Default::default() };
        assert_eq!(Compression::Pcen(p).describe(0.01), "PCEN, re-seeded after 0.40 s of quiet, 10 dB down");
    }
}
