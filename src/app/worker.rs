//! The processing thread between the audio source and whoever watches (the window, or
//! `listen --mic`): downmix, resample to the model's rate, one pipeline step per 10 ms
//! frame, and a message per frame. It owns the microphone stream (or paces a file by the
//! clock), applies commands (thresholds, spiking/dense, model swap, device switch,
//! recording) between chunks, and never waits on its consumer: a frame that does not fit in
//! the consumer's channel is counted and dropped.
//!
//! It is supervised: its loop runs under `catch_unwind`, and a panic (a bug, or a decoder
//! failing in a way the decode boundary did not catch) is reported as a failed source in
//! words; the worker then starts afresh with the last model that loaded, and waits for the
//! user to retry or pick another source.

use crate::audio::{self, AudioStream, StreamResampler};
use crate::capture::{self, AudioChunk, Capture, CaptureInfo, DeviceEntry};
use crate::detect::Detection;
use crate::model::{Model, ModelCard};
use crate::network::{Mode, OpCount};
use crate::pipeline::{FrameTiming, Pipeline};
use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames the consumer may lag behind before frames are dropped (10 s of audio).
pub const FRAME_QUEUE: usize = 1000;
/// Longest recording the record button can save.
pub const MAX_RECORD_SECONDS: f32 = 60.0;
/// Silence between repeats when a file loops.
const LOOP_GAP_SECONDS: f64 = 1.0;
/// A microphone that has delivered audio and then goes quiet this long is reported stalled.
const STALL_AFTER: Duration = Duration::from_secs(3);
/// How often the worker looks for audio (and paces a file): small against the 10 ms frame.
const POLL: Duration = Duration::from_millis(4);
/// Extra time a freshly opened stream gets before its silence counts as a stall.
const FIRST_AUDIO_GRACE: Duration = Duration::from_secs(3);

/// Where audio comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A microphone: the default input (None) or one named as in [`capture::match_device`].
    Mic(Option<String>),
    /// A file played in real time; `looped` repeats it after a second of silence.
    File { path: PathBuf, looped: bool },
}

pub enum Command {
    /// Every keyword's threshold.
    SetThreshold(f32),
    SetThresholdFor(String, f32),
    /// The level at which the front end restarts after a keyword-like word
    /// ([`crate::detect::DetectionConfig::reseed_level`]; 0: never).
    SetReseedLevel(f32),
    SetMode(Mode),
    UseSource(Source),
    /// Reopen the current source (after a device failure).
    Retry,
    /// A model already loaded (off this thread); replaces the running one.
    SwapModel(Box<Model>, PathBuf),
    /// Save the last `seconds` of audio (at the model's rate) as a WAV file.
    Record {
        path: PathBuf,
        seconds: f32,
    },
    /// Panics inside the worker: exercises its supervision (tests; no UI sends it).
    #[doc(hidden)]
    InjectPanic(String),
    Stop,
}

/// The state of the audio source, as shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceState {
    Opening(Source),
    Mic(CaptureInfo),
    /// `seconds`: the length the header states, when it states one.
    File {
        path: PathBuf,
        seconds: Option<f64>,
        rate: u32,
    },
    /// Capture failed or the device went away; `Retry` or another source recovers.
    Failed {
        source: Source,
        error: String,
    },
    /// The device is open but has delivered nothing for a while.
    Stalled {
        device: String,
        seconds: f64,
    },
    /// Nothing runs until a model is loaded.
    NoModel,
}

pub enum Event {
    Source(SourceState),
    /// The audio arrived: time from opening to the first callback.
    FirstAudio(Duration),
    /// A model now runs; its frames carry `gen`.
    Model {
        card: Box<ModelCard>,
        path: PathBuf,
        gen: u32,
    },
    ModelError {
        path: PathBuf,
        error: String,
    },
    /// The thresholds the running detector holds, one per label (infinite for non-keywords).
    Thresholds(Vec<f32>),
    /// The restart level the running detector holds.
    ReseedLevel(f32),
    Mode(Mode),
    Devices(Result<Vec<DeviceEntry>, String>),
    Recorded(Result<PathBuf, String>),
    /// Something the user should read that is not an error of the running pipeline.
    Notice(String),
}

