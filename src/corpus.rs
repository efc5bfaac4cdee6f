//! Every real recording in `../shared/data`, with one rule that decides which part of each
//! source a file belongs to: `Train` (gradients), `Dev` (thresholds and model choice) or
//! `Test` (every reported figure). Training, calibration and evaluation all read it from
//! here, so a figure is never reported on a speaker that was trained on or tuned on.
//!
//! The split is by speaker where the source names one (Speech Commands, speechocean762,
//! free spoken digits) and by file otherwise (wake words, Precise, speech-to-intent).

use crate::audio::audio_files_in;
use crate::dataset::{fnv1a, is_held_out_file, is_held_out_speaker, label_index, split_id, SILENCE, UNKNOWN};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Train,
    Dev,
    /// Negative audio kept out of training (and out of hard-negative mining) for choosing
    /// thresholds: the model has never seen it, so it scores it as it will score new audio.
    /// Holds no keyword clips.
    Calib,
    Test,
}

/// How the non-test ids of every source are shared between training and dev (choosing
/// checkpoints, thresholds and recipes). The test part never depends on it.
///
/// Dev is drawn with a salted hash, so a larger dev contains every smaller one. Two shares
/// are in use: 15% (the default, and every model before r23) keeps 10 Speech Commands
/// speakers (101 keyword clips) out, too few to rank runs a few points apart; 30% keeps 22
/// (315 clips) out and trains on 67 speakers instead of 79. Recipes are compared at 30%; a
/// chosen recipe is trained again at 15% to ship, with more speakers to learn from.
///
/// A model records its split in its card (`provenance.split`), and the commands that read
/// dev or calibration audio for a model take the split from there, so its dev figures are
/// always on audio it never trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// Share (percent) of the non-test ids kept out of training as dev.
    pub dev_percent: u64,
}

impl Default for Split {
    fn default() -> Self {
        Self { dev_percent: 15 }
    }
}

impl Split {
    /// The split a model was trained on (models from before the record: the default).
    pub fn of(provenance: &serde_json::Value) -> Self {
        provenance.pointer("/split/dev_percent").and_then(|v| v.as_u64()).map_or_else(Self::default, |dev_percent| Self { dev_percent })
    }

    /// What a trained model's card records.
    pub fn record(self) -> serde_json::Value {
        serde_json::json!({
            "held_out_speaker_percent": crate::dataset::HELD_OUT_SPEAKER_PERCENT,
            "dev_percent": self.dev_percent,
            "calib_percent": CALIB_PERCENT,
        })
    }

    pub fn validate(self) -> Result<(), String> {
        if self.dev_percent >= 100 {
            return Err(format!("split.dev_percent must be below 100, not {}", self.dev_percent));
        }
        Ok(())
    }

    /// Which part an id is in, given whether it is held out for testing. Dev is drawn with a
    /// salted hash from what is left, so it is independent of the test rule.
    pub fn part_with(self, test: bool, id: &str) -> Part {
        if test {
            Part::Test
        } else if fnv1a(&format!("{id}#dev")) % 100 < self.dev_percent {
            Part::Dev
        } else {
            Part::Train
        }
    }

    /// The part of a speaker (or file) id for sources split at 35% (Speech Commands' rule).
    pub fn part_of(self, id: &str) -> Part {
        self.part_with(is_held_out_speaker(id), id)
    }

    /// speech_to_intent keeps its earlier rule (half of the files by name are test), so
    /// figures stay comparable with models trained before this split existed.
    pub fn part_of_s2i(self, file_name: &str) -> Part {
        self.part_with(is_held_out_file(file_name), file_name)
    }
}

/// Share (percent) of the training ids of every negative-only source moved to `Calib`.
pub const CALIB_PERCENT: u64 = 25;

/// `part` for a source that gives negatives only (or, for speechocean762, mostly): a salted
/// share of the training ids becomes the calibration part.
pub fn negative_part(part: Part, id: &str) -> Part {
    if part == Part::Train && fnv1a(&format!("{id}#calib")) % 100 < CALIB_PERCENT {
        Part::Calib
    } else {
        part
    }
}

