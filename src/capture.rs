//! Microphone capture with cpal, for any device, sample format, rate and channel count.
//!
//! The audio callback runs on the audio system's real-time thread, so it only converts
//! samples to f32 and copies them into fixed-size [`AudioChunk`]s sent by value through a
//! bounded (preallocated) crossbeam channel: no allocation, no lock, no logging, no I/O.
//! A chunk that does not fit (the consumer fell behind) is counted in
//! [`CaptureCounters::dropped_chunks`] and discarded. Everything else (downmix, resampling,
//! the network) happens on the consumer's thread, which should poll [`Capture::chunks`]
//! with `try_recv` rather than block on it: with a receiver blocked, crossbeam's send takes
//! the channel's waker lock to wake it, and the callback must not take locks.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Interleaved samples per chunk (a chunk always holds whole sample frames).
pub const CHUNK_CAPACITY: usize = 1024;
/// Chunks the channel holds: 256 x 1024 samples is 2.7 s of 48 kHz stereo, enough to ride
/// out a stalled consumer for a moment without dropping anything.
pub const CHANNEL_CHUNKS: usize = 256;
/// Buffer size asked of the device: 20 ms keeps the capture delay small. Hosts that cannot
/// do it get their default.
const WANTED_BUFFER_SECONDS: f64 = 0.02;

/// A block of interleaved f32 samples, moved through the channel by value.
#[derive(Clone, Copy)]
pub struct AudioChunk {
    len: usize,
    data: [f32; CHUNK_CAPACITY],
}

impl AudioChunk {
    pub const fn empty() -> Self {
        Self { len: 0, data: [0.0; CHUNK_CAPACITY] }
    }
    /// The interleaved samples.
    pub fn samples(&self) -> &[f32] {
        &self.data[..self.len]
    }
}

/// Shared counters, written by the audio callback with relaxed atomics.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    pub callbacks: AtomicU64,
    /// Sample frames (one sample per channel) the device delivered.
    pub frames: AtomicU64,
    pub sent_chunks: AtomicU64,
    /// Chunks that did not fit in the channel and were discarded.
    pub dropped_chunks: AtomicU64,
    /// Sample frames inside those chunks.
    pub dropped_frames: AtomicU64,
    /// Nanoseconds from opening to the first callback, plus one (0: no callback yet).
    first_callback_ns: AtomicU64,
}

impl CaptureCounters {
    /// Time from opening the stream to its first callback, once there was one.
    pub fn first_callback_after(&self) -> Option<Duration> {
        match self.first_callback_ns.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

/// What was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureInfo {
    /// Human-readable device name.
    pub device: String,
    /// Host-qualified id (e.g. `pulseaudio:spikeword_test.monitor`), stable across runs.
    pub id: String,
    pub host: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub format: String,
    /// Requested buffer in sample frames (None: the host's default).
    pub buffer_frames: Option<u32>,
}

/// An input device, as listed for the device picker.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEntry {
    pub id: String,
    pub name: String,
    pub is_default: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("audio host {0:?} (from SPIKEWORD_AUDIO_HOST) is not available: {1}")]
    Host(String, String),
    #[error("no input device: the audio system reports no microphone (plug one in, or pick another device)")]
    NoDevice,
    #[error("no input device matches {0:?}; available: {1}")]
    NotFound(String, String),
    #[error("cannot list audio devices: {0}")]
    List(String),
    #[error("input device {device:?} has no usable configuration: {reason}")]
    Config { device: String, reason: String },
    #[error("cannot open input device {device:?}: {reason}")]
    Open { device: String, reason: String },
    #[error("input device {device:?} cannot deliver {format} samples")]
    UnsupportedFormat { device: String, format: String },
}

/// An open input stream; dropping it stops capture.
pub struct Capture {
    _stream: cpal::Stream,
    pub info: CaptureInfo,
    /// Interleaved chunks, in order.
    pub chunks: Receiver<AudioChunk>,
    /// Errors reported by the audio system (device gone, stream broken, ...).
    pub errors: Receiver<String>,
    pub counters: Arc<CaptureCounters>,
    pub opened: Instant,
}

