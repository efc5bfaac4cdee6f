//! The decode boundary: a file opened, its header checked ([`super::header`]), then decoded
//! one packet at a time into mono chunks, so memory is bounded by a packet, not by the file.
//! Every call into symphonia runs under `catch_unwind`: a decoder that panics on a damaged
//! file gives the same kind of error as any other corrupt file, and the stream is then dead.

use super::header::{self, Claims};
use super::resample::{output_len, StreamResampler, FLUSH_BLOCK};
use super::{check_rate, downmix, sanitize, AudioError, MAX_CHANNELS};
use std::cell::Cell;
use std::io::{Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

thread_local! {
    /// Depth of [`guarded`] calls on this thread: their panics are expected and reported as
    /// errors, so the panic hook stays quiet for them.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
    /// Where the last guarded panic happened, for the error message.
    static WHERE: std::cell::RefCell<Option<(String, u32)>> = const { std::cell::RefCell::new(None) };
}

/// Runs a third-party decoder call; a panic inside it becomes `Err(message)`.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    GUARDED.with(|g| g.set(g.get() + 1));
    // symphonia's readers and decoders are not UnwindSafe; after a panic the caller treats
    // the stream as dead and never touches them again.
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    r.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        match WHERE.with(|w| w.borrow_mut().take()) {
            // Cargo's registry path up to the crate folder says nothing to the user.
            Some((file, line)) => {
                let file = file.split_once("/registry/src/").and_then(|(_, r)| r.split_once('/')).map_or(file.as_str(), |(_, r)| r);
                format!("the decoder failed ({msg}, at {file}:{line})")
            }
            None => format!("the decoder failed ({msg})"),
        }
    })
}

/// Keeps panics inside [`guarded`] off stderr (they become errors that say the same), and
/// passes every other panic to the hook that was there before.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.try_with(|g| g.get()).unwrap_or(0) == 0 {
                previous(info);
            } else if let Some(l) = info.location() {
                let _ = WHERE.try_with(|w| w.replace(Some((l.file().to_string(), l.line()))));
            }
        }));
    });
}

/// A file being decoded: mono chunks at the file's own rate, one packet at a time.
pub struct AudioStream {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    rate: u32,
    channels: usize,
    claims: Claims,
    buf: Option<SampleBuffer<f32>>,
    chunk: Vec<f32>,
    /// A chunk decoded while opening (to learn the real rate), not yet handed out.
    pending: bool,
    frames: u64,
    max_frames: Option<u64>,
    max_seconds: Option<f64>,
    /// Packets skipped: undecodable, or of another rate or channel count than the stream's.
    pub skipped_packets: u64,
    state: State,
}

enum State {
    Live,
    Ended,
    /// An error (or a decoder panic) ended it; the message is repeated on every later call.
    Dead(String),
}

