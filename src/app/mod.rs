//! The desktop app: a window showing what the keyword spotter hears and does, live.
//!
//! Threads: the audio system's callback (copies samples, see [`crate::capture`]) → the
//! [`worker`] (resampling, front end, network, detection) → this UI thread, which drains
//! the worker's channels once per repaint and never blocks either of the others. Model
//! files load on a helper thread. The same worker runs headless for `listen --mic`.

pub mod panels;
pub mod plots;
pub mod state;
pub mod worker;

use crate::model::{resolve_model_path, Model};
use crate::network::Mode;
use anyhow::{Context as _, Result};
use eframe::egui::{self, TextureHandle};
use state::Dashboard;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use worker::{Command, Source, WorkerHandle};

/// What `spikeword` (no subcommand) was asked for.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Model file; default: the shipped model.
    pub model: Option<PathBuf>,
    /// Play this file in real time (looping) instead of listening to a microphone.
    pub input: Option<PathBuf>,
    /// Input device (name, id or part of either); default: the system's default input.
    pub device: Option<String>,
}

/// What the user asked for in this repaint; applied after the panels are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum UiAction {
    SetThreshold(f32),
    SetThresholdFor(String, f32),
    SetReseedLevel(f32),
    SetMode(Mode),
    UseSource(Source),
    Retry,
    RefreshDevices,
    LoadModel(PathBuf),
    OpenModelDialog,
    Record,
}

/// Redraw interval: 30 Hz keeps the traces smooth and halves the drawing cost of 60 Hz,
/// which matters where OpenGL runs in software. The worker never waits on it.
const REPAINT: Duration = Duration::from_millis(33);

/// Loads the model `--model` names (or the shipped one). A failure is not fatal for the
/// window: it opens with the error shown and lets the user pick a model.
fn initial_model(explicit: Option<&std::path::Path>) -> (Option<(Model, PathBuf)>, Option<String>) {
    let path = match resolve_model_path(explicit) {
        Ok(p) => p,
        Err(e) => return (None, Some(e.to_string())),
    };
    match Model::load(&path) {
        Ok(m) => (Some((m, path)), None),
        Err(e) => (None, Some(format!("{}: {e}", path.display()))),
    }
}

fn source_of(opts: &AppOptions) -> Source {
    match &opts.input {
        Some(p) => Source::File { path: p.clone(), looped: true },
        None => Source::Mic(opts.device.clone()),
    }
}

