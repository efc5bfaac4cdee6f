//! Audio files in (any format symphonia decodes, any rate, any channel count) and the
//! streaming resampler that brings any rate to the front end's 16 kHz.
//!
//! Everything a user can feed in goes through one boundary ([`stream::AudioStream`]): the
//! header is checked before a decoder acts on it ([`header`]), decoding is one packet at a
//! time, decoder panics become errors, and samples come out finite. [`ResampledStream`] adds
//! resampling; whole-file loading ([`load_resampled`], [`decode_file`]) collects the same
//! chunks and refuses more than [`MAX_WHOLE_FILE_SECONDS`] of audio.

pub mod header;
mod resample;
mod stream;

pub use resample::{resample, StreamResampler};
pub use stream::{AudioStream, ResampledStream};

use std::path::{Path, PathBuf};

/// Sample rates accepted from a file or a device. Below 4 kHz speech is gone; above 384 kHz
/// no audio interface records. A rate outside is a broken header (the resampler's buffers
/// also grow with the rate ratio's terms).
pub const MIN_RATE: u32 = 4_000;
pub const MAX_RATE: u32 = 384_000;
/// Channels accepted (symphonia's channel mask has 32 positions).
pub const MAX_CHANNELS: u32 = 32;
/// Longest audio loaded whole into memory (2 h at 16 kHz is 460 MB of f32); longer files
/// must be streamed.
pub const MAX_WHOLE_FILE_SECONDS: f64 = 2.0 * 3600.0;
/// Decoded samples are clipped to this magnitude (+24 dB over full scale: no real decoder
/// output reaches it), so the front end's arithmetic stays finite.
pub const MAX_SAMPLE: f32 = 16.0;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot open audio file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a supported audio file (wav, flac, ogg/vorbis, mp3): {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: no audio track")]
    NoTrack { path: PathBuf },
    /// What the header claims is impossible or would make the decoder misbehave.
    #[error("{path}: {problem}")]
    BadHeader { path: PathBuf, problem: String },
    #[error("{path}: corrupt audio: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: contains no audio samples")]
    Empty { path: PathBuf },
    #[error("{path}: {seconds:.0} s of audio is more than the {max:.0} s that can be loaded whole")]
    TooLong { path: PathBuf, seconds: f64, max: f64 },
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    Resample { from: u32, to: u32, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

pub(crate) fn check_rate(rate: u32) -> Result<(), String> {
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(format!("sample rate {rate} Hz is outside {MIN_RATE}..={MAX_RATE} Hz"));
    }
    Ok(())
}

/// Decoded audio, mixed down to mono.
#[derive(Debug, Clone)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// Averages interleaved channels into `out` (cleared first).
pub fn downmix(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    out.clear();
    let c = channels.max(1);
    if c == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let inv = 1.0 / c as f32;
    out.extend(interleaved.chunks_exact(c).map(|f| f.iter().sum::<f32>() * inv));
}

/// Makes samples safe for the front end: NaN and infinities become silence (one would poison
/// the network's memory for the rest of the stream), the rest is clipped to ±[`MAX_SAMPLE`].
pub fn sanitize(samples: &mut [f32]) {
    for s in samples {
        *s = if s.is_finite() { s.clamp(-MAX_SAMPLE, MAX_SAMPLE) } else { 0.0 };
    }
}

/// Decodes a whole file (at most [`MAX_WHOLE_FILE_SECONDS`]) and averages its channels.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    let mut s = AudioStream::open_limited(path, Some(MAX_WHOLE_FILE_SECONDS))?;
    let mut samples = Vec::new();
    while let Some(c) = s.next_chunk()? {
        samples.extend_from_slice(c);
    }
    Ok(Audio { samples, sample_rate: s.sample_rate() })
}

/// Decodes a file (at most [`MAX_WHOLE_FILE_SECONDS`]) and resamples it to `rate` Hz mono:
/// for short clips. Long audio should go through [`ResampledStream`] chunk by chunk.
pub fn load_resampled(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    let source = AudioStream::open_limited(path, Some(MAX_WHOLE_FILE_SECONDS))?;
    let mut s = ResampledStream::new(source, rate)?;
    let mut out = Vec::new();
    while let Some(c) = s.next_chunk()? {
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// Writes 16-bit mono WAV.
pub fn write_wav(path: &Path, samples: &[f32], rate: u32) -> Result<(), AudioError> {
    let err = |e: hound::Error| AudioError::Write { path: path.into(), reason: e.to_string() };
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// Audio files directly under `dir` (by extension), sorted for reproducibility.
pub fn audio_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && is_audio_path(p)).collect();
    v.sort();
    Ok(v)
}

pub fn is_audio_path(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(), Some("wav" | "flac" | "ogg" | "oga" | "mp3"))
}
