//! Where the clips come from and which are held out. Training and evaluation both use
//! these rules, so an accuracy is never reported on a speaker that was trained on.

use crate::audio::{audio_files_in, is_audio_path};
use std::path::{Path, PathBuf};

/// The 12 Speech Commands benchmark classes, in model order.
pub const LABELS: [&str; 12] = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"];
pub const UNKNOWN: usize = 10;
pub const SILENCE: usize = 11;

/// Share of real Speech Commands speakers (percent) held out of training.
pub const HELD_OUT_SPEAKER_PERCENT: u64 = 35;
/// Share of synthetic voices (percent) held out for synthetic validation.
pub const HELD_OUT_VOICE_PERCENT: u64 = 15;

/// Stable 64-bit FNV-1a: the split must not change between runs, machines or versions.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Whether a Speech Commands speaker id is in the held-out (never trained on) part.
pub fn is_held_out_speaker(speaker: &str) -> bool {
    fnv1a(speaker) % 100 < HELD_OUT_SPEAKER_PERCENT
}

pub fn is_held_out_voice(voice: &str) -> bool {
    fnv1a(voice) % 100 < HELD_OUT_VOICE_PERCENT
}

/// Whether a file with no speaker id (continuous speech, noise recordings) is held out:
/// half of them, by name.
pub fn is_held_out_file(name: &str) -> bool {
    fnv1a(name).is_multiple_of(2)
}

/// The speaker (or voice) of a clip named like Speech Commands: `<speaker>_nohash_<n>`,
/// or `<word>_<speaker>_nohash_<n>` in `_unknown_`.
pub fn speaker_of(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let before = stem.split("_nohash_").next()?;
    if before.len() == stem.len() {
        return None;
    }
    Some(before.rsplit('_').next()?.to_string())
}

/// The id the split is decided on: the speaker where the name has one, else the file stem
/// (`_silence_` clips, for instance).
pub fn split_id(path: &Path) -> String {
    speaker_of(path).unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string())
}

pub fn label_index(name: &str) -> Option<usize> {
    LABELS.iter().position(|l| *l == name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Speech Commands v0.02 (real voices).
    Real,
    /// Speech Commands v0.01 sample (real voices).
    RealV1,
    /// Text to speech.
    Synth,
    /// Free spoken digits (8 kHz, always `_unknown_`).
    Digits,
    /// Crops of continuous non-keyword speech (`_unknown_`).
    Continuous,
}

#[derive(Debug, Clone)]
pub struct Clip {
    pub path: PathBuf,
    pub label: usize,
    pub source: Source,
    pub speaker: String,
}

/// Clips of a folder laid out like Speech Commands (one sub-folder per class); words that
/// are not among `labels` count as `_unknown_` when `map_unknown`.
pub fn class_folder_clips(root: &Path, source: Source, map_unknown: bool) -> std::io::Result<Vec<Clip>> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let label = match label_index(&name) {
            Some(l) => l,
            None if map_unknown => UNKNOWN,
            None => continue,
        };
        for path in audio_files_in(&dir)? {
            let speaker = split_id(&path);
            out.push(Clip { path, label, source, speaker });
        }
    }
    Ok(out)
}

/// All audio files under `dir`, recursively, sorted.
pub fn audio_files_recursive(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_audio_path(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The training and validation clip lists built from the shared data folder and the
/// synthetic folder.
#[derive(Debug, Default)]
pub struct Split {
    pub train: Vec<Clip>,
    /// Real Speech Commands clips of held-out speakers.
    pub val_real: Vec<Clip>,
    /// Synthetic clips of held-out voices.
    pub val_synth: Vec<Clip>,
    /// Noise recordings (training part: whole files, cropped later by the augmenter).
    pub noise: Vec<PathBuf>,
}

pub fn build_split(data: &Path, synth: Option<&Path>) -> anyhow::Result<Split> {
    use anyhow::Context;
    let mut s = Split::default();
    let sc2 = data.join("speech_commands_v2_test_a");
    for c in class_folder_clips(&sc2, Source::Real, false).with_context(|| format!("reading {}", sc2.display()))? {
        if is_held_out_speaker(&c.speaker) {
            s.val_real.push(c);
        } else {
            s.train.push(c);
        }
    }
    let sc1 = data.join("speech_commands_v1_sample");
    if sc1.is_dir() {
        // Same speakers may appear in v0.02: held-out ones stay out entirely.
        s.train.extend(class_folder_clips(&sc1, Source::RealV1, true)?.into_iter().filter(|c| !is_held_out_speaker(&c.speaker)));
    }
    let digits = data.join("free_spoken_digits");
    if digits.is_dir() {
        for path in audio_files_in(&digits)? {
            s.train.push(Clip { path, label: UNKNOWN, source: Source::Digits, speaker: String::new() });
        }
    }
    let s2i = data.join("speech_to_intent_a");
    if s2i.is_dir() {
        for path in audio_files_in(&s2i)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            // The other half measures false alarms per hour.
            if !is_held_out_file(&name) {
                s.train.push(Clip { path, label: UNKNOWN, source: Source::Continuous, speaker: name });
            }
        }
    }
    if let Some(synth) = synth {
        if synth.is_dir() {
            for c in class_folder_clips(synth, Source::Synth, false)? {
                if is_held_out_voice(&c.speaker) {
                    s.val_synth.push(c);
                } else {
                    s.train.push(c);
                }
            }
        }
    }
    s.noise = audio_files_in(&data.join("noise")).with_context(|| format!("reading {}", data.join("noise").display()))?;
    Ok(s)
}
