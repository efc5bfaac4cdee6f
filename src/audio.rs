//! Audio files in (any format symphonia decodes, any rate, any channel count) and the
//! streaming resampler that brings any rate to the front end's 16 kHz.

use rubato::{FftFixedIn, Resampler};
use std::path::{Path, PathBuf};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot open audio file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a supported audio file (wav, flac, ogg/vorbis, mp3): {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: no audio track")]
    NoTrack { path: PathBuf },
    #[error("{path}: corrupt audio: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: contains no audio samples")]
    Empty { path: PathBuf },
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    Resample { from: u32, to: u32, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
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

/// Decodes a whole file and averages its channels.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    let file = std::fs::File::open(path).map_err(|source| AudioError::Io { path: path.into(), source })?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| AudioError::Unsupported { path: path.into(), reason: e.to_string() })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::NoTrack { path: path.into() })?;
    let track_id = track.id;
    let mut sample_rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| AudioError::Unsupported { path: path.into(), reason: e.to_string() })?;
    let mut samples = Vec::new();
    let mut mono = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(AudioError::Corrupt { path: path.into(), reason: e.to_string() }),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet: skip it, as players do.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(AudioError::Corrupt { path: path.into(), reason: e.to_string() }),
        };
        let spec = *decoded.spec();
        sample_rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let b = match &mut buf {
            Some(b) if b.capacity() as u64 >= needed * channels as u64 => b,
            _ => buf.insert(SampleBuffer::new(needed, spec)),
        };
        b.copy_interleaved_ref(decoded);
        downmix(b.samples(), channels, &mut mono);
        samples.extend_from_slice(&mono);
    }
    if samples.is_empty() {
        return Err(AudioError::Empty { path: path.into() });
    }
    if sample_rate == 0 {
        return Err(AudioError::Corrupt { path: path.into(), reason: "no sample rate".into() });
    }
    Ok(Audio { samples, sample_rate })
}

/// Decodes a file and resamples it to `rate` Hz mono.
pub fn load_resampled(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    let a = decode_file(path)?;
    resample(&a.samples, a.sample_rate, rate)
}

/// Resamples a whole buffer; the output is aligned with the input (the resampler's delay
/// is removed) and has round(len * to / from) samples.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut rs = StreamResampler::new(from, to)?;
    let want = (samples.len() as f64 * to as f64 / from as f64).round() as usize;
    let delay = rs.delay();
    let mut out = Vec::with_capacity(want + delay + 4096);
    rs.push(samples, |c| out.extend_from_slice(c))?;
    // Flush with silence until the delayed tail has come out.
    let zeros = vec![0.0; 1024];
    while out.len() < want + delay {
        rs.push(&zeros, |c| out.extend_from_slice(c))?;
    }
    out.drain(..delay.min(out.len()));
    out.truncate(want);
    Ok(out)
}

/// Streaming mono resampler with buffers planned once: push any number of samples, get
/// resampled chunks back. Pass-through when the rates match.
pub struct StreamResampler {
    from: u32,
    to: u32,
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    filled: usize,
    out: Vec<Vec<f32>>,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let err = |reason: String| AudioError::Resample { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("rate must be positive".into()));
        }
        if from == to {
            return Ok(Self { from, to, inner: None, pending: Vec::new(), filled: 0, out: Vec::new() });
        }
        let inner = FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1).map_err(|e| err(e.to_string()))?;
        let pending = vec![0.0; inner.input_frames_next()];
        let out = vec![vec![0.0; inner.output_frames_max()]];
        Ok(Self { from, to, inner: Some(inner), pending, filled: 0, out })
    }

    pub fn input_rate(&self) -> u32 {
        self.from
    }
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Output samples of delay the resampler adds.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    pub fn push(&mut self, samples: &[f32], mut on_out: impl FnMut(&[f32])) -> Result<(), AudioError> {
        let Some(inner) = self.inner.as_mut() else {
            on_out(samples);
            return Ok(());
        };
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.pending.len() - self.filled).min(rest.len());
            self.pending[self.filled..self.filled + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == self.pending.len() {
                self.filled = 0;
                let (_, n) = inner
                    .process_into_buffer(&[&self.pending], &mut self.out, None)
                    .map_err(|e| AudioError::Resample { from: self.from, to: self.to, reason: e.to_string() })?;
                on_out(&self.out[0][..n]);
            }
        }
        Ok(())
    }
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
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_audio_path(p))
        .collect();
    v.sort();
    Ok(v)
}

pub fn is_audio_path(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("wav" | "flac" | "ogg" | "oga" | "mp3")
    )
}