/// Everything one frame produced, for display.
#[derive(Debug, Clone)]
pub struct FrameMsg {
    /// Changes with every model swap, so a consumer can drop rows of the old shape.
    pub model_gen: u32,
    pub index: u64,
    /// Stream seconds at the end of this frame.
    pub time: f64,
    pub features: Vec<f32>,
    pub probs: Vec<f32>,
    /// Per hidden layer: spikes (sum of counts, or of rates in dense mode) and active units.
    pub spikes: Vec<f32>,
    pub active: Vec<u32>,
    /// Every hidden layer's output this frame, layer after layer.
    pub outputs: Vec<f32>,
    /// Memory read-out events per hidden layer, and layer-0 input events (delta coding).
    pub memory_events: Vec<u32>,
    pub input_events: u32,
    /// Arithmetic of the spike-fed connections and of the whole network this frame.
    pub spike_ops: OpCount,
    pub ops: OpCount,
    pub timing: FrameTiming,
    /// This frame's share of the resampler's time.
    pub resample_ns: u64,
    pub detection: Option<Detection>,
    pub mode: Mode,
    /// When the audio that completed this frame reached the worker.
    pub arrived: Instant,
}

/// Totals the consumer can read at any time.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    pub frames: AtomicU64,
    /// Frames the consumer's queue had no room for.
    pub frames_dropped: AtomicU64,
    /// Chunks the audio callback could not hand over (all streams since start).
    pub capture_dropped_chunks: AtomicU64,
    /// Sample frames (at the device's rate) inside those chunks.
    pub capture_dropped_frames: AtomicU64,
    /// Sample frames the device delivered.
    pub captured_frames: AtomicU64,
    /// Times the worker panicked and was started again.
    pub restarts: AtomicU64,
}

pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub frames: Receiver<FrameMsg>,
    pub events: Receiver<Event>,
    pub counters: Arc<WorkerCounters>,
    events_tx: Sender<Event>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Loads a model on a helper thread; a good one is handed to the worker, a bad one
    /// becomes an `Event::ModelError` and the running model stays.
    pub fn load_model(&self, path: PathBuf) {
        self.loader().load(path)
    }

    /// A handle other threads (e.g. a file dialog's) can load models through.
    pub fn loader(&self) -> ModelLoader {
        ModelLoader { commands: self.commands.clone(), events: self.events_tx.clone() }
    }

    /// Lists input devices on a helper thread (enumeration can take a while); the answer
    /// arrives as `Event::Devices`.
    pub fn list_devices(&self) {
        let ev = self.events_tx.clone();
        let _ = std::thread::Builder::new().name("list-devices".into()).spawn(move || {
            let _ = ev.send(Event::Devices(capture::input_devices().map_err(|e| e.to_string())));
        });
    }

    pub fn send(&self, c: Command) {
        // The worker only goes away on Stop or a panic; either way nothing is left to tell.
        let _ = self.commands.send(c);
    }
}

/// Loads model files off the caller's thread and hands them to the worker.
#[derive(Clone)]
pub struct ModelLoader {
    commands: Sender<Command>,
    events: Sender<Event>,
}

impl ModelLoader {
    pub fn notice(&self, text: String) {
        let _ = self.events.send(Event::Notice(text));
    }

