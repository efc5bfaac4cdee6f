//! Training sequences that look like use: a few seconds of running audio (background noise,
//! non-keyword words, running speech) with a keyword somewhere in it or none, and a target
//! for every frame: the keyword only in a short window after the word ends, "not a
//! keyword" everywhere else, nothing while the word is still being said.

use super::loss::{SeqLabels, Target};
use crate::audio::resample;
use crate::augment::{filter, rms, synthetic_rir, RATE};
use crate::dataset::{SILENCE, UNKNOWN};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A keyword said inside an utterance: label and sample range of the word.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Said {
    pub label: usize,
    pub start: usize,
    pub end: usize,
}

/// One recording in memory (16 kHz mono).
#[derive(Debug, Clone)]
pub struct Utterance {
    pub audio: Vec<f32>,
    /// Keywords it says (one for a keyword clip, any number for a sentence, none for a
    /// non-keyword word).
    pub said: Vec<Said>,
    /// Sample range with speech in it.
    pub active: (usize, usize),
}

/// A stretch of audio the model fired on although nobody said a keyword (hard negatives),
/// with frames to leave out of the loss (keywords a sentence really says).
#[derive(Debug, Clone)]
pub struct HardNegative {
    pub audio: Vec<f32>,
    pub ignore: Vec<bool>,
    pub origin: HardOrigin,
}

/// Where a hard negative was cut from: the pool's negatives streamed one after another
/// (indices as [`Pool::negative`] takes them) and the sample range of their concatenation.
/// A checkpoint keeps this instead of the audio, so a resumed run cuts the same audio again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardOrigin {
    pub utterances: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

/// Everything sequences are made from. Keyword clips are split by kind so real voices can
/// be drawn more often than synthetic ones.
#[derive(Debug, Default)]
pub struct Pool {
    pub keywords_real: Vec<Utterance>,
    pub keywords_synth: Vec<Utterance>,
    /// Isolated non-keyword words and short phrases.
    pub words: Vec<Utterance>,
    /// Running speech (sentences may say keywords; see `Utterance::said`).
    pub speech: Vec<Utterance>,
    /// Background noise (training part of each recording).
    pub noise: Vec<Vec<f32>>,
    pub hard: Vec<HardNegative>,
}

impl Pool {
    /// Negative utterance `i` of the ones mining streams: the isolated words, then the
    /// running speech.
    pub fn negative(&self, i: usize) -> Option<&Utterance> {
        if i < self.words.len() {
            self.words.get(i)
        } else {
            self.speech.get(i - self.words.len())
        }
    }
    pub fn negative_count(&self) -> usize {
        self.words.len() + self.speech.len()
    }
}

/// How sequences are put together.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComposeConfig {
    pub seconds: f32,
    /// Share of sequences with a keyword clip in them.
    pub p_keyword: f32,
    /// Share of running-speech sequences (sentences that say a keyword train it too).
    pub p_speech: f32,
    /// Share of sequences of isolated non-keyword words.
    pub p_words: f32,
    /// Share of mined hard negatives (once there are any).
    pub p_hard: f32,
    /// Share of real (rather than synthetic) keyword clips.
    pub p_real_keyword: f32,
    /// Chance of a second keyword after the first one's window, where it fits.
    #[serde(default)]
    pub p_second_keyword: f32,
    /// Positive window: from `window_start` frames after the word's end to `window_end`.
    pub window_start: i32,
    pub window_end: i32,
    /// Frames after a window with no target. The detector's scores are smoothed over the
    /// last frames, so the first frames after the window still carry the window's logits;
    /// calling them background asked for a drop the smoothing forbids, and the "worst
    /// background frame" term spent itself there instead of on confusable words. A detection
    /// is followed by a second of refractory time anyway, so these frames never decide a
    /// false alarm in use. 0: the old rule.
    #[serde(default)]
    pub window_tail: usize,
    /// A frame counts as speech (`_unknown_` rather than `_silence_`) this many frames after
    /// speech stops.
    pub speech_hangover: usize,
    pub p_noise: f32,
    /// Signal-to-noise ratio against the speech span (as `eval-stream --snr` mixes it).
    pub snr_db: (f32, f32),
    pub p_reverb: f32,
    pub p_speed: f32,
    pub speed: (f32, f32),
    /// Vocal-tract-length warp range (applied in the front end) and how often.
    pub p_vtlp: f32,
    pub vtlp: (f32, f32),
    /// Speech level, dBFS RMS.
    pub level_db: (f32, f32),
    /// Share of sequences whose front end is first run over the end of another composed
    /// sequence (its frames are dropped). PCEN's smoother remembers a loud word for
    /// seconds, and in use the front end never starts cold; a network trained only on cold
    /// starts missed keywords said a few seconds apart. 0: every sequence starts cold, as
    /// the shipped recipe does. (Runs r16 and r18, 0.8 and 0.3: back-to-back recall rose
    /// from 32% to 42% and 35%, but fresh recall fell from 56% to 43% and 45%.)
    #[serde(default)]
    pub p_warm: f32,
    /// Length range of that warm-up audio, seconds.
    #[serde(default = "default_warm_seconds")]
    pub warm_seconds: (f32, f32),
}