fn device_name(d: &cpal::Device) -> String {
    d.description().map(|x| x.name().to_string()).unwrap_or_else(|_| d.to_string())
}

fn device_id(d: &cpal::Device) -> String {
    d.id().map(|i| i.to_string()).unwrap_or_default()
}

/// The audio host: `$SPIKEWORD_AUDIO_HOST` (`alsa`, `pulseaudio`, ...) when set, otherwise
/// cpal's default (PulseAudio when a server is reachable, ALSA otherwise).
pub fn host() -> Result<cpal::Host, CaptureError> {
    match std::env::var("SPIKEWORD_AUDIO_HOST") {
        Ok(name) if !name.trim().is_empty() => {
            let id: cpal::HostId = name.trim().parse().map_err(|e: cpal::Error| CaptureError::Host(name.clone(), e.to_string()))?;
            cpal::host_from_id(id).map_err(|e| CaptureError::Host(name, e.to_string()))
        }
        _ => Ok(cpal::default_host()),
    }
}

/// Every input device of the audio host, the default one first.
pub fn input_devices() -> Result<Vec<DeviceEntry>, CaptureError> {
    let host = host()?;
    let default_id = host.default_input_device().map(|d| device_id(&d));
    let mut out: Vec<DeviceEntry> = host
        .input_devices()
        .map_err(|e| CaptureError::List(e.to_string()))?
        .map(|d| {
            let id = device_id(&d);
            DeviceEntry { is_default: Some(&id) == default_id.as_ref(), name: device_name(&d), id }
        })
        .collect();
    out.sort_by_key(|d| !d.is_default);
    Ok(out)
}

/// Finds a device by exact id, id without the host prefix, exact name, or (failing those)
/// a case-insensitive substring of the name or id.
pub fn match_device<'a>(entries: &'a [DeviceEntry], wanted: &str) -> Option<&'a DeviceEntry> {
    let w = wanted.to_lowercase();
    let bare = |id: &str| id.split_once(':').map_or(id.to_string(), |(_, rest)| rest.to_string());
    entries
        .iter()
        .find(|e| e.id == wanted || bare(&e.id) == wanted || e.name == wanted)
        .or_else(|| entries.iter().find(|e| e.name.to_lowercase().contains(&w) || e.id.to_lowercase().contains(&w)))
}

/// Opens the default input device (`None`) or the one `wanted` names (see [`match_device`]).
pub fn open(wanted: Option<&str>) -> Result<Capture, CaptureError> {
    let host = host()?;
    let device = match wanted {
        None => host.default_input_device().ok_or(CaptureError::NoDevice)?,
        Some(w) => {
            let devices: Vec<cpal::Device> = host.input_devices().map_err(|e| CaptureError::List(e.to_string()))?.collect();
            let entries: Vec<DeviceEntry> = devices.iter().map(|d| DeviceEntry { id: device_id(d), name: device_name(d), is_default: false }).collect();
            if entries.is_empty() {
                return Err(CaptureError::NoDevice);
            }
            let hit = match_device(&entries, w)
                .ok_or_else(|| CaptureError::NotFound(w.to_string(), entries.iter().map(|e| format!("{:?}", e.name)).collect::<Vec<_>>().join(", ")))?;
            let idx = entries.iter().position(|e| e.id == hit.id && e.name == hit.name).unwrap_or(0);
            devices.into_iter().nth(idx).ok_or(CaptureError::NoDevice)?
        }
    };
    open_device(&device, host.id().name())
}

