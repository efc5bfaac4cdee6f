//! Writes the held-out negative audio that `spikeword eval-stream` counts false alarms on,
//! one 16 kHz WAV per source (its files end to end, in the same order), so that another
//! engine can be run on exactly the same audio (scripts/compare-microwakeword.py).
//!
//!     cargo run --release --example export_negatives -- [--data ../shared/data] [--part test] [--dev-percent 15] --out DIR
//!
//! Prints one line per source: file name, files, hours. Generated audio, never committed.

use anyhow::{bail, Context, Result};
use spikeword::audio::{load_resampled, write_wav};
use spikeword::corpus::{self, Part};
use spikeword::eval::stream::negative_streams;
use std::path::PathBuf;

const RATE: u32 = 16_000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let data = PathBuf::from(get("--data").unwrap_or_else(|| "../shared/data".into()));
    let Some(out) = get("--out").map(PathBuf::from) else { bail!("usage: export_negatives [--data DIR] [--part test|dev|calib] [--dev-percent N] --out DIR") };
    let part = match get("--part").as_deref().unwrap_or("test") {
        "test" => Part::Test,
        "dev" => Part::Dev,
        "calib" => Part::Calib,
        other => bail!("--part must be test, dev or calib (never train), not {other:?}"),
    };
    // Test never depends on the split; dev and calib are those of a model trained with this share.
    let split = match get("--dev-percent") {
        Some(v) => corpus::Split { dev_percent: v.parse().with_context(|| format!("--dev-percent {v:?} is not a whole number"))? },
        None => corpus::Split::default(),
    };
    let corpus = corpus::load(&data, split)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for s in negative_streams(&corpus, part, usize::MAX) {
        let mut audio = Vec::new();
        let mut files = 0;
        for f in &s.files {
            match load_resampled(f.path, RATE) {
                Ok(x) => {
                    audio.extend(x);
                    files += 1;
                }
                Err(e) => eprintln!("skipping {}: {e}", f.path.display()),
            }
        }
        let name = format!("{}-{}.wav", s.source, format!("{:?}", s.kind).to_lowercase());
        write_wav(&out.join(&name), &audio, RATE)?;
        println!("{name}\t{files}\t{:.3}", audio.len() as f64 / RATE as f64 / 3600.0);
    }
    Ok(())
}
