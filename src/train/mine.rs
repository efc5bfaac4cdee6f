//! Hard-negative mining: stream the training negatives through the current model, as the
//! detector would hear them, and keep the few seconds before every place it fired.

use super::compose::{HardNegative, HardOrigin, Pool};
use crate::detect::is_keyword;
use crate::model::Model;
use crate::network::Mode;
use crate::pipeline::Pipeline;
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;

pub struct MineOptions {
    /// Probability at which a keyword counts as fired.
    pub threshold: f32,
    /// Share of the negative utterances streamed each time.
    pub fraction: f32,
    /// Seconds kept per hit (ending `after_s` after the frame that fired).
    pub seconds: f32,
    pub after_s: f32,
    pub mode: Mode,
}

/// Streams a random share of the pool's words and running speech (concatenated in chunks of
/// about a minute, state carried through) and returns a window around every firing.
pub fn mine(model: &Model, pool: &Pool, opt: &MineOptions, rng: &mut impl Rng) -> Vec<HardNegative> {
    let hop = model.card.frontend.hop_length;
    let rate = model.card.frontend.sample_rate as usize;
    let mut order: Vec<usize> = (0..pool.negative_count()).filter(|_| rng.gen::<f32>() < opt.fraction).collect();
    order.shuffle(rng);
    // Chunks of about 60 s, so both cores work.
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut len = usize::MAX;
    for i in order {
        if len > 60 * rate {
            chunks.push(Vec::new());
            len = 0;
        }
        len += pool.negative(i).map_or(0, |u| u.audio.len());
        if let Some(c) = chunks.last_mut() {
            c.push(i);
        }
    }
    let is_kw: Vec<bool> = model.card.labels.iter().map(|l| is_keyword(l)).collect();
    let refractory = (model.card.detection.refractory_s * rate as f32) as usize / hop;
    let keep = (opt.seconds * rate as f32) as usize;
    let after = (opt.after_s * rate as f32) as usize;
    chunks
        .par_iter()
        .map(|chunk| {
            let (audio, excused) = chunk_audio(pool, chunk, rate);
            let mut p = Pipeline::new(model);
            p.network.set_mode(opt.mode);
            let mut hits = Vec::new();
            let mut quiet_until = 0usize;
            p.push(&audio, |r| {
                let f = r.index as usize;
                if f < quiet_until {
                    return;
                }
                let fired = r.probs.iter().zip(&is_kw).any(|(&q, &k)| k && q >= opt.threshold);
                let s = (f + 1) * hop;
                if fired && !excused.iter().any(|&(a, b)| s >= a && s <= b) {
                    hits.push(s);
                    quiet_until = f + refractory;
                }
            });
            hits.into_iter()
                .map(|s| {
                    let end = (s + after).min(audio.len());
                    let origin = HardOrigin { utterances: chunk.clone(), start: end.saturating_sub(keep), end };
                    cut(&audio, &excused, origin, hop)
                })
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect()
}

/// Cuts the hard negatives a checkpoint lists out of the pool again. Fails if the pool no
/// longer has the utterances they came from (the data changed since the run started).
pub fn rebuild(pool: &Pool, origins: &[HardOrigin], hop: usize, rate: usize) -> Result<Vec<HardNegative>, String> {
    let mut out = Vec::with_capacity(origins.len());
    // Hard negatives of one chunk are listed together: build each chunk's audio once.
    let mut built: Option<&[usize]> = None;
    let (mut audio, mut excused) = (Vec::new(), Vec::new());
    for o in origins {
        if built != Some(o.utterances.as_slice()) {
            if let Some(&bad) = o.utterances.iter().find(|&&i| i >= pool.negative_count()) {
                return Err(format!("negative utterance {bad} is not in the training data ({} now)", pool.negative_count()));
            }
            (audio, excused) = chunk_audio(pool, &o.utterances, rate);
            built = Some(&o.utterances);
        }
        if o.start > o.end || o.end > audio.len() {
            return Err(format!("samples {}..{} lie outside their {} samples of audio", o.start, o.end, audio.len()));
        }
        out.push(cut(&audio, &excused, o.clone(), hop));
    }
    Ok(out)
}

/// The chunk's utterances one after another, and the spans that are not false alarms: each
/// keyword a sentence says, and the detector's usual delay (a second) after it.
fn chunk_audio(pool: &Pool, chunk: &[usize], rate: usize) -> (Vec<f32>, Vec<(usize, usize)>) {
    let mut audio = Vec::new();
    let mut excused = Vec::new();
    for u in chunk.iter().filter_map(|&i| pool.negative(i)) {
        for k in &u.said {
            excused.push((audio.len() + k.start, audio.len() + k.end + rate));
        }
        audio.extend_from_slice(&u.audio);
    }
    (audio, excused)
}

fn cut(audio: &[f32], excused: &[(usize, usize)], origin: HardOrigin, hop: usize) -> HardNegative {
    let (start, end) = (origin.start, origin.end);
    let frames = (end - start) / hop;
    let ignore = (0..frames)
        .map(|f| {
            let at = start + (f + 1) * hop;
            excused.iter().any(|&(a, b)| at >= a && at <= b)
        })
        .collect();
    HardNegative { audio: audio[start..end].to_vec(), ignore, origin }
}