/// Noise recordings are split in time: [0, 0.7) train (and calibration, which mixes no
/// noise), [0.7, 0.8) dev, [0.8, 1] test.
pub fn noise_span(part: Part, len: usize) -> (usize, usize) {
    let at = |f: f64| (len as f64 * f) as usize;
    match part {
        Part::Train | Part::Calib => (0, at(0.7)),
        Part::Dev => (at(0.7), at(0.8)),
        Part::Test => (at(0.8), len),
    }
}

/// Where a negative recording comes from, and what kind of audio it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeKind {
    /// Running speech: sentences, orders.
    Continuous,
    /// One word or short phrase per file.
    IsolatedWords,
}

#[derive(Debug, Clone)]
pub struct KeywordClip {
    pub path: PathBuf,
    /// Index into [`crate::dataset::LABELS`].
    pub label: usize,
    pub speaker: String,
    pub source: &'static str,
    pub part: Part,
}

#[derive(Debug, Clone)]
pub struct NegativeFile {
    pub path: PathBuf,
    pub source: &'static str,
    pub kind: NegativeKind,
    pub part: Part,
}

/// A keyword said inside a sentence, from the forced alignment (seconds from file start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordSegment {
    pub label: usize,
    pub start: f32,
    pub end: f32,
}

/// A read sentence with the keywords it contains (speechocean762).
#[derive(Debug, Clone)]
pub struct Sentence {
    pub path: PathBuf,
    pub speaker: String,
    pub part: Part,
    pub keywords: Vec<KeywordSegment>,
    /// Whether the aligner placed every word (sentences it could not align may still say a
    /// keyword somewhere, so they are never used as positives).
    pub aligned: bool,
    /// Whether the transcript says a keyword at all.
    pub says_keyword: bool,
}

#[derive(Debug, Default)]
pub struct Corpus {
    /// The data folder it was read from.
    pub root: PathBuf,
    /// The split the parts below were assigned by.
    pub split: Split,
    pub keywords: Vec<KeywordClip>,
    /// Speech Commands `_silence_` clips (for clip accuracy only).
    pub silence: Vec<KeywordClip>,
    /// Non-keyword clips labelled `_unknown_` in Speech Commands (clip accuracy and negatives).
    pub unknown: Vec<KeywordClip>,
    pub negatives: Vec<NegativeFile>,
    pub sentences: Vec<Sentence>,
    pub noise: Vec<PathBuf>,
}

impl Corpus {
    pub fn keywords_in(&self, part: Part, source: Option<&str>) -> impl Iterator<Item = &KeywordClip> + '_ {
        let source = source.map(str::to_string);
        self.keywords.iter().filter(move |c| c.part == part && source.as_deref().is_none_or(|s| s == c.source))
    }
}