/// Opens the window and runs until it is closed.
pub fn run_app(opts: AppOptions) -> Result<()> {
    let (model, model_error) = initial_model(opts.model.as_deref());
    let worker = worker::spawn(model, source_of(&opts)).context("starting the audio worker")?;
    let mut state = Dashboard::new();
    state.model_error = model_error;
    if let Some(p) = &opts.input {
        state.file_input = p.display().to_string();
    }
    state.picked_device = opts.device.clone();
    worker.list_devices();
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("spikeword — live keyword spotting")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let stats = std::env::var_os("SPIKEWORD_APP_STATS").is_some();
    eframe::run_native(
        "spikeword",
        native,
        Box::new(move |cc| {
            cc.egui_ctx.set_visuals(egui::Visuals::dark());
            Ok(Box::new(App { worker, state, spec: None, rasters: Vec::new(), stats: stats.then(StatsLog::new) }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}. Without a display, use `spikeword listen --mic` (headless) instead."))
}

/// With SPIKEWORD_APP_STATS set, one JSON line a second on stderr: repaint rate and count,
/// frames, drops. For measuring the app from outside (tests, benchmarks).
struct StatsLog {
    last: Instant,
    paints: u64,
    /// Every paint since start: tests ask that it grows, which a loaded machine slows but
    /// cannot fail, where a rate would.
    paints_total: u64,
    /// Time spent building the UI (not rendering it) since `last`.
    build: Duration,
}

impl StatsLog {
    fn new() -> Self {
        Self { last: Instant::now(), paints: 0, paints_total: 0, build: Duration::ZERO }
    }
}

struct App {
    worker: WorkerHandle,
    state: Dashboard,
    spec: Option<TextureHandle>,
    rasters: Vec<Option<TextureHandle>>,
    stats: Option<StatsLog>,
}

impl App {
    fn drain(&mut self) {
        while let Ok(e) = self.worker.events.try_recv() {
            self.state.apply_event(e);
        }
        let now = Instant::now();
        // Bounded: at most the queue's worth per repaint, so a burst cannot freeze the UI.
        for _ in 0..worker::FRAME_QUEUE {
            match self.worker.frames.try_recv() {
                Ok(f) => {
                    if let (Some(d), Some(_)) = (&f.detection, &self.stats) {
                        // Every detection, for comparing a long run with an offline pass.
                        let line = serde_json::json!({"event": "detection", "time": d.time, "keyword": d.keyword, "score": d.score});
                        eprintln!("{line}");
                    }
                    self.state.push_frame(f, now)
                }
                Err(_) => break,
            }
        }
    }

    fn apply(&mut self, actions: Vec<UiAction>) {
        for a in actions {
            match a {
                UiAction::SetThreshold(t) => self.worker.send(Command::SetThreshold(t)),
                UiAction::SetThresholdFor(l, t) => self.worker.send(Command::SetThresholdFor(l, t)),
                UiAction::SetReseedLevel(l) => self.worker.send(Command::SetReseedLevel(l)),
                UiAction::SetMode(m) => self.worker.send(Command::SetMode(m)),
                UiAction::UseSource(s) => self.worker.send(Command::UseSource(s)),
                UiAction::Retry => self.worker.send(Command::Retry),
                UiAction::RefreshDevices => self.worker.list_devices(),
                UiAction::LoadModel(p) => {
                    self.state.model_loading = Some(p.clone());
                    self.worker.load_model(p);
                }
                UiAction::OpenModelDialog => self.open_dialog(),
                UiAction::Record => {
                    let path = PathBuf::from(self.state.record_path.trim());
                    self.state.record_status = None;
                    self.worker.send(Command::Record { path, seconds: self.state.record_seconds });
                }
            }
        }
    }

    /// The file dialog blocks until the user answers, so it runs on its own thread and hands
    /// the path to the model loader.
    fn open_dialog(&self) {
        let loader = self.worker.loader();
        let _ = std::thread::Builder::new().name("file-dialog".into()).spawn(move || {
            let picked = rfd::FileDialog::new().set_title("Open a spikeword model").add_filter("spikeword model", &["safetensors"]).pick_file();
            match picked {
                Some(path) => loader.load(path),
                // Cancelled, or no dialog could be shown (no desktop portal on the session bus).
                None => loader.notice(
                    "No model file chosen. If no dialog appeared, this desktop has no file-chooser portal: \
                     type the path above or drop the file on the window."
                        .into(),
                ),
            }
        });
    }

    fn dropped_files(&mut self, ctx: &egui::Context, actions: &mut Vec<UiAction>) {
        let files: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        for p in files {
            if crate::audio::is_audio_path(&p) {
                self.state.file_input = p.display().to_string();
                actions.push(UiAction::UseSource(Source::File { path: p, looped: true }));
            } else {
                self.state.model_input = p.display().to_string();
                actions.push(UiAction::LoadModel(p));
            }
        }
    }

    fn update_textures(&mut self, ctx: &egui::Context) {
        plots::update_texture(ctx, &mut self.spec, "spectrogram", plots::spectrogram_image(&self.state.features));
        self.rasters.resize_with(self.state.layers.len(), || None);
        let spiking = self.state.mode == Mode::Spiking;
        for (l, h) in self.state.layers.iter().enumerate() {
            let img = plots::raster_image(&h.outputs, spiking, plots::color_for(l + 4));
            plots::update_texture(ctx, &mut self.rasters[l], &format!("raster{l}"), img);
        }
    }

    fn log_stats(&mut self, build: Duration) {
        let Some(s) = &mut self.stats else { return };
        s.paints += 1;
        s.paints_total += 1;
        s.build += build;
        if s.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let c = &self.worker.counters;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let line = serde_json::json!({
            "wall": SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
            "fps": s.paints as f64 / s.last.elapsed().as_secs_f64(),
            "paints_total": s.paints_total,
            "ui_build_ms": s.build.as_secs_f64() * 1000.0 / s.paints as f64,
            "frames": ld(&c.frames),
            "frames_dropped": ld(&c.frames_dropped),
            "capture_dropped_chunks": ld(&c.capture_dropped_chunks),
            "detections": self.state.log.len(),
            "rtf": self.state.real_time_factor(),
            "source_ok": matches!(self.state.source, Some(worker::SourceState::Mic(_) | worker::SourceState::File { .. })),
            "source_error": match &self.state.source {
                Some(worker::SourceState::Failed { error, .. }) => Some(error.as_str()),
                _ => None,
            },
            "worker_restarts": ld(&c.restarts),
            "frames_seen": self.state.frames_seen,
        });
        eprintln!("{line}");
        s.paints = 0;
        s.build = Duration::ZERO;
        s.last = Instant::now();
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let now = Instant::now();
        self.drain();
        self.state.note_paint(now);
        self.update_textures(&ctx);
        let mut actions = Vec::new();
        self.dropped_files(&ctx, &mut actions);
        let c = &self.worker.counters;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let dropped = (ld(&c.capture_dropped_chunks), ld(&c.frames_dropped));
        let frames = ld(&c.frames);

        egui::Panel::top("header").show(ui, |ui| {
            ui.add_space(4.0);
            panels::header(ui, &self.state, dropped, now);
            panels::banners(ui, &mut self.state, &mut actions);
            ui.add_space(2.0);
        });
        egui::Panel::left("controls").resizable(false).exact_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("controls_scroll").show(ui, |ui| {
                panels::controls(ui, &mut self.state, &mut actions);
            });
        });
        egui::Panel::right("log").resizable(false).exact_size(330.0).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("right_scroll").show(ui, |ui| {
                panels::detections(ui, &self.state, now);
                panels::model_card(ui, &self.state);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("central_scroll").show(ui, |ui| {
                panels::central(ui, &self.state, &self.spec, &self.rasters, dropped, frames);
            });
        });
        self.apply(actions);
        self.log_stats(now.elapsed());
        ctx.request_repaint_after(REPAINT);
    }
}

/// `listen --mic`: the app's capture pipeline without a window. Prints JSON lines on
/// stdout: `{"event":"listening",...}` once the device is open, `{"event":"first_audio",...}`
/// when its audio starts, a `{"time","keyword","score","wall"}` line per detection, with
/// `frames` a `{"frame","time","energy","top","p","wall"}` line per frame (`top`: the most
/// probable keyword, `p` its smoothed probability), and `{"event":"end",...}`.
/// `wall` is Unix time in seconds, for measuring delays from outside.
pub fn listen_mic(
    model: Option<&std::path::Path>,
    device: Option<String>,
    seconds: Option<f64>,
    threshold: Option<f32>,
    reseed_level: Option<f32>,
    dense: bool,
    frames: bool,
) -> Result<()> {
    use std::io::Write;
    let (path, mut m) = crate::model::load_resolved(model)?;
    if let Some(level) = reseed_level {
        m.card.detection.reseed_level = level;
    }
    let labels = m.card.labels.clone();
    let worker = worker::spawn(Some((m, path)), Source::Mic(device)).context("starting the audio worker")?;
    if let Some(t) = threshold {
        worker.send(Command::SetThreshold(t));
    }
    if dense {
        worker.send(Command::SetMode(Mode::Dense));
    }
    let wall = || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let start = Instant::now();
    let deadline = seconds.map(|s| start + Duration::from_secs_f64(s.max(0.0)));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut n_frames = 0u64;
    let mut n_det = 0u64;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        while let Ok(e) = worker.events.try_recv() {
            match e {
                worker::Event::Source(worker::SourceState::Mic(i)) => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"event": "listening", "device": i.device, "id": i.id, "host": i.host,
                        "sample_rate": i.sample_rate, "channels": i.channels, "format": i.format,
                        "buffer_frames": i.buffer_frames, "wall": wall()})
                )?,
                worker::Event::Source(worker::SourceState::Failed { error, .. }) => {
                    writeln!(out, "{}", serde_json::json!({"event": "error", "error": error, "wall": wall()}))?;
                    out.flush()?;
                    anyhow::bail!("audio input failed: {error}");
                }
                worker::Event::Source(worker::SourceState::Stalled { device, seconds }) => {
                    writeln!(out, "{}", serde_json::json!({"event": "stalled", "device": device, "seconds": seconds, "wall": wall()}))?
                }
                worker::Event::FirstAudio(d) => writeln!(out, "{}", serde_json::json!({"event": "first_audio", "after_s": d.as_secs_f64(), "wall": wall()}))?,
                _ => {}
            }
        }
        match worker.frames.recv_timeout(Duration::from_millis(20)) {
            Ok(f) => {
                n_frames += 1;
                if frames {
                    let energy = f.features.iter().sum::<f32>() / f.features.len().max(1) as f32;
                    // The most probable keyword and its smoothed probability, whatever the threshold.
                    let (top, p) =
                        labels
                            .iter()
                            .zip(&f.probs)
                            .filter(|(l, _)| crate::detect::is_keyword(l))
                            .fold(("", 0.0f32), |b, (l, &p)| if p > b.1 { (l.as_str(), p) } else { b });
                    writeln!(out, "{}", serde_json::json!({"frame": f.index, "time": f.time, "energy": energy, "top": top, "p": p, "wall": wall()}))?;
                }
                if let Some(d) = f.detection {
                    n_det += 1;
                    writeln!(out, "{}", serde_json::json!({"time": d.time, "keyword": d.keyword, "score": d.score, "wall": wall()}))?;
                }
                out.flush()?;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => anyhow::bail!("the audio worker stopped"),
        }
    }
    let c = &worker.counters;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    writeln!(
        out,
        "{}",
        serde_json::json!({"event": "end", "frames": n_frames, "detections": n_det,
            "captured_frames": ld(&c.captured_frames), "capture_dropped_chunks": ld(&c.capture_dropped_chunks),
            "frames_dropped": ld(&c.frames_dropped), "wall": wall()})
    )?;
    out.flush()?;
    Ok(())
}