impl AudioStream {
    /// Opens `path`, checks its header and decodes up to the first audio.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        Self::open_limited(path, None)
    }

    /// As [`open`](Self::open), refusing more than `max_seconds` of audio (stated in the header,
    /// or met while decoding): for callers that keep the whole file in memory.
    pub fn open_limited(path: &Path, max_seconds: Option<f64>) -> Result<Self, AudioError> {
        let p = || path.to_path_buf();
        let mut file = std::fs::File::open(path).map_err(|source| AudioError::Io { path: p(), source })?;
        let len = file.metadata().map_err(|source| AudioError::Io { path: p(), source })?.len();
        let claims = header::check(&mut file, len).map_err(|problem| AudioError::BadHeader { path: p(), problem })?;
        file.seek(SeekFrom::Start(0)).map_err(|source| AudioError::Io { path: p(), source })?;
        if let (Some(max), Some(frames), Some(rate)) = (max_seconds, claims.frames, claims.sample_rate) {
            too_long(path, frames, rate, max)?;
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let corrupt = |reason: String| AudioError::Corrupt { path: p(), reason };
        let probed = guarded(|| symphonia::default::get_probe().format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default()))
            .map_err(corrupt)?
            .map_err(|e| AudioError::Unsupported { path: p(), reason: e.to_string() })?;
        let format = probed.format;
        let track = format.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL).ok_or_else(|| AudioError::NoTrack { path: p() })?;
        let params = &track.codec_params;
        if let Some(rate) = params.sample_rate {
            check_rate(rate).map_err(|e| AudioError::BadHeader { path: p(), problem: e })?;
        }
        if let Some(c) = params.channels {
            check_channels(c.count()).map_err(|problem| AudioError::BadHeader { path: p(), problem })?;
        }
        if let (Some(max), Some(frames), Some(rate)) = (max_seconds, params.n_frames, params.sample_rate) {
            too_long(path, frames, rate, max)?;
        }
        let track_id = track.id;
        let claims = Claims {
            sample_rate: params.sample_rate.or(claims.sample_rate),
            channels: params.channels.map(|c| c.count() as u32).or(claims.channels),
            frames: params.n_frames.or(claims.frames),
        };
        let decoder = guarded(|| symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default()))
            .map_err(corrupt)?
            .map_err(|e| AudioError::Unsupported { path: p(), reason: e.to_string() })?;
        let mut s = Self {
            path: p(),
            format,
            decoder,
            track_id,
            rate: 0,
            channels: 0,
            claims,
            buf: None,
            chunk: Vec::new(),
            pending: false,
            frames: 0,
            max_frames: None,
            max_seconds,
            skipped_packets: 0,
            state: State::Live,
        };
        // The first audio fixes the stream's rate and channels (a header may not state them).
        if s.decode_next()?.is_none() {
            return Err(AudioError::Empty { path: p() });
        }
        s.pending = true;
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The stream's sample rate (checked to be in range).
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Seconds of audio the header states, when it states them.
    pub fn duration_hint(&self) -> Option<f64> {
        self.claims.frames.map(|f| f as f64 / self.rate as f64)
    }
    /// Samples (per channel) handed out so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// The next chunk of mono samples at [`sample_rate`](Self::sample_rate), finite and within
    /// ±[`super::MAX_SAMPLE`]; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, AudioError> {
        if self.pending {
            self.pending = false;
            return Ok(Some(&self.chunk));
        }
        Ok(self.decode_next()?.map(|_| self.chunk.as_slice()))
    }

    /// Decodes packets until one yields audio (into `self.chunk`); None at the end.
    fn decode_next(&mut self) -> Result<Option<()>, AudioError> {
        match &self.state {
            State::Live => {}
            State::Ended => return Ok(None),
            State::Dead(reason) => return Err(AudioError::Corrupt { path: self.path.clone(), reason: reason.clone() }),
        }
        match self.decode_packet() {
            Ok(Some(())) => Ok(Some(())),
            Ok(None) => {
                self.state = State::Ended;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Dead(match &e {
                    AudioError::Corrupt { reason, .. } => reason.clone(),
                    other => other.to_string(),
                });
                Err(e)
            }
        }
    }

    fn decode_packet(&mut self) -> Result<Option<()>, AudioError> {
        let corrupt = |path: &Path, reason: String| AudioError::Corrupt { path: path.to_path_buf(), reason };
        loop {
            let format = &mut self.format;
            let packet = match guarded(|| format.next_packet()).map_err(|e| corrupt(&self.path, e))? {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => return Err(corrupt(&self.path, e.to_string())),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoder = &mut self.decoder;
            let decoded = match guarded(|| decoder.decode(&packet).map(|d| (*d.spec(), d.capacity(), d.frames()))).map_err(|e| corrupt(&self.path, e))? {
                Ok(d) => d,
                // A damaged packet: skip it, as players do.
                Err(SymError::DecodeError(_)) => {
                    self.skipped_packets += 1;
                    continue;
                }
                Err(e) => return Err(corrupt(&self.path, e.to_string())),
            };
            let (spec, capacity, frames) = decoded;
            let channels = spec.channels.count();
            if self.rate == 0 {
                check_rate(spec.rate).map_err(|problem| AudioError::BadHeader { path: self.path.clone(), problem })?;
                check_channels(channels).map_err(|problem| AudioError::BadHeader { path: self.path.clone(), problem })?;
                self.rate = spec.rate;
                self.channels = channels;
                self.max_frames = self.max_seconds.map(|s| (s * spec.rate as f64) as u64);
            } else if spec.rate != self.rate || channels != self.channels {
                // A packet that changes the format mid-stream is damage, not a new stream.
                self.skipped_packets += 1;
                continue;
            }
            if frames == 0 {
                continue;
            }
            let needed = (capacity as u64) * channels as u64;
            let buf = match &mut self.buf {
                Some(b) if b.capacity() as u64 >= needed => b,
                _ => self.buf.insert(SampleBuffer::new(capacity as u64, spec)),
            };
            // The decoded buffer borrows the decoder: fetch it again (no decoding happens).
            let decoder = &mut self.decoder;
            guarded(|| buf.copy_interleaved_ref(decoder.last_decoded())).map_err(|e| corrupt(&self.path, e))?;
            downmix(buf.samples(), channels, &mut self.chunk);
            sanitize(&mut self.chunk);
            self.frames += self.chunk.len() as u64;
            if let Some(max) = self.max_frames {
                if self.frames > max {
                    return Err(AudioError::TooLong {
                        path: self.path.clone(),
                        seconds: self.frames as f64 / self.rate as f64,
                        max: self.max_seconds.unwrap_or(0.0),
                    });
                }
            }
            return Ok(Some(()));
        }
    }
}