fn default_warm_seconds() -> (f32, f32) {
    (0.3, 3.0)
}

impl Default for ComposeConfig {
    fn default() -> Self {
        Self {
            seconds: 3.0,
            p_keyword: 0.5,
            p_speech: 0.2,
            p_words: 0.2,
            p_hard: 0.1,
            p_real_keyword: 0.6,
            p_second_keyword: 0.0,
            window_start: -2,
            window_end: 40,
            window_tail: 40,
            speech_hangover: 30,
            p_noise: 0.85,
            snr_db: (0.0, 25.0),
            p_reverb: 0.3,
            p_speed: 0.6,
            speed: (0.85, 1.15),
            p_vtlp: 0.7,
            vtlp: (0.87, 1.13),
            level_db: (-45.0, -12.0),
            p_warm: 0.0,
            warm_seconds: default_warm_seconds(),
        }
    }
}

/// A composed sequence: audio, per-frame labels, and the warp its features are taken with.
pub struct Sequence {
    /// Audio the front end runs over first, its frames dropped (a whole number of hops, so
    /// the labelled frames stay aligned); empty for a cold start.
    pub warm_up: Vec<f32>,
    pub audio: Vec<f32>,
    pub labels: SeqLabels,
    pub warp: f32,
}

/// Sample range of the speech in a clip: 10 ms frames within 30 dB of the loudest one and
/// well above the clip's own noise floor.
pub fn speech_span(x: &[f32]) -> (usize, usize) {
    let hop = 160;
    let e: Vec<f32> = x.chunks(hop).map(rms).collect();
    if e.is_empty() {
        return (0, 0);
    }
    let peak = e.iter().fold(0.0f32, |m, &v| m.max(v));
    let mut sorted = e.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let floor = sorted[sorted.len() / 10];
    let thr = (peak * 10f32.powf(-30.0 / 20.0)).max(floor * 3.0).min(peak * 0.5);
    let first = e.iter().position(|&v| v >= thr).unwrap_or(0);
    let last = e.iter().rposition(|&v| v >= thr).unwrap_or(e.len() - 1);
    (first * hop, ((last + 1) * hop).min(x.len()))
}

impl Utterance {
    pub fn new(audio: Vec<f32>, said: Vec<Said>) -> Self {
        let active = speech_span(&audio);
        Self { audio, said, active }
    }

    /// A keyword clip: the whole clip says `label` over its speech span.
    pub fn keyword(audio: Vec<f32>, label: usize) -> Self {
        let active = speech_span(&audio);
        Self { said: vec![Said { label, start: active.0, end: active.1 }], audio, active }
    }
}

/// One utterance placed on the timeline, after its own augmentation.
struct Placed {
    audio: Vec<f32>,
    at: isize,
    said: Vec<Said>,
    active: (usize, usize),
}