    pub fn load(&self, path: PathBuf) {
        let (cmd, ev) = (self.commands.clone(), self.events.clone());
        let spawned = std::thread::Builder::new().name("model-load".into()).spawn(move || match Model::load(&path) {
            Ok(m) => {
                let _ = cmd.send(Command::SwapModel(Box::new(m), path));
            }
            Err(e) => {
                let _ = ev.send(Event::ModelError { path, error: e.to_string() });
            }
        });
        if let Err(e) = spawned {
            let _ = self.events.send(Event::ModelError { path: PathBuf::new(), error: e.to_string() });
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the worker with a model (or none yet) and a source.
pub fn spawn(model: Option<(Model, PathBuf)>, source: Source) -> std::io::Result<WorkerHandle> {
    let (cmd_tx, cmd_rx) = unbounded();
    let (frame_tx, frame_rx) = bounded(FRAME_QUEUE);
    let (ev_tx, ev_rx) = unbounded();
    let counters = Arc::new(WorkerCounters::default());
    let w = Worker::new(frame_tx, ev_tx.clone(), counters.clone());
    let thread = std::thread::Builder::new().name("spikeword-worker".into()).spawn(move || supervise(w, model, source, cmd_rx))?;
    Ok(WorkerHandle { commands: cmd_tx, frames: frame_rx, events: ev_rx, counters, events_tx: ev_tx, thread: Some(thread) })
}

/// Runs the worker; after a panic, reports it and runs a fresh worker with the last good
/// model. The source that was playing is not reopened by itself (it may panic again): the
/// user retries or picks another.
fn supervise(mut w: Worker, model: Option<(Model, PathBuf)>, source: Source, commands: Receiver<Command>) {
    let started = catch_unwind(AssertUnwindSafe(|| {
        if let Some((m, p)) = model {
            w.swap_model(m, p);
        } else {
            w.event(Event::Source(SourceState::NoModel));
        }
        w.open(source.clone());
    }));
    let mut outcome = started.map(|_| catch_unwind(AssertUnwindSafe(|| w.run(&commands))));
    loop {
        let payload = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(p)) | Err(p) => p,
        };
        let what = panic_text(&payload);
        let (frames, events, counters) = (w.frames.clone(), w.events.clone(), w.counters.clone());
        let (model, gen, mode) = (w.model.take(), w.model_gen, w.mode);
        let source = w.source.clone().unwrap_or_else(|| source.clone());
        // Dropping the old worker stops its stream; its state may be half-updated, so a panic
        // in its destructors is contained too.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(w)));
        counters.restarts.fetch_add(1, Ordering::Relaxed);
        w = Worker::new(frames, events, counters);
        w.model_gen = gen;
        w.mode = mode;
        let name = model.as_ref().map(|(m, _)| m.card.name.clone());
        outcome = Ok(catch_unwind(AssertUnwindSafe(|| {
            if let Some((m, p)) = model {
                w.swap_model(m, p);
            }
            w.source = Some(source.clone());
            let error = match name {
                Some(n) => format!("processing failed ({what}); restarted with model \u{201c}{n}\u{201d}: Retry, or pick another source"),
                None => format!("processing failed ({what}); restarted: load a model and pick a source"),
            };
            w.event(Event::Source(SourceState::Failed { source, error }));
            w.run(&commands)
        })));
    }
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A file played by the clock, decoded a packet at a time as playback reaches it, so memory
/// does not grow with the file. Looping reopens it after a second of silence.
struct FilePlayer {
    path: PathBuf,
    stream: Option<AudioStream>,
    rate: u32,
    looped: bool,
    started: Instant,
    /// Samples (of the file's timeline, gaps included) already fed.
    fed: u64,
    /// The decoded chunk being played and the position in it.
    chunk: Vec<f32>,
    pos: usize,
    /// Silence left before the file starts again.
    gap_left: u64,
    /// Played once (not looping): silence from now on.
    finished: bool,
}

impl FilePlayer {
    fn open(path: &std::path::Path, looped: bool) -> Result<Self, audio::AudioError> {
        let stream = AudioStream::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            rate: stream.sample_rate(),
            stream: Some(stream),
            looped,
            started: Instant::now(),
            fed: 0,
            chunk: Vec::new(),
            pos: 0,
            gap_left: 0,
            finished: false,
        })
    }

    /// Appends what the clock says is due to `out`.
    fn due(&mut self, out: &mut Vec<f32>) -> Result<(), audio::AudioError> {
        let target = (self.started.elapsed().as_secs_f64() * self.rate as f64) as u64;
        while self.fed < target {
            let want = target - self.fed;
            let take = if self.pos < self.chunk.len() {
                let take = want.min((self.chunk.len() - self.pos) as u64) as usize;
                out.extend_from_slice(&self.chunk[self.pos..self.pos + take]);
                self.pos += take;
                take as u64
            } else if self.gap_left > 0 || self.finished {
                // Once played, silence: the pipeline keeps running so the display stays live.
                let take = if self.finished { want } else { want.min(self.gap_left) };
                out.extend(std::iter::repeat_n(0.0, take as usize));
                self.gap_left -= take.min(self.gap_left);
                take
            } else {
                self.next_chunk()?;
                0
            };
            self.fed += take;
        }
        Ok(())
    }