fn check_channels(n: usize) -> Result<(), String> {
    if n == 0 || n > MAX_CHANNELS as usize {
        return Err(format!("{n} channels (allowed: 1..={MAX_CHANNELS})"));
    }
    Ok(())
}

fn too_long(path: &Path, frames: u64, rate: u32, max: f64) -> Result<(), AudioError> {
    let seconds = frames as f64 / rate.max(1) as f64;
    if seconds > max {
        return Err(AudioError::TooLong { path: path.to_path_buf(), seconds, max });
    }
    Ok(())
}

/// A file decoded and resampled chunk by chunk to one rate, aligned with the source: the
/// resampler's delay is dropped and the length is round(n * to / from), so the chunks put
/// together equal [`super::resample`] of the whole decoded file, sample for sample.
pub struct ResampledStream {
    source: AudioStream,
    resampler: StreamResampler,
    /// Delay samples still to drop from the front.
    skip: usize,
    /// Resampled samples out of the resampler so far (dropped delay included).
    produced: u64,
    out: Vec<f32>,
    done: bool,
}

impl ResampledStream {
    pub fn open(path: &Path, rate: u32) -> Result<Self, AudioError> {
        Self::new(AudioStream::open(path)?, rate)
    }

    pub fn new(source: AudioStream, rate: u32) -> Result<Self, AudioError> {
        let resampler = StreamResampler::new(source.sample_rate(), rate)?;
        Ok(Self { skip: resampler.delay(), source, resampler, produced: 0, out: Vec::new(), done: false })
    }

    pub fn source(&self) -> &AudioStream {
        &self.source
    }
    pub fn output_rate(&self) -> u32 {
        self.resampler.output_rate()
    }

    /// The next chunk at the output rate; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, AudioError> {
        while !self.done {
            self.out.clear();
            let out = &mut self.out;
            match self.source.next_chunk()? {
                Some(x) => self.resampler.push(x, |c| out.extend_from_slice(c))?,
                None => {
                    // Flush with silence until the delayed tail is out, then cut to length.
                    let (from, to) = (self.resampler.input_rate(), self.resampler.output_rate());
                    let target = output_len(self.source.frames_read(), from, to) + self.resampler.delay() as u64;
                    let zeros = [0.0; FLUSH_BLOCK];
                    while self.produced + (out.len() as u64) < target {
                        self.resampler.push(&zeros, |c| out.extend_from_slice(c))?;
                    }
                    out.truncate(target.saturating_sub(self.produced) as usize);
                    self.done = true;
                }
            }
            self.produced += self.out.len() as u64;
            let drop = self.skip.min(self.out.len());
            self.out.drain(..drop);
            self.skip -= drop;
            // Resampling overshoots a little near clipped input; keep the bound exact.
            sanitize(&mut self.out);
            if !self.out.is_empty() {
                return Ok(Some(&self.out));
            }
        }
        Ok(None)
    }
}