fn pick<'a, T>(v: &'a [T], rng: &mut impl Rng) -> Option<&'a T> {
    if v.is_empty() {
        None
    } else {
        Some(&v[rng.gen_range(0..v.len())])
    }
}

/// Speed (and pitch) change by resampling, as a tape would; positions scale with it.
fn perturb(u: &Utterance, cfg: &ComposeConfig, rng: &mut impl Rng) -> (Vec<f32>, Vec<Said>, (usize, usize)) {
    let gain = 10f32.powf(rng.gen_range(-6.0f32..6.0) / 20.0);
    if rng.gen::<f32>() < cfg.p_speed {
        let factor = rng.gen_range(cfg.speed.0..cfg.speed.1);
        let to = (RATE as f32 / factor).round() as u32;
        if let Ok(y) = resample(&u.audio, RATE, to) {
            let s = |v: usize| ((v as f64) * to as f64 / RATE as f64) as usize;
            let said = u.said.iter().map(|k| Said { label: k.label, start: s(k.start), end: s(k.end).min(y.len()) }).collect();
            let active = (s(u.active.0), s(u.active.1).min(y.len()));
            return (y.into_iter().map(|v| v * gain).collect(), said, active);
        }
    }
    (u.audio.iter().map(|v| v * gain).collect(), u.said.clone(), u.active)
}

/// Builds one training sequence, with the audio to warm the front end on (the end of
/// another composed sequence: a keyword, words, speech or noise a moment earlier).
pub fn compose(pool: &Pool, cfg: &ComposeConfig, frames: usize, hop: usize, rng: &mut impl Rng) -> Sequence {
    let mut seq = compose_cold(pool, cfg, frames, hop, rng);
    // No draw when off, so the default recipe composes the same sequences as before.
    if cfg.p_warm > 0.0 && rng.gen::<f32>() < cfg.p_warm {
        let lo = cfg.warm_seconds.0.max(0.0);
        let hi = cfg.warm_seconds.1.max(lo);
        let hops = ((rng.gen_range(lo..=hi) * RATE as f32) as usize / hop).clamp(1, frames);
        let before = compose_cold(pool, cfg, frames, hop, rng);
        seq.warm_up = before.audio[before.audio.len() - hops * hop..].to_vec();
    }
    seq
}

