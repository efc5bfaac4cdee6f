//! Loads the training part of every source into memory (16 kHz mono), ready for
//! [`super::compose`]. Dev and test parts are never read here.

use super::compose::{Pool, Said, Utterance};
use crate::audio::{audio_files_in, load_resampled};
use crate::augment::RATE;
use crate::corpus::{self, noise_span, Corpus, Part};
use crate::dataset::{is_keyword_homophone, label_index, UNKNOWN};
use crate::progress::bar as progress_bar;
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What went into the pool, for the model card.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolSummary {
    pub keyword_clips_real: usize,
    pub keyword_clips_synthetic: usize,
    pub keywords_in_sentences: usize,
    pub words: usize,
    pub speech_files: usize,
    pub hours_words: f64,
    pub hours_speech: f64,
    pub noise_files: usize,
    pub sources: Vec<(String, usize)>,
}

/// An aligned keyword shorter or longer than this is probably misaligned.
const PLAUSIBLE_WORD_S: (f32, f32) = (0.15, 1.0);

enum Job {
    Keyword { path: PathBuf, label: usize, synthetic: bool },
    Word(PathBuf),
    Speech { path: PathBuf, said: Vec<(usize, f32, f32)> },
}

/// Reads the train part of `c` (see [`corpus`]) and, if present, the synthetic clips of
/// `synth` (one folder per keyword, `_unknown_` for other words). `limit` caps each list
/// (tests, quick runs).
pub fn load_pool(c: &Corpus, synth: Option<&Path>, limit: Option<usize>) -> Result<(Pool, PoolSummary)> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut jobs = Vec::new();
    let mut summary = PoolSummary::default();
    let count = |s: &str, summary: &mut PoolSummary| match summary.sources.iter_mut().find(|(k, _)| k == s) {
        Some(e) => e.1 += 1,
        None => summary.sources.push((s.to_string(), 1)),
    };
    for k in c.keywords.iter().filter(|k| k.part == Part::Train).take(limit) {
        jobs.push(Job::Keyword { path: k.path.clone(), label: k.label, synthetic: false });
        count(k.source, &mut summary);
    }
    for n in c.negatives.iter().filter(|n| n.part == Part::Train).take(limit) {
        match n.kind {
            corpus::NegativeKind::IsolatedWords => jobs.push(Job::Word(n.path.clone())),
            corpus::NegativeKind::Continuous => jobs.push(Job::Speech { path: n.path.clone(), said: Vec::new() }),
        }
        count(n.source, &mut summary);
    }
    for s in c.sentences.iter().filter(|s| s.part == Part::Train).take(limit) {
        // A sentence that says a keyword is usable only if every keyword was placed plausibly.
        let plausible = s.keywords.iter().all(|k| (PLAUSIBLE_WORD_S.0..=PLAUSIBLE_WORD_S.1).contains(&(k.end - k.start)));
        if s.says_keyword && (!s.aligned || !plausible || s.keywords.is_empty()) {
            continue;
        }
        jobs.push(Job::Speech { path: s.path.clone(), said: s.keywords.iter().map(|k| (k.label, k.start, k.end)).collect() });
        count("speechocean762", &mut summary);
    }
    if let Some(dir) = synth.filter(|d| d.is_dir()) {
        let mut n = 0;
        for entry in std::fs::read_dir(dir)? {
            let d = entry?.path();
            let Some(name) = d.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if !d.is_dir() {
                continue;
            }
            let files = audio_files_in(&d)?;
            match label_index(&name) {
                Some(l) if l < UNKNOWN => files.into_iter().take(limit).for_each(|path| jobs.push(Job::Keyword { path, label: l, synthetic: true })),
                Some(UNKNOWN) => {
                    let (skip, keep): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| is_keyword_homophone(crate::synth::unknown_word_of(p)));
                    if !skip.is_empty() {
                        eprintln!(
                            "skipping {} synthetic `_unknown_` clips of words that sound like a keyword ({})",
                            skip.len(),
                            crate::dataset::KEYWORD_HOMOPHONES.join(", ")
                        );
                    }
                    keep.into_iter().take(limit).for_each(|path| jobs.push(Job::Word(path)));
                }
                _ => continue,
            }
            n += 1;
        }
        if n > 0 {
            count("synthetic", &mut summary);
        }
    }
    let pb = progress_bar(jobs.len() as u64, "loading training audio");
    let loaded: Vec<Option<(usize, Utterance, bool)>> = jobs
        .par_iter()
        .map(|job| {
            let path = match job {
                Job::Keyword { path, .. } | Job::Word(path) | Job::Speech { path, .. } => path,
            };
            let audio = match load_resampled(path, RATE) {
                Ok(a) if !a.is_empty() => a,
                Ok(_) => {
                    pb.inc(1);
                    return None;
                }
                Err(e) => {
                    pb.println(format!("skipping {}: {e}", path.display()));
                    pb.inc(1);
                    return None;
                }
            };
            pb.inc(1);
            Some(match job {
                Job::Keyword { label, synthetic, .. } => (0, Utterance::keyword(audio, *label), *synthetic),
                Job::Word(_) => (1, Utterance::new(audio, Vec::new()), false),
                Job::Speech { said, .. } => {
                    let s = |t: f32| ((t * RATE as f32) as usize).min(audio.len());
                    let said = said.iter().map(|&(label, a, b)| Said { label, start: s(a), end: s(b) }).collect();
                    (2, Utterance::new(audio, said), false)
                }
            })
        })
        .collect();
    pb.finish_and_clear();
    let mut pool = Pool::default();
    for (kind, u, synthetic) in loaded.into_iter().flatten() {
        match (kind, synthetic) {
            (0, false) => pool.keywords_real.push(u),
            (0, true) => pool.keywords_synth.push(u),
            (1, _) => pool.words.push(u),
            _ => pool.speech.push(u),
        }
    }
    for f in &c.noise {
        if let Ok(x) = load_resampled(f, RATE) {
            let (a, b) = noise_span(Part::Train, x.len());
            pool.noise.push(x[a..b].to_vec());
        }
    }
    if pool.keywords_real.is_empty() && pool.keywords_synth.is_empty() {
        bail!("no training keyword clips under {}", c.root.display());
    }
    let hours = |v: &[Utterance]| v.iter().map(|u| u.audio.len()).sum::<usize>() as f64 / RATE as f64 / 3600.0;
    summary.keyword_clips_real = pool.keywords_real.len();
    summary.keyword_clips_synthetic = pool.keywords_synth.len();
    summary.keywords_in_sentences = pool.speech.iter().map(|u| u.said.len()).sum();
    summary.words = pool.words.len();
    summary.speech_files = pool.speech.len();
    summary.hours_words = hours(&pool.words);
    summary.hours_speech = hours(&pool.speech);
    summary.noise_files = pool.noise.len();
    Ok((pool, summary))
}
