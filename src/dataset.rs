//! Class labels, speaker ids in file names, and the hash rules that hold speakers (or
//! files) out of training. [`crate::corpus`] applies them to every source; training and
//! evaluation both go through it, so an accuracy is never reported on a speaker that was
//! trained on.

use std::path::Path;

/// The 12 Speech Commands benchmark classes, in model order.
pub const LABELS: [&str; 12] = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"];
pub const UNKNOWN: usize = 10;
pub const SILENCE: usize = 11;

/// Share of real Speech Commands speakers (percent) held out of training.
pub const HELD_OUT_SPEAKER_PERCENT: u64 = 35;

/// Stable 64-bit FNV-1a: the split must not change between runs, machines or versions.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Whether a Speech Commands speaker id is in the held-out (never trained on) part.
pub fn is_held_out_speaker(speaker: &str) -> bool {
    fnv1a(speaker) % 100 < HELD_OUT_SPEAKER_PERCENT
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

/// Words that, said alone, sound like a keyword: "know" is "no", "write" and "rite" are
/// "right", "yesss" is a drawn-out "yes". Nothing in an isolated clip tells them apart, so as
/// `_unknown_` training negatives they only teach the network to doubt the keyword itself
/// (and mining then feeds them back again and again). Synthesis leaves them out and training
/// skips them in synthetic folders made before that.
pub const KEYWORD_HOMOPHONES: [&str; 5] = ["know", "write", "rite", "wright", "yesss"];

pub fn is_keyword_homophone(word: &str) -> bool {
    KEYWORD_HOMOPHONES.contains(&word)
}

pub fn label_index(name: &str) -> Option<usize> {
    LABELS.iter().position(|l| *l == name)
}