fn compose_cold(pool: &Pool, cfg: &ComposeConfig, frames: usize, hop: usize, rng: &mut impl Rng) -> Sequence {
    let n = frames * hop;
    let mut placed: Vec<Placed> = Vec::new();
    let r: f32 = rng.gen();
    let mut hard: Option<&HardNegative> = None;
    let p_hard = if pool.hard.is_empty() { 0.0 } else { cfg.p_hard };
    let win_after = (cfg.window_end.max(0) as usize + 5) * hop;
    // Places an utterance so that its speech starts at `start` (samples); returns where its
    // speech ends.
    fn place(u: &Utterance, start: isize, cfg: &ComposeConfig, rng: &mut impl Rng, placed: &mut Vec<Placed>) -> usize {
        let (audio, said, active) = perturb(u, cfg, rng);
        let at = start - active.0 as isize;
        let end = (at + active.1 as isize).max(0) as usize;
        placed.push(Placed { audio, at, said, active });
        end
    }
    if r < cfg.p_keyword {
        let kw = if rng.gen::<f32>() < cfg.p_real_keyword || pool.keywords_synth.is_empty() {
            pick(&pool.keywords_real, rng).or_else(|| pick(&pool.keywords_synth, rng))
        } else {
            pick(&pool.keywords_synth, rng)
        };
        if let Some(kw) = kw {
            let len = (kw.active.1 - kw.active.0) as isize;
            // The word ends somewhere that leaves room for its window before the sequence ends.
            let latest_end = n as isize - win_after as isize;
            let earliest_end = (len + (0.3 * RATE as f32) as isize).min(latest_end);
            let end = rng.gen_range(earliest_end..=latest_end.max(earliest_end));
            let start = end - len;
            // Sometimes another word or running speech just before it.
            if rng.gen_bool(0.4) {
                let other = if rng.gen_bool(0.5) { pick(&pool.words, rng) } else { pick(&pool.speech, rng) };
                if let Some(o) = other {
                    let gap = (rng.gen_range(0.05f32..0.6) * RATE as f32) as isize;
                    let olen = (o.active.1 - o.active.0) as isize;
                    let ostart = start - gap - olen;
                    // Only sentences without keywords here: a keyword ending inside the
                    // other utterance would need its own window.
                    if o.said.is_empty() {
                        place(o, ostart, cfg, rng, &mut placed);
                    }
                }
            }
            place(kw, start, cfg, rng, &mut placed);
            let after = end + win_after as isize + (rng.gen_range(0.05f32..0.4) * RATE as f32) as isize;
            let second = if rng.gen::<f32>() < cfg.p_second_keyword {
                if rng.gen::<f32>() < cfg.p_real_keyword {
                    pick(&pool.keywords_real, rng)
                } else {
                    pick(&pool.keywords_synth, rng)
                }
            } else {
                None
            };
            match second {
                // A second keyword after the first one's window, if it and its own window fit.
                Some(k2) if after + (k2.active.1 - k2.active.0) as isize + win_after as isize <= n as isize => {
                    place(k2, after, cfg, rng, &mut placed);
                }
                _ => {
                    if rng.gen_bool(0.2) {
                        if let Some(o) = pick(&pool.words, rng) {
                            let gap = (rng.gen_range(0.1f32..0.5) * RATE as f32) as isize;
                            place(o, end + gap, cfg, rng, &mut placed);
                        }
                    }
                }
            }
        }
    } else if r < cfg.p_keyword + cfg.p_speech {
        if let Some(s) = pick(&pool.speech, rng) {
            // A crop of a sentence: anywhere in it, often from its start.
            let (a, b) = s.active;
            let span = (b - a) as isize;
            let offset = if span > n as isize && rng.gen_bool(0.7) { rng.gen_range(0..span - n as isize / 2) } else { 0 };
            let lead = rng.gen_range(0..(n as isize / 3).max(1));
            place(s, lead - offset, cfg, rng, &mut placed);
        }
    } else if r < cfg.p_keyword + cfg.p_speech + cfg.p_words {
        let mut t = rng.gen_range(0..(0.8 * RATE as f32) as isize);
        for _ in 0..rng.gen_range(1..=3) {
            let Some(w) = pick(&pool.words, rng) else { break };
            let end = place(w, t, cfg, rng, &mut placed);
            t = end as isize + (rng.gen_range(0.1f32..0.8) * RATE as f32) as isize;
            if t >= n as isize {
                break;
            }
        }
    } else if r < cfg.p_keyword + cfg.p_speech + cfg.p_words + p_hard {
        hard = pick(&pool.hard, rng);
    }

    // Mix the speech track.
    let mut speech = vec![0.0f32; n];
    let mut labels = vec![Target::Background(SILENCE); frames];
    let mut speechy = vec![false; frames];
    let mut windows = Vec::new();
    let mut ignore = vec![false; frames];
    if let Some(h) = hard {
        let off = h.audio.len().saturating_sub(n);
        for (d, s) in speech.iter_mut().zip(&h.audio[off..]) {
            *d = *s;
        }
        let fo = off / hop;
        for (f, ig) in ignore.iter_mut().enumerate() {
            *ig = h.ignore.get(fo + f).copied().unwrap_or(false);
        }
        speechy.iter_mut().for_each(|s| *s = true);
    }
    for p in &placed {
        for (i, &v) in p.audio.iter().enumerate() {
            let j = p.at + i as isize;
            if j >= 0 && (j as usize) < n {
                speech[j as usize] += v;
            }
        }
        let (a, b) = ((p.at + p.active.0 as isize).max(0) as usize / hop, ((p.at + p.active.1 as isize).max(0) as usize / hop).min(frames));
        for s in speechy.iter_mut().take((b + cfg.speech_hangover).min(frames)).skip(a.min(frames)) {
            *s = true;
        }
        for k in &p.said {
            let ks = (p.at + k.start as isize).max(0) as usize / hop;
            let ke = (p.at + k.end as isize).max(0) as usize / hop;
            let ws = ke as i64 + cfg.window_start as i64;
            let we = ke as i64 + cfg.window_end as i64;
            // While the word is said (and when its window would not fit), no target.
            let quiet_end = (ws.max(0) as usize).min(frames);
            ignore[ks.min(quiet_end)..quiet_end].iter_mut().for_each(|v| *v = true);
            if ws >= 0 && we < frames as i64 && ke > ks {
                windows.push((ws as usize, we as usize, k.label));
                let tail_end = (we as usize + 1 + cfg.window_tail).min(frames);
                ignore[we as usize + 1..tail_end].iter_mut().for_each(|v| *v = true);
            } else {
                let end = (we.max(0) as usize + 1).min(frames);
                ignore[ks.min(end)..end].iter_mut().for_each(|v| *v = true);
            }
        }
    }
    for (f, t) in labels.iter_mut().enumerate() {
        if ignore[f] {
            *t = Target::Ignore;
        } else if speechy[f] {
            *t = Target::Background(UNKNOWN);
        }
    }
    for &(a, b, l) in &windows {
        for t in labels.iter_mut().take(b + 1).skip(a) {
            *t = Target::Keyword(l);
        }
    }
    // Room, background, level.
    if rng.gen::<f32>() < cfg.p_reverb && speech.iter().any(|&v| v != 0.0) {
        let rt60 = rng.gen_range(0.1f32..0.7);
        let rir = synthetic_rir(rng, rt60);
        speech = filter(&speech, Some(&rir), None);
    }
    // Level and SNR are measured over the words themselves (each utterance's speech span),
    // as eval-stream measures them, not over the pauses of a clip.
    let mut in_speech = vec![false; n];
    if hard.is_some() {
        in_speech.iter_mut().zip(&speech).for_each(|(m, v)| *m = *v != 0.0);
    }
    for p in &placed {
        let a = (p.at + p.active.0 as isize).clamp(0, n as isize) as usize;
        let b = (p.at + p.active.1 as isize).clamp(0, n as isize) as usize;
        in_speech[a..b.max(a)].iter_mut().for_each(|m| *m = true);
    }
    let active: Vec<f32> = speech.iter().zip(&in_speech).filter(|(v, m)| **m && **v != 0.0).map(|(v, _)| *v).collect();
    let speech_rms = if active.is_empty() { 0.0 } else { rms(&active) };
    let level = 10f32.powf(rng.gen_range(cfg.level_db.0..cfg.level_db.1) / 20.0);
    let g = if speech_rms > 0.0 { level / speech_rms } else { 1.0 };
    speech.iter_mut().for_each(|v| *v *= g);
    let noise_rms = if speech_rms > 0.0 {
        level * 10f32.powf(-rng.gen_range(cfg.snr_db.0..cfg.snr_db.1) / 20.0)
    } else {
        10f32.powf(rng.gen_range(-60.0f32..-20.0) / 20.0)
    };
    if rng.gen::<f32>() < cfg.p_noise || speech_rms == 0.0 {
        if let Some(nf) = pick(&pool.noise, rng) {
            if !nf.is_empty() {
                let start = rng.gen_range(0..nf.len());
                let r = rms(&nf[start..(start + n).min(nf.len())]).max(1e-7);
                let gn = noise_rms / r;
                for (i, v) in speech.iter_mut().enumerate() {
                    *v += gn * nf[(start + i) % nf.len()];
                }
            }
        }
    }
    if rng.gen_bool(0.1) {
        // Band-limited recordings (telephone, cheap microphones).
        speech = filter(&speech, None, Some(rng.gen_range(3000.0f32..4500.0)));
    }
    speech.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
    let warp = if rng.gen::<f32>() < cfg.p_vtlp { rng.gen_range(cfg.vtlp.0..cfg.vtlp.1) } else { 1.0 };
    Sequence { warm_up: Vec::new(), audio: speech, labels: SeqLabels { targets: labels, windows }, warp }
}