fn class_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("cannot read folder {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string(), p))
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn stem(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string()
}

/// Speech Commands-style folders: keyword classes become positives, other words
/// negatives (isolated words), `_silence_` is kept apart.
fn speech_commands(c: &mut Corpus, root: &Path, source: &'static str) -> Result<()> {
    let split = c.split;
    for (name, dir) in class_dirs(root)? {
        for path in audio_files_in(&dir)? {
            let speaker = split_id(&path);
            let part = split.part_of(&speaker);
            match label_index(&name) {
                Some(SILENCE) => c.silence.push(KeywordClip { path, label: SILENCE, speaker, source, part }),
                Some(l) if l < UNKNOWN => c.keywords.push(KeywordClip { path, label: l, speaker, source, part }),
                _ => {
                    c.unknown.push(KeywordClip { path: path.clone(), label: UNKNOWN, speaker, source, part });
                    c.negatives.push(NegativeFile { path, source, kind: NegativeKind::IsolatedWords, part });
                }
            }
        }
    }
    Ok(())
}

/// `transcripts.tsv` / `alignments.tsv` of speechocean762.
fn speechocean(c: &mut Corpus, root: &Path) -> Result<()> {
    let read = |name: &str| std::fs::read_to_string(root.join(name)).with_context(|| format!("reading {}", root.join(name).display()));
    let transcripts = read("transcripts.tsv")?;
    let alignments = read("alignments.tsv")?;
    let mut says: HashMap<String, bool> = HashMap::new();
    for line in transcripts.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 5 {
            says.insert(f[0].to_string(), f[4].split_whitespace().any(|w| label_index(w).is_some_and(|l| l < UNKNOWN)));
        }
    }
    let mut segs: HashMap<String, Vec<KeywordSegment>> = HashMap::new();
    let mut aligned: HashMap<String, ()> = HashMap::new();
    for line in alignments.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        aligned.insert(f[0].to_string(), ());
        let (Ok(start), Ok(end)) = (f[2].parse::<f32>(), f[3].parse::<f32>()) else { continue };
        if let Some(l) = label_index(&f[1].to_lowercase()).filter(|&l| l < UNKNOWN) {
            segs.entry(f[0].to_string()).or_default().push(KeywordSegment { label: l, start, end });
        }
    }
    for (speaker, dir) in class_dirs(root)? {
        let part = negative_part(c.split.part_of(&speaker), &speaker);
        for path in audio_files_in(&dir)? {
            let utt = stem(&path);
            c.sentences.push(Sentence {
                keywords: segs.remove(&utt).unwrap_or_default(),
                aligned: aligned.contains_key(&utt),
                says_keyword: says.get(&utt).copied().unwrap_or(true),
                path,
                speaker: speaker.clone(),
                part,
            });
        }
    }
    Ok(())
}

/// Reads every source that is present under `data` (missing optional sources are skipped;
/// Speech Commands v0.02 and the noise folder are required), its parts assigned by `split`.
pub fn load(data: &Path, split: Split) -> Result<Corpus> {
    split.validate().map_err(anyhow::Error::msg)?;
    let mut c = Corpus { root: data.to_path_buf(), split, ..Default::default() };
    speech_commands(&mut c, &data.join("speech_commands_v2_test_a"), "speech_commands_v2")?;
    let v1 = data.join("speech_commands_v1_sample");
    if v1.is_dir() {
        speech_commands(&mut c, &v1, "speech_commands_v1")?;
    }
    let so = data.join("speechocean762_a");
    if so.is_dir() {
        speechocean(&mut c, &so)?;
    }
    let s2i = data.join("speech_to_intent_a");
    if s2i.is_dir() {
        for path in audio_files_in(&s2i)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            c.negatives.push(NegativeFile {
                part: negative_part(c.split.part_of_s2i(&name), &name),
                path,
                source: "speech_to_intent",
                kind: NegativeKind::Continuous,
            });
        }
    }
    for (folder, source) in [("wake_words_a", "wake_words"), ("precise_community", "precise_community")] {
        let root = data.join(folder);
        if !root.is_dir() {
            continue;
        }
        for (_, dir) in class_dirs(&root)? {
            for path in audio_files_in(&dir)? {
                let id = stem(&path);
                let part = negative_part(c.split.part_of(&id), &id);
                c.negatives.push(NegativeFile { path, source, kind: NegativeKind::IsolatedWords, part });
            }
        }
    }
    let digits = data.join("free_spoken_digits");
    if digits.is_dir() {
        for path in audio_files_in(&digits)? {
            // <digit>_<speaker>_<index>
            let speaker = stem(&path).split('_').nth(1).unwrap_or_default().to_string();
            c.negatives.push(NegativeFile {
                part: negative_part(c.split.part_of(&speaker), &speaker),
                path,
                source: "free_spoken_digits",
                kind: NegativeKind::IsolatedWords,
            });
        }
    }
    c.noise = audio_files_in(&data.join("noise")).with_context(|| format!("reading {}", data.join("noise").display()))?;
    if c.keywords.is_empty() {
        anyhow::bail!("no keyword clips under {}", data.display());
    }
    Ok(c)
}