fn open_device(device: &cpal::Device, host: &str) -> Result<Capture, CaptureError> {
    let name = device_name(device);
    let supported = device.default_input_config().map_err(|e| CaptureError::Config { device: name.clone(), reason: e.to_string() })?;
    let format = supported.sample_format();
    let mut config = supported.config();
    if config.channels == 0 || config.sample_rate == 0 {
        return Err(CaptureError::Config { device: name, reason: "zero channels or sample rate".into() });
    }
    let wanted_frames = (config.sample_rate as f64 * WANTED_BUFFER_SECONDS).round() as u32;
    let fixed_ok = match supported.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } => (*min..=*max).contains(&wanted_frames),
        cpal::SupportedBufferSize::Unknown => false,
    };
    let counters = Arc::new(CaptureCounters::default());
    let (err_tx, errors) = bounded::<String>(16);
    let opened = Instant::now();
    // Try the small fixed buffer first, then the host's default.
    let attempts: &[Option<u32>] = if fixed_ok { &[Some(wanted_frames), None] } else { &[None] };
    let mut last_err = String::new();
    for &frames in attempts {
        config.buffer_size = frames.map_or(cpal::BufferSize::Default, cpal::BufferSize::Fixed);
        let (tx, chunks) = bounded::<AudioChunk>(CHANNEL_CHUNKS);
        let built = build_any(device, &config, format, tx, counters.clone(), err_tx.clone(), opened);
        let stream = match built {
            Ok(s) => s,
            Err(BuildFailure::Format) => return Err(CaptureError::UnsupportedFormat { device: name, format: format.to_string() }),
            Err(BuildFailure::Cpal(e)) => {
                last_err = e.to_string();
                continue;
            }
        };
        if let Err(e) = stream.play() {
            last_err = e.to_string();
            continue;
        }
        let info = CaptureInfo {
            device: name,
            id: device_id(device),
            host: host.to_string(),
            sample_rate: config.sample_rate,
            channels: config.channels,
            format: format.to_string(),
            buffer_frames: frames,
        };
        return Ok(Capture { _stream: stream, info, chunks, errors, counters, opened });
    }
    Err(CaptureError::Open { device: name, reason: last_err })
}

enum BuildFailure {
    Format,
    Cpal(cpal::Error),
}

fn build_any(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    tx: Sender<AudioChunk>,
    counters: Arc<CaptureCounters>,
    err_tx: Sender<String>,
    opened: Instant,
) -> Result<cpal::Stream, BuildFailure> {
    macro_rules! go {
        ($t:ty) => {
            build::<$t>(device, config, tx, counters, err_tx, opened).map_err(BuildFailure::Cpal)
        };
    }
    match format {
        SampleFormat::F32 => go!(f32),
        SampleFormat::F64 => go!(f64),
        SampleFormat::I8 => go!(i8),
        SampleFormat::I16 => go!(i16),
        SampleFormat::I24 => go!(cpal::I24),
        SampleFormat::I32 => go!(i32),
        SampleFormat::I64 => go!(i64),
        SampleFormat::U8 => go!(u8),
        SampleFormat::U16 => go!(u16),
        SampleFormat::U24 => go!(cpal::U24),
        SampleFormat::U32 => go!(u32),
        SampleFormat::U64 => go!(u64),
        _ => Err(BuildFailure::Format),
    }
}