    /// Loads the next decoded chunk, or starts the gap / the next loop at the end.
    fn next_chunk(&mut self) -> Result<(), audio::AudioError> {
        let Some(s) = &mut self.stream else {
            // The gap is over: the file starts again (it may have changed; its rate must not).
            let s = AudioStream::open(&self.path)?;
            if s.sample_rate() != self.rate {
                return Err(audio::AudioError::BadHeader {
                    path: self.path.clone(),
                    problem: format!("changed from {} Hz to {} Hz while playing", self.rate, s.sample_rate()),
                });
            }
            self.stream = Some(s);
            return Ok(());
        };
        match s.next_chunk()? {
            Some(c) => {
                self.chunk.clear();
                self.chunk.extend_from_slice(c);
                self.pos = 0;
            }
            None => {
                self.stream = None;
                if self.looped {
                    self.gap_left = (LOOP_GAP_SECONDS * self.rate as f64) as u64;
                } else {
                    self.finished = true;
                }
            }
        }
        Ok(())
    }
}

/// Last seconds of audio at the model's rate, for the record button.
pub struct AudioRing {
    buf: Vec<f32>,
    pos: usize,
    filled: usize,
}

impl AudioRing {
    pub fn new(capacity: usize) -> Self {
        Self { buf: vec![0.0; capacity.max(1)], pos: 0, filled: 0 }
    }
    pub fn push(&mut self, samples: &[f32]) {
        for &s in samples {
            self.buf[self.pos] = s;
            self.pos = (self.pos + 1) % self.buf.len();
        }
        self.filled = (self.filled + samples.len()).min(self.buf.len());
    }
    /// The most recent `n` samples (fewer if fewer arrived), oldest first.
    pub fn last(&self, n: usize) -> Vec<f32> {
        let n = n.min(self.filled);
        let cap = self.buf.len();
        let start = (self.pos + cap - n) % cap;
        (0..n).map(|i| self.buf[(start + i) % cap]).collect()
    }
}

struct Worker {
    frames: Sender<FrameMsg>,
    events: Sender<Event>,
    counters: Arc<WorkerCounters>,
    pipeline: Option<Pipeline>,
    /// The running model as loaded: what a restart after a panic runs again.
    model: Option<(Model, PathBuf)>,
    model_gen: u32,
    mode: Mode,
    source: Option<Source>,
    capture: Option<Capture>,
    /// Counter values of the current capture already added to the totals.
    seen_dropped: (u64, u64, u64),
    file: Option<FilePlayer>,
    resampler: Option<StreamResampler>,
    mono: Vec<f32>,
    resampled: Vec<f32>,
    ring: AudioRing,
    last_audio: Option<Instant>,
    first_audio_sent: bool,
    stalled: bool,
}

impl Worker {
    fn new(frames: Sender<FrameMsg>, events: Sender<Event>, counters: Arc<WorkerCounters>) -> Self {
        Self {
            frames,
            events,
            counters,
            pipeline: None,
            model: None,
            model_gen: 0,
            mode: Mode::Spiking,
            source: None,
            capture: None,
            seen_dropped: (0, 0, 0),
            file: None,
            resampler: None,
            mono: Vec::with_capacity(capture::CHUNK_CAPACITY),
            resampled: Vec::with_capacity(8192),
            ring: AudioRing::new((MAX_RECORD_SECONDS * 16_000.0) as usize),
            last_audio: None,
            first_audio_sent: false,
            stalled: false,
        }
    }

    fn event(&self, e: Event) {
        // The receiver only disappears when the consumer is shutting down.
        let _ = self.events.send(e);
    }

    fn model_rate(&self) -> u32 {
        self.pipeline.as_ref().map_or(16_000, |p| p.sample_rate())
    }

