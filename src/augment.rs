//! On-the-fly augmentation of 1 s training clips: time shift, speed/pitch, room reverb,
//! band-limiting, background noise at random SNR, gain.

use crate::audio::resample;
use rand::Rng;
use realfft::RealFftPlanner;

pub const RATE: u32 = 16_000;
pub const CLIP: usize = 16_000;

/// Noise recordings, split in time: the first 80% of each file feeds training, the last
/// 20% is kept for evaluation mixes.
pub struct NoiseBank {
    pub files: Vec<Vec<f32>>,
}

pub const NOISE_TRAIN_FRACTION: f64 = 0.8;

impl NoiseBank {
    /// A random `len`-sample crop from the training or the evaluation part.
    pub fn crop(&self, rng: &mut impl Rng, len: usize, eval_part: bool) -> Vec<f32> {
        if self.files.is_empty() {
            return vec![0.0; len];
        }
        let f = &self.files[rng.gen_range(0..self.files.len())];
        let cut = (f.len() as f64 * NOISE_TRAIN_FRACTION) as usize;
        let (lo, hi) = if eval_part { (cut, f.len()) } else { (0, cut) };
        let span = hi.saturating_sub(lo);
        if span == 0 {
            return vec![0.0; len];
        }
        let start = if span > len { lo + rng.gen_range(0..span - len) } else { lo };
        (0..len).map(|i| f[start + (i % span.min(f.len() - start))]).collect()
    }
}

pub fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Pads or crops to exactly `len` samples, placing the clip at `offset` (may be negative).
pub fn place(x: &[f32], len: usize, offset: isize) -> Vec<f32> {
    let mut out = vec![0.0; len];
    for (i, &v) in x.iter().enumerate() {
        let j = i as isize + offset;
        if j >= 0 && (j as usize) < len {
            out[j as usize] = v;
        }
    }
    out
}

/// Offset that centres the loudest 1 s of a longer clip (or a shorter clip) in `len`.
pub fn centre_offset(x: &[f32], len: usize) -> isize {
    if x.len() <= len {
        return ((len - x.len()) / 2) as isize;
    }
    // Sliding energy window to find the loudest `len` samples.
    let mut best = (0.0f64, 0usize);
    let mut acc = 0.0f64;
    for i in 0..x.len() {
        acc += (x[i] * x[i]) as f64;
        if i >= len {
            acc -= (x[i - len] * x[i - len]) as f64;
        }
        if i + 1 >= len && acc > best.0 {
            best = (acc, i + 1 - len);
        }
    }
    -(best.1 as isize)
}

/// Convolution with a synthetic room impulse response and/or a low-pass, both in one FFT.
pub fn filter(x: &[f32], rir: Option<&[f32]>, cutoff_hz: Option<f32>) -> Vec<f32> {
    let n = (x.len() + rir.map_or(0, |r| r.len())).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut a = fwd.make_input_vec();
    a[..x.len()].copy_from_slice(x);
    let mut sa = fwd.make_output_vec();
    let _ = fwd.process(&mut a, &mut sa);
    if let Some(r) = rir {
        let mut b = fwd.make_input_vec();
        b[..r.len()].copy_from_slice(r);
        let mut sb = fwd.make_output_vec();
        let _ = fwd.process(&mut b, &mut sb);
        for (p, q) in sa.iter_mut().zip(&sb) {
            *p *= q;
        }
    }
    if let Some(fc) = cutoff_hz {
        let bin = (fc / RATE as f32 * n as f32) as usize;
        for s in sa.iter_mut().skip(bin) {
            *s = Default::default();
        }
    }
    let mut out = inv.make_output_vec();
    let _ = inv.process(&mut sa, &mut out);
    out.truncate(x.len());
    out.iter_mut().for_each(|v| *v /= n as f32);
    out
}

/// Exponentially decaying noise tail after a unit direct path.
pub fn synthetic_rir(rng: &mut impl Rng, rt60_s: f32) -> Vec<f32> {
    let len = ((rt60_s * RATE as f32) as usize).max(16);
    let decay = 6.9 / (rt60_s * RATE as f32);
    let mut h: Vec<f32> = (0..len).map(|i| rng.gen_range(-1.0f32..1.0) * (-decay * i as f32).exp() * 0.3).collect();
    h[0] = 1.0;
    let norm = rms(&h) * (len as f32).sqrt();
    h.iter_mut().for_each(|v| *v /= norm.max(1e-6));
    h
}

