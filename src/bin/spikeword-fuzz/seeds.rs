//! Valid files to start from: the test assets (FLAC, WAV, Ogg Vorbis, MP3), WAVs of every
//! sample format symphonia reads (8-32 bit PCM, float, A-law, mu-law, IMA and MS ADPCM, 1-6
//! channels, 8-48 kHz), a WAV with a LIST chunk, an MP3 behind an ID3v2 tag; and for the
//! model target the shipped model and small models of other shapes.

use spikeword::audio;
use spikeword::dataset::LABELS;
use spikeword::detect::DetectionConfig;
use spikeword::features::FrontEndConfig;
use spikeword::model::{Model, ModelCard, FORMAT_VERSION};
use spikeword::network::{Architecture, LayerSpec, Weights};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_model() -> Option<Model> {
    Model::load(&repo().join("models").join(spikeword::model::DEFAULT_MODEL_FILE)).ok()
}

pub fn small_model(units: &[usize], seed: u64) -> Model {
    let arch = Architecture { input_dim: 40, layers: units.iter().map(|&u| LayerSpec::new(4, 4, 20.0, u)).collect(), classes: 12, dt: 1.0, input_delta: 0.0 };
    let card = ModelCard {
        format_version: FORMAT_VERSION,
        name: "fuzz-seed".into(),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        frontend: FrontEndConfig::default(),
        architecture: arch.clone(),
        detection: DetectionConfig::default(),
        provenance: serde_json::json!({"made_by": "spikeword-fuzz"}),
        metrics: serde_json::Value::Null,
    };
    Model { card, weights: Weights::random(&arch, seed) }
}

pub fn model_seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    if let Ok(b) = std::fs::read(repo().join("models").join(spikeword::model::DEFAULT_MODEL_FILE)) {
        v.push(b);
    }
    for (units, seed) in [(&[16usize, 8][..], 1), (&[8][..], 2), (&[12, 6, 4][..], 3)] {
        if let Ok(b) = small_model(units, seed).to_bytes() {
            v.push(b);
        }
    }
    v
}

pub fn audio_seeds(extra: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut dirs = vec![repo().join("assets")];
    dirs.extend(extra.iter().cloned());
    for d in dirs {
        for f in audio::audio_files_in(&d).unwrap_or_default() {
            if let Ok(b) = std::fs::read(&f) {
                v.push(b);
            }
        }
    }
    // 0.3 s of a real word, re-encoded in every sample format.
    let word = audio::load_resampled(&repo().join("assets").join("yes_0cb74144.flac"), 16_000).unwrap_or_default();
    let word = &word[word.len().min(4000)..word.len().min(8800)];
    for (rate, channels, bits, float) in
        [(16_000, 1, 16, false), (8_000, 1, 8, false), (22_050, 2, 24, false), (48_000, 1, 32, false), (44_100, 2, 32, true), (16_000, 6, 16, false)]
    {
        if let Some(b) = hound_wav(word, rate, channels, bits, float) {
            v.push(b);
        }
    }
    let pcm16: Vec<u8> = word.iter().flat_map(|&s| ((s * 32767.0) as i16).to_le_bytes()).collect();
    for tag in [6u16, 7] {
        // A-law / mu-law: one byte per sample (the values need not be a faithful encoding).
        let data: Vec<u8> = pcm16.chunks(2).map(|c| c[1] ^ 0x55).collect();
        v.push(wav(tag, 1, 16_000, 8, 1, &[], &[], &data));
    }
    v.push(ima_adpcm(word));
    v.push(ms_adpcm(word));
    let list = [b"LIST".as_slice(), &26u32.to_le_bytes(), b"INFO", b"INAM", &13u32.to_le_bytes(), b"spikeword yes\0"].concat();
    v.push(wav(1, 1, 16_000, 16, 2, &[], &list, &pcm16));
    if let Ok(mp3) = std::fs::read(repo().join("assets").join("yes_0cb74144.mp3")) {
        let frame = [b"TIT2".as_slice(), &13u32.to_be_bytes(), &[0, 0, 0], b"spikeword ye"].concat();
        let mut tag = b"ID3\x03\x00\x00".to_vec();
        tag.extend_from_slice(&(frame.len() as u32).to_be_bytes()); // < 128: syncsafe as is
        tag.extend_from_slice(&frame);
        tag.extend_from_slice(&mp3);
        v.push(tag);
    }
    v.retain(|b| !b.is_empty());
    v
}