    fn run(&mut self, commands: &Receiver<Command>) {
        loop {
            let errors_rx = self.capture.as_ref().map_or_else(never, |c| c.errors.clone());
            // The audio channel is polled, never waited on: a receiver blocked on it would make
            // the audio callback's send take the channel's waker lock and wake this thread.
            select! {
                recv(commands) -> c => match c {
                    Ok(Command::Stop) | Err(_) => return,
                    Ok(c) => self.command(c),
                },
                recv(errors_rx) -> e => if let Ok(e) = e {
                    self.fail(e);
                },
                default(POLL) => {},
            }
            if let Some(audio_rx) = self.capture.as_ref().map(|c| c.chunks.clone()) {
                while let Ok(chunk) = audio_rx.try_recv() {
                    self.mic_chunk(&chunk);
                }
            }
            self.file_tick();
            self.sync_capture_counters();
            self.check_stall();
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::SetThreshold(t) => {
                if let Some(p) = &mut self.pipeline {
                    p.detector.set_threshold(t.clamp(1e-3, 1.0));
                    let now = p.detector.thresholds().to_vec();
                    self.event(Event::Thresholds(now));
                }
            }
            Command::SetThresholdFor(label, t) => {
                if let Some(p) = &mut self.pipeline {
                    p.detector.set_threshold_for(&label, t.clamp(1e-3, 1.0));
                    let now = p.detector.thresholds().to_vec();
                    self.event(Event::Thresholds(now));
                }
            }
            Command::SetReseedLevel(level) => {
                if let Some(p) = &mut self.pipeline {
                    p.detector.set_reseed_level(level.clamp(0.0, 1.0));
                    let now = p.detector.config().reseed_level;
                    self.event(Event::ReseedLevel(now));
                }
            }
            Command::SetMode(m) => {
                self.mode = m;
                if let Some(p) = &mut self.pipeline {
                    p.network.set_mode(m);
                }
                self.event(Event::Mode(m));
            }
            Command::UseSource(s) => self.open(s),
            Command::Retry => {
                if let Some(s) = self.source.clone() {
                    self.open(s);
                }
            }
            Command::SwapModel(m, path) => self.swap_model(*m, path),
            Command::Record { path, seconds } => self.record(path, seconds),
            Command::InjectPanic(what) => panic!("{what}"),
            Command::Stop => {}
        }
    }

    fn swap_model(&mut self, model: Model, path: PathBuf) {
        let old_rate = self.model_rate();
        let mut p = Pipeline::new(&model);
        p.network.set_mode(self.mode);
        let had_model = self.pipeline.is_some();
        let thresholds = p.detector.thresholds().to_vec();
        let rate = p.sample_rate();
        self.pipeline = Some(p);
        self.model_gen += 1;
        if rate != old_rate || !had_model {
            self.ring = AudioRing::new((MAX_RECORD_SECONDS * rate as f32) as usize);
        }
        self.event(Event::Model { card: Box::new(model.card.clone()), path: path.clone(), gen: self.model_gen });
        self.model = Some((model, path));
        self.event(Event::Thresholds(thresholds));
        self.event(Event::Mode(self.mode));
        // The resampler's output rate follows the model; the source may need reopening too
        // (a file is decoded once at its own rate, so only the resampler changes).
        if rate != old_rate || !had_model {
            if let Some(s) = self.source.clone() {
                self.open(s);
            }
        }
    }