/// Settings of one augmented version.
#[derive(Debug, Clone, Copy)]
pub struct AugmentOptions {
    /// Apply the random transforms at all (false: the clean clip, placed centrally).
    pub enabled: bool,
    pub max_shift_s: f32,
    /// Place the clip so that its end is at the end of the window (within `max_shift_s`):
    /// for word onsets cut mid-word, which is what a streaming network sees while a word
    /// is still being spoken.
    pub align_end: bool,
}

/// First and last sample whose magnitude reaches 10% of the clip's peak.
pub fn active_span(x: &[f32]) -> (usize, usize) {
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let on = |v: &&f32| v.abs() >= 0.1 * peak;
    let start = x.iter().position(|v| on(&v)).unwrap_or(0);
    let end = x.iter().rposition(|v| on(&v)).map_or(x.len(), |e| e + 1);
    (start, end.max(start))
}

/// The onset of a word: the clip up to a random point between 15% and 75% of its active span.
pub fn word_onset(x: &[f32], rng: &mut impl Rng) -> Vec<f32> {
    let (s, e) = active_span(x);
    let len = e - s;
    let cut = s + (len as f32 * rng.gen_range(0.15f32..0.75)) as usize;
    x[..cut.clamp(1, x.len().max(1))].to_vec()
}

/// One augmented 1 s version of a clip. `is_silence` clips are replaced by noise.
pub fn augment(x: &[f32], is_silence: bool, noise: &NoiseBank, rng: &mut impl Rng, opt: AugmentOptions) -> Vec<f32> {
    if !opt.enabled {
        return place(x, CLIP, centre_offset(x, CLIP));
    }
    if is_silence {
        let mut n = if rng.gen_bool(0.5) || x.is_empty() { noise.crop(rng, CLIP, false) } else { place(x, CLIP, 0) };
        let target = 10f32.powf(rng.gen_range(-4.0f32..-1.0));
        let g = target / rms(&n).max(1e-7);
        n.iter_mut().for_each(|v| *v *= g);
        return n;
    }
    let mut y = x.to_vec();
    if rng.gen_bool(0.5) {
        // Speed and pitch together, as a tape would: resample by the factor.
        let factor = rng.gen_range(0.88f32..1.12);
        let to = (RATE as f32 / factor).round() as u32;
        if let Ok(r) = resample(&y, RATE, to) {
            y = r;
        }
    }
    let shift = (rng.gen_range(-opt.max_shift_s..=opt.max_shift_s) * RATE as f32) as isize;
    let mut y = if opt.align_end { place(&y, CLIP, CLIP as isize - y.len() as isize - shift.abs()) } else { place(&y, CLIP, centre_offset(&y, CLIP) + shift) };
    let rir = if rng.gen_bool(0.3) {
        let rt60 = rng.gen_range(0.1f32..0.6);
        Some(synthetic_rir(rng, rt60))
    } else {
        None
    };
    let cutoff = if rng.gen_bool(0.15) { Some(rng.gen_range(3000.0f32..4000.0)) } else { None };
    if rir.is_some() || cutoff.is_some() {
        y = filter(&y, rir.as_deref(), cutoff);
    }
    let level = rms(&y).max(1e-6);
    if rng.gen_bool(0.8) {
        let n = noise.crop(rng, CLIP, false);
        let snr_db = rng.gen_range(0.0f32..25.0);
        let g = level / rms(&n).max(1e-7) * 10f32.powf(-snr_db / 20.0);
        for (a, b) in y.iter_mut().zip(&n) {
            *a += g * b;
        }
    }
    // Speech level from -40 to -10 dBFS RMS.
    let target = 10f32.powf(rng.gen_range(-2.0f32..-0.5));
    let g = target / rms(&y).max(1e-7);
    y.iter_mut().for_each(|v| *v = (*v * g).clamp(-1.0, 1.0));
    y
}