fn hound_wav(x: &[f32], rate: u32, channels: u16, bits: u16, float: bool) -> Option<Vec<u8>> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    let mut cur = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cur, spec).ok()?;
    let n = x.len() * rate as usize / 16_000;
    for i in 0..n {
        let s = x[i * 16_000 / rate as usize];
        for c in 0..channels {
            let s = s * (1.0 - 0.1 * c as f32);
            let r = match (float, bits) {
                (true, _) => w.write_sample(s),
                (false, 8) => w.write_sample((s * 127.0) as i8),
                (false, 16) => w.write_sample((s * 32767.0) as i16),
                (false, 24) => w.write_sample((s * 8_388_607.0) as i32),
                _ => w.write_sample((s * 2_147_483_647.0) as i32),
            };
            r.ok()?;
        }
    }
    w.finalize().ok()?;
    Some(cur.into_inner())
}

/// A WAV file from its parts: `fmt ` fields, extra `fmt ` bytes, chunks before `data`, data.
#[allow(clippy::too_many_arguments)]
fn wav(tag: u16, channels: u16, rate: u32, bits: u16, block_align: u16, fmt_extra: &[u8], before: &[u8], data: &[u8]) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    fmt.extend_from_slice(fmt_extra);
    let mut body = b"WAVEfmt ".to_vec();
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(before);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Nibbles from the signal's sign changes: decodes to something, which is all a seed needs.
fn nibbles(x: &[f32], n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let a = x.get(2 * i).copied().unwrap_or(0.0);
            let b = x.get(2 * i + 1).copied().unwrap_or(0.0);
            let q = |v: f32| ((v * 8.0).clamp(-8.0, 7.0) as i8 as u8) & 0x0f;
            q(a) | q(b) << 4
        })
        .collect()
}

fn ima_adpcm(x: &[f32]) -> Vec<u8> {
    let (block, per_block) = (256usize, 505u16);
    let mut data = Vec::new();
    for b in 0..4 {
        data.extend_from_slice(&0i16.to_le_bytes());
        data.extend_from_slice(&[10, 0]);
        data.extend_from_slice(&nibbles(&x[(b * 1000).min(x.len())..], block - 4));
    }
    let fact = [b"fact".as_slice(), &4u32.to_le_bytes(), &(4 * per_block as u32).to_le_bytes()].concat();
    wav(0x11, 1, 16_000, 4, block as u16, &[&2u16.to_le_bytes()[..], &per_block.to_le_bytes()].concat(), &fact, &data)
}

fn ms_adpcm(x: &[f32]) -> Vec<u8> {
    let (block, per_block) = (256usize, 500u16);
    let coefs: [(i16, i16); 7] = [(256, 0), (512, -256), (0, 0), (192, 64), (240, 0), (460, -208), (392, -232)];
    let mut extra = Vec::new();
    extra.extend_from_slice(&32u16.to_le_bytes());
    extra.extend_from_slice(&per_block.to_le_bytes());
    extra.extend_from_slice(&7u16.to_le_bytes());
    for (a, b) in coefs {
        extra.extend_from_slice(&a.to_le_bytes());
        extra.extend_from_slice(&b.to_le_bytes());
    }
    let mut data = Vec::new();
    for b in 0..4 {
        data.push(0);
        data.extend_from_slice(&16i16.to_le_bytes());
        data.extend_from_slice(&0i16.to_le_bytes());
        data.extend_from_slice(&0i16.to_le_bytes());
        data.extend_from_slice(&nibbles(&x[(b * 1000).min(x.len())..], block - 7));
    }
    wav(0x0002, 1, 16_000, 4, block as u16, &extra, &[], &data)
}

/// Every regular file in `dir` (a crash folder, for replay), sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect()).unwrap_or_default();
    v.sort();
    v
}