    fn open(&mut self, source: Source) {
        self.capture = None;
        self.file = None;
        self.resampler = None;
        self.last_audio = None;
        self.first_audio_sent = false;
        self.stalled = false;
        self.seen_dropped = (0, 0, 0);
        self.source = Some(source.clone());
        if self.pipeline.is_none() {
            // Opened once a model arrives.
            return;
        }
        if let Some(p) = &mut self.pipeline {
            p.reset();
        }
        self.event(Event::Source(SourceState::Opening(source.clone())));
        let rate = self.model_rate();
        match &source {
            Source::Mic(name) => match capture::open(name.as_deref()) {
                Ok(c) => match StreamResampler::new(c.info.sample_rate, rate) {
                    Ok(r) => {
                        self.resampler = Some(r);
                        self.event(Event::Source(SourceState::Mic(c.info.clone())));
                        self.capture = Some(c);
                    }
                    Err(e) => self.fail(e.to_string()),
                },
                Err(e) => self.fail(e.to_string()),
            },
            Source::File { path, looped } => {
                let opened = FilePlayer::open(path, *looped).and_then(|f| Ok((StreamResampler::new(f.rate, rate)?, f)));
                match opened {
                    Ok((resampler, f)) => {
                        let (seconds, file_rate) = (f.stream.as_ref().and_then(|s| s.duration_hint()), f.rate);
                        self.resampler = Some(resampler);
                        self.file = Some(f);
                        self.event(Event::Source(SourceState::File { path: path.clone(), seconds, rate: file_rate }));
                    }
                    Err(e) => self.fail(e.to_string()),
                }
            }
        }
    }

    fn fail(&mut self, error: String) {
        self.capture = None;
        self.file = None;
        let source = self.source.clone().unwrap_or(Source::Mic(None));
        self.event(Event::Source(SourceState::Failed { source, error }));
    }

    fn sync_capture_counters(&mut self) {
        let Some(c) = &self.capture else { return };
        let k = &c.counters;
        let now = (k.dropped_chunks.load(Ordering::Relaxed), k.dropped_frames.load(Ordering::Relaxed), k.frames.load(Ordering::Relaxed));
        let t = &self.counters;
        t.capture_dropped_chunks.fetch_add(now.0 - self.seen_dropped.0, Ordering::Relaxed);
        t.capture_dropped_frames.fetch_add(now.1 - self.seen_dropped.1, Ordering::Relaxed);
        t.captured_frames.fetch_add(now.2 - self.seen_dropped.2, Ordering::Relaxed);
        self.seen_dropped = now;
        if !self.first_audio_sent {
            if let Some(d) = k.first_callback_after() {
                self.first_audio_sent = true;
                self.event(Event::FirstAudio(d));
            }
        }
    }

    fn check_stall(&mut self) {
        let Some(c) = &self.capture else { return };
        // A stream that never starts counts from its opening, with grace for slow starts
        // (through ALSA's PulseAudio plugin the first callback takes about 2 s).
        let last = self.last_audio.unwrap_or(c.opened + FIRST_AUDIO_GRACE);
        let quiet = Instant::now().saturating_duration_since(last);
        if quiet > STALL_AFTER && !self.stalled {
            self.stalled = true;
            let device = c.info.device.clone();
            self.event(Event::Source(SourceState::Stalled { device, seconds: quiet.as_secs_f64() }));
        }
    }

    fn mic_chunk(&mut self, chunk: &AudioChunk) {
        let now = Instant::now();
        self.last_audio = Some(now);
        if self.stalled {
            self.stalled = false;
            if let Some(c) = &self.capture {
                self.event(Event::Source(SourceState::Mic(c.info.clone())));
            }
        }
        let channels = self.capture.as_ref().map_or(1, |c| c.info.channels as usize);
        let mut mono = std::mem::take(&mut self.mono);
        capture::downmix(chunk.samples(), channels, &mut mono);
        audio::sanitize(&mut mono);
        self.feed(&mono, now);
        self.mono = mono;
    }

    fn file_tick(&mut self) {
        let Some(f) = &mut self.file else { return };
        let mut mono = std::mem::take(&mut self.mono);
        mono.clear();
        let played = f.due(&mut mono);
        if !mono.is_empty() {
            self.feed(&mono, Instant::now());
        }
        self.mono = mono;
        if let Err(e) = played {
            self.fail(e.to_string());
        }
    }