/// Copies converted samples into `chunk`, sending it whenever it is full and once more at
/// the end so no sample waits for the next callback. Returns the frames in dropped chunks.
#[inline]
pub fn fill_and_send<T: Copy>(data: &[T], channels: usize, chunk: &mut AudioChunk, tx: &Sender<AudioChunk>, convert: impl Fn(T) -> f32) -> (u64, u64, u64) {
    // Whole frames only, so the consumer can downmix each chunk on its own.
    let cap = (CHUNK_CAPACITY / channels.max(1)) * channels.max(1);
    let (mut sent, mut dropped, mut dropped_frames) = (0u64, 0u64, 0u64);
    let mut send = |chunk: &mut AudioChunk| {
        match tx.try_send(*chunk) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(c)) | Err(TrySendError::Disconnected(c)) => {
                dropped += 1;
                dropped_frames += (c.len / channels.max(1)) as u64;
            }
        }
        chunk.len = 0;
    };
    for &s in data {
        chunk.data[chunk.len] = convert(s);
        chunk.len += 1;
        if chunk.len == cap {
            send(chunk);
        }
    }
    if chunk.len > 0 {
        send(chunk);
    }
    (sent, dropped, dropped_frames)
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    tx: Sender<AudioChunk>,
    counters: Arc<CaptureCounters>,
    err_tx: Sender<String>,
    opened: Instant,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let channels = config.channels as usize;
    // Owned by the callback: the only buffer it writes, allocated here, once.
    let mut chunk = Box::new(AudioChunk::empty());
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _info: &cpal::InputCallbackInfo| {
            if counters.callbacks.fetch_add(1, Ordering::Relaxed) == 0 {
                let ns = opened.elapsed().as_nanos() as u64;
                counters.first_callback_ns.store(ns + 1, Ordering::Relaxed);
            }
            counters.frames.fetch_add((data.len() / channels.max(1)) as u64, Ordering::Relaxed);
            let (sent, dropped, dropped_frames) = fill_and_send(data, channels, &mut chunk, &tx, <f32 as FromSample<T>>::from_sample_);
            counters.sent_chunks.fetch_add(sent, Ordering::Relaxed);
            if dropped > 0 {
                counters.dropped_chunks.fetch_add(dropped, Ordering::Relaxed);
                counters.dropped_frames.fetch_add(dropped_frames, Ordering::Relaxed);
            }
        },
        move |err: cpal::Error| {
            // Not the data path: formatting here is fine. A full error queue means the
            // consumer already has plenty to report.
            let _ = err_tx.try_send(format!("{} ({:?})", err, err.kind()));
        },
        Some(Duration::from_secs(5)),
    )
}

pub use crate::audio::downmix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_frames_and_full_channel_counts_drops() {
        let (tx, rx) = bounded::<AudioChunk>(2);
        let mut chunk = AudioChunk::empty();
        // 3 channels: a chunk holds 1023 samples (341 frames).
        let data: Vec<i16> = (0..3000).map(|i| (i % 100) as i16).collect();
        let (sent, dropped, dropped_frames) = fill_and_send(&data, 3, &mut chunk, &tx, <f32 as FromSample<i16>>::from_sample_);
        assert_eq!(sent, 2);
        // 3000 = 1023 + 1023 + 954: the third chunk found the channel full.
        assert_eq!(dropped, 1);
        assert_eq!(dropped_frames, 954 / 3);
        let a = rx.recv().unwrap();
        assert_eq!(a.samples().len(), 1023);
        assert_eq!(a.samples()[1], <f32 as FromSample<i16>>::from_sample_(1));
        assert_eq!(chunk.len, 0);
    }

    #[test]
    fn downmix_averages_channels() {
        let mut out = Vec::new();
        downmix(&[1.0, 3.0, -1.0, 1.0], 2, &mut out);
        assert_eq!(out, vec![2.0, 0.0]);
        downmix(&[0.5, 0.25], 1, &mut out);
        assert_eq!(out, vec![0.5, 0.25]);
    }

    #[test]
    fn devices_match_by_id_name_or_substring() {
        let e = vec![
            DeviceEntry { id: "pulseaudio:alsa_input.usb".into(), name: "USB Mic".into(), is_default: true },
            DeviceEntry { id: "pulseaudio:spikeword_test.monitor".into(), name: "Monitor of Null".into(), is_default: false },
        ];
        assert_eq!(match_device(&e, "spikeword_test.monitor").map(|d| d.name.as_str()), Some("Monitor of Null"));
        assert_eq!(match_device(&e, "USB Mic").map(|d| d.name.as_str()), Some("USB Mic"));
        assert_eq!(match_device(&e, "usb").map(|d| d.name.as_str()), Some("USB Mic"));
        assert!(match_device(&e, "nothing").is_none());
    }
}