    /// Resamples mono audio at the source's rate and runs the pipeline over it.
    fn feed(&mut self, mono: &[f32], arrived: Instant) {
        let (Some(rs), Some(p)) = (&mut self.resampler, &mut self.pipeline) else { return };
        let t0 = Instant::now();
        let mut out = std::mem::take(&mut self.resampled);
        out.clear();
        if let Err(e) = rs.push(mono, |c| out.extend_from_slice(c)) {
            self.resampled = out;
            self.fail(e.to_string());
            return;
        }
        let resample_ns = t0.elapsed().as_nanos() as u64;
        self.ring.push(&out);
        let hop = p.frontend.config().hop_length as u64;
        let per_frame_resample = if out.is_empty() { 0 } else { resample_ns * hop / out.len() as u64 };
        let (gen, mode) = (self.model_gen, self.mode);
        let (frames, counters) = (&self.frames, &self.counters);
        p.push(&out, |r| {
            let st = r.network.stats();
            let mut outputs = Vec::new();
            for l in 0..r.network.architecture().layers.len() {
                outputs.extend_from_slice(r.network.layer_output(l));
            }
            let m = FrameMsg {
                model_gen: gen,
                index: r.index,
                time: r.time,
                features: r.features.to_vec(),
                probs: r.probs.to_vec(),
                spikes: st.spikes.clone(),
                active: st.active.clone(),
                outputs,
                memory_events: st.memory_events.clone(),
                input_events: st.input_events,
                spike_ops: st.spike_fed,
                ops: st.total(),
                timing: r.timing,
                resample_ns: per_frame_resample,
                detection: r.detection,
                mode,
                arrived,
            };
            counters.frames.fetch_add(1, Ordering::Relaxed);
            if let Err(TrySendError::Full(_)) = frames.try_send(m) {
                counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
        self.resampled = out;
    }

    fn record(&mut self, path: PathBuf, seconds: f32) {
        let rate = self.model_rate();
        let n = (seconds.clamp(0.1, MAX_RECORD_SECONDS) * rate as f32) as usize;
        let samples = self.ring.last(n);
        let ev = self.events.clone();
        // Writing is I/O: off this thread, so audio keeps flowing.
        let spawned = std::thread::Builder::new().name("record".into()).spawn(move || {
            let r = if samples.is_empty() {
                Err("nothing recorded yet".to_string())
            } else {
                // Report the full path: a relative one depends on where the app was started.
                audio::write_wav(&path, &samples, rate).map(|_| std::fs::canonicalize(&path).unwrap_or(path)).map_err(|e| e.to_string())
            };
            let _ = ev.send(Event::Recorded(r));
        });
        if let Err(e) = spawned {
            self.event(Event::Recorded(Err(e.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ring_keeps_the_latest_samples_in_order() {
        let mut r = AudioRing::new(5);
        r.push(&[1.0, 2.0, 3.0]);
        assert_eq!(r.last(10), vec![1.0, 2.0, 3.0]);
        r.push(&[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(r.last(10), vec![3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(r.last(2), vec![6.0, 7.0]);
    }

    #[test]
    fn file_player_loops_with_a_gap_and_follows_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("one-second.wav");
        // 1 s at 4 kHz of a constant level, so file and gap are told apart.
        audio::write_wav(&wav, &[0.5; 4000], 4000).unwrap();
        let mut f = FilePlayer::open(&wav, true).unwrap();
        f.started = Instant::now() - Duration::from_millis(2500);
        let mut out = Vec::new();
        f.due(&mut out).unwrap();
        // 2.5 s at 4 kHz: 1 s of file, 1 s of gap, 0.5 s of the file again (reopened).
        assert!((9990..=10010).contains(&out.len()), "{}", out.len());
        let level = |s: f32| (s - 0.5).abs() < 1e-3;
        assert!(out[..4000].iter().all(|&s| level(s)));
        assert!(out[4000..8000].iter().all(|&s| s == 0.0));
        assert!(out[8000..].iter().all(|&s| level(s)));
    }

    #[test]
    fn a_file_played_once_turns_to_silence() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("short.wav");
        audio::write_wav(&wav, &[0.5; 400], 4000).unwrap();
        let mut f = FilePlayer::open(&wav, false).unwrap();
        f.started = Instant::now() - Duration::from_millis(1000);
        let mut out = Vec::new();
        f.due(&mut out).unwrap();
        assert!(out.len() >= 4000);
        assert!(out[..400].iter().all(|&s| s > 0.4) && out[400..].iter().all(|&s| s == 0.0));
    }
}
