//! The dashboard's panels, each a small function of the state. Panels only read the state
//! and edit their own controls' fields; what must reach the worker goes out as a
//! [`UiAction`].

use super::plots::{self, color_for};
use super::state::{Dashboard, STAGES};
use super::worker::{Source, SourceState, MAX_RECORD_SECONDS};
use super::UiAction;
use crate::network::Mode;
use eframe::egui::{self, Color32, RichText, TextureHandle};
use std::path::PathBuf;
use std::time::Instant;

const OK: Color32 = Color32::from_rgb(98, 190, 110);
const WARN: Color32 = Color32::from_rgb(235, 180, 60);
const BAD: Color32 = Color32::from_rgb(235, 90, 80);

/// A small filled square in a legend (drawn, so it needs no font glyph).
fn swatch(ui: &mut egui::Ui, color: Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().rect_filled(rect, 2.0, color);
}

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(title).strong().size(15.0));
    ui.separator();
}

/// A compact "name value" badge for the header.
fn chip(ui: &mut egui::Ui, text: String, color: Color32) {
    egui::Frame::new()
        .fill(color.gamma_multiply(0.18))
        .stroke(egui::Stroke::new(1.0, color.gamma_multiply(0.7)))
        .corner_radius(6.0)
        .inner_margin(egui::Margin::symmetric(8, 3))
        .show(ui, |ui| {
            ui.label(RichText::new(text).color(color).monospace());
        });
}

fn source_line(state: &Dashboard) -> (String, Color32) {
    match &state.source {
        None => ("starting…".into(), WARN),
        Some(SourceState::NoModel) => ("no model loaded: open one on the left".into(), WARN),
        Some(SourceState::Opening(Source::Mic(d))) => (format!("opening microphone {}…", d.as_deref().unwrap_or("(default)")), WARN),
        Some(SourceState::Opening(Source::File { path, .. })) => (format!("opening {}…", path.display()), WARN),
        Some(SourceState::Mic(i)) => {
            let wait = match state.first_audio {
                Some(d) => format!(", first audio after {:.2} s", d.as_secs_f64()),
                None => ", waiting for audio".into(),
            };
            (
                format!("Microphone: {} — {} Hz, {} ch, {}, via {}{wait}", i.device, i.sample_rate, i.channels, i.format, i.host),
                if state.first_audio.is_some() { OK } else { WARN },
            )
        }
        Some(SourceState::File { path, seconds, rate }) => (
            format!(
                "File: {} — {} at {} Hz, played in real time (looping)",
                path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
                seconds.map_or("length unknown".into(), |s| format!("{s:.2} s")),
                rate
            ),
            OK,
        ),
        Some(SourceState::Failed { source: Source::Mic(_), .. }) => ("microphone: not available".into(), BAD),
        Some(SourceState::Failed { source: Source::File { path, .. }, .. }) => (format!("file {}: not playable", path.display()), BAD),
        Some(SourceState::Stalled { device, seconds }) => (format!("{device} delivered no audio for {seconds:.0} s (unplugged or suspended?)"), WARN),
    }
}

/// Title, source, live figures, and the flash of the latest detection.
pub fn header(ui: &mut egui::Ui, state: &Dashboard, dropped: (u64, u64), now: Instant) {
    let flash = state.flash_level(now);
    ui.horizontal(|ui| {
        ui.label(RichText::new("spikeword").size(22.0).strong().color(Color32::from_rgb(250, 200, 90)));
        ui.label(RichText::new("live keyword spotting · hybrid spiking LMU").size(13.0).weak());
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let (cap, ui_drop) = dropped;
            let dcol = if cap + ui_drop > 0 { WARN } else { OK };
            chip(ui, format!("dropped {cap} capture · {ui_drop} frames"), dcol);
            chip(ui, format!("UI {:.0} fps", state.fps()), Color32::from_gray(200));
            chip(ui, format!("RTF {:.4}", state.real_time_factor()), Color32::from_gray(200));
            let (mode, col) = match state.mode {
                Mode::Spiking => ("SPIKING", Color32::from_rgb(120, 200, 255)),
                Mode::Dense => ("NON-SPIKING TWIN", Color32::from_rgb(255, 170, 120)),
            };
            chip(ui, mode.into(), col);
            if let Some((level, kw, score)) = flash {
                let c = color_for(state.keywords().position(|(_, l)| l == kw).unwrap_or(0));
                egui::Frame::new().fill(c.gamma_multiply(0.25 + 0.6 * level)).corner_radius(6.0).inner_margin(egui::Margin::symmetric(14, 2)).show(ui, |ui| {
                    ui.label(RichText::new(format!("“{kw}”  {score:.2}")).size(18.0).strong().color(Color32::WHITE));
                });
            }
        });
    });
    let (text, color) = source_line(state);
    ui.label(RichText::new(text).color(color));
}

/// Faults that need the user: the input failed, or a model did not load.
pub fn banners(ui: &mut egui::Ui, state: &mut Dashboard, actions: &mut Vec<UiAction>) {
    if let Some(SourceState::Failed { error, .. }) = &state.source {
        let error = error.clone();
        egui::Frame::new().fill(BAD.gamma_multiply(0.25)).inner_margin(8).corner_radius(4.0).show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(format!("No audio: {error}")).color(Color32::WHITE));
                if ui.button("Retry").clicked() {
                    actions.push(UiAction::Retry);
                }
                if ui.button("Use default microphone").clicked() {
                    actions.push(UiAction::UseSource(Source::Mic(None)));
                }
                ui.label(RichText::new("or pick another device / play a file on the left").weak());
            });
        });
    }
    if let Some(err) = state.model_error.clone() {
        egui::Frame::new().fill(BAD.gamma_multiply(0.25)).inner_margin(8).corner_radius(4.0).show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                let keep = match &state.card {
                    Some(c) => format!(" — still running “{}”", c.name),
                    None => String::new(),
                };
                ui.label(RichText::new(format!("Model not loaded: {err}{keep}")).color(Color32::WHITE));
                if ui.button("Dismiss").clicked() {
                    state.model_error = None;
                }
            });
        });
    }
}

/// Input device, model, thresholds, spiking switch, recording.
pub fn controls(ui: &mut egui::Ui, state: &mut Dashboard, actions: &mut Vec<UiAction>) {
    section(ui, "Input");
    let picked_name = match &state.picked_device {
        None => "Default microphone".to_string(),
        Some(id) => state.devices.iter().find(|d| &d.id == id).map_or(id.clone(), |d| d.name.clone()),
    };
    ui.horizontal(|ui| {
        let combo = egui::ComboBox::from_id_salt("device").width(190.0).selected_text(picked_name).show_ui(ui, |ui| {
            ui.selectable_value(&mut state.picked_device, None, "Default microphone");
            for d in &state.devices {
                let label = if d.is_default { format!("{} (default)", d.name) } else { d.name.clone() };
                ui.selectable_value(&mut state.picked_device, Some(d.id.clone()), label).on_hover_text(&d.id);
            }
        });
        if combo.response.clicked() {
            actions.push(UiAction::RefreshDevices);
        }
        if ui.button("Refresh").on_hover_text("list devices again").clicked() {
            actions.push(UiAction::RefreshDevices);
        }
    });
    if let Some(e) = &state.devices_error {
        ui.label(RichText::new(e).color(BAD).small());
    }
    if ui.button("Listen to this device").clicked() {
        actions.push(UiAction::UseSource(Source::Mic(state.picked_device.clone())));
    }
    ui.horizontal(|ui| {
        let field = ui.add(egui::TextEdit::singleline(&mut state.file_input).hint_text("audio file…").desired_width(170.0));
        if std::mem::take(&mut state.focus_file_input) {
            field.request_focus();
        }
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Play file").clicked() || entered) && !state.file_input.trim().is_empty() {
            actions.push(UiAction::UseSource(Source::File { path: PathBuf::from(state.file_input.trim()), looped: true }));
        }
    });

    section(ui, "Model");
    match &state.card {
        Some(c) => ui.label(format!("{} · {} classes", c.name, c.labels.len())),
        None => ui.label(RichText::new("none loaded").color(WARN)),
    };
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut state.model_input).hint_text("model .safetensors…").desired_width(170.0));
        if ui.button("Load").clicked() && !state.model_input.trim().is_empty() {
            actions.push(UiAction::LoadModel(PathBuf::from(state.model_input.trim())));
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Open…").on_hover_text("file dialog (desktop portal)").clicked() {
            actions.push(UiAction::OpenModelDialog);
        }
        ui.label(RichText::new("or drop a file on the window").weak().small());
    });
    if let Some(n) = &state.notice {
        ui.label(RichText::new(n).weak().small());
    }
    if let Some(p) = &state.model_loading {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!("loading {}", p.display()));
        });
    }

    section(ui, "Detection");
    let before = state.global_threshold;
    ui.add(egui::Slider::new(&mut state.global_threshold, 0.05..=1.0).text("all keywords"));
    if state.global_threshold != before {
        actions.push(UiAction::SetThreshold(state.global_threshold));
    }
    // Restarting the front end's smoothed energy after a keyword-like word lets the next
    // keyword through; lower levels restart after more ordinary words too, and running
    // speech then comes through louder.
    let before = state.reseed_level;
    ui.add(egui::Slider::new(&mut state.reseed_level, 0.0..=1.0).text("front-end restart level"))
        .on_hover_text("1 s after any keyword's probability reaches this level, the front end forgets the loudness of the last words (0: never)");
    if state.reseed_level != before {
        actions.push(UiAction::SetReseedLevel(state.reseed_level));
    }
    egui::CollapsingHeader::new("per keyword").default_open(false).show(ui, |ui| {
        let kws: Vec<(usize, String)> = state.keywords().map(|(i, l)| (i, l.to_string())).collect();
        for (k, (i, label)) in kws.into_iter().enumerate() {
            let mut t = state.threshold_of(i);
            let r = ui.add(egui::Slider::new(&mut t, 0.05..=1.0).text(RichText::new(&label).color(color_for(k))));
            if r.changed() {
                if let Some(x) = state.thresholds.get_mut(i) {
                    *x = t;
                }
                actions.push(UiAction::SetThresholdFor(label, t));
            }
        }
    });

    section(ui, "Network");
    let mut mode = state.mode;
    ui.radio_value(&mut mode, Mode::Spiking, "spiking (integer spike counts)");
    ui.radio_value(&mut mode, Mode::Dense, "non-spiking twin (ReLU rates)");
    if mode != state.mode {
        state.mode = mode;
        actions.push(UiAction::SetMode(mode));
    }

    section(ui, "Record");
    ui.add(egui::Slider::new(&mut state.record_seconds, 1.0..=MAX_RECORD_SECONDS).text("seconds").integer());
    ui.add(egui::TextEdit::singleline(&mut state.record_path).desired_width(240.0));
    if ui.button(format!("Save last {:.0} s as WAV", state.record_seconds)).clicked() {
        actions.push(UiAction::Record);
    }
    match &state.record_status {
        Some(Ok(p)) => ui.label(RichText::new(format!("saved {}", p.display())).color(OK).small()),
        Some(Err(e)) => ui.label(RichText::new(format!("not saved: {e}")).color(BAD).small()),
        None => ui.label(""),
    };
}

/// The detection log, newest first.
pub fn detections(ui: &mut egui::Ui, state: &Dashboard, now: Instant) {
    section(ui, "Detections");
    let flash = state.flash_level(now);
    let (text, fill) = match flash {
        Some((level, kw, score)) => {
            let c = color_for(state.keywords().position(|(_, l)| l == kw).unwrap_or(0));
            (format!("{}  {score:.2}", kw.to_uppercase()), c.gamma_multiply(0.3 + 0.7 * level))
        }
        None => ("listening…".to_string(), Color32::from_gray(38)),
    };
    egui::Frame::new().fill(fill).corner_radius(8.0).inner_margin(10).show(ui, |ui| {
        ui.set_min_width(ui.available_width());
        ui.vertical_centered(|ui| ui.label(RichText::new(text).size(26.0).strong().color(Color32::WHITE)));
    });
    ui.add_space(4.0);
    egui::ScrollArea::vertical().id_salt("log").max_height(230.0).auto_shrink([false, true]).show(ui, |ui| {
        egui::Grid::new("log_grid").striped(true).num_columns(3).min_col_width(60.0).show(ui, |ui| {
            ui.label(RichText::new("time (UTC)").strong());
            ui.label(RichText::new("keyword").strong());
            ui.label(RichText::new("score").strong());
            ui.end_row();
            for e in &state.log {
                let k = state.keywords().position(|(_, l)| l == e.keyword).unwrap_or(0);
                ui.label(RichText::new(clock(e.wall)).monospace());
                ui.label(RichText::new(&e.keyword).color(color_for(k)).strong());
                ui.label(RichText::new(format!("{:.2}", e.score)).monospace());
                ui.end_row();
            }
        });
        if state.log.is_empty() {
            ui.label(RichText::new("no keyword yet").weak());
        }
    });
}

/// Wall-clock time of day (UTC) with centiseconds.
fn clock(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{:02}", s / 3600, (s / 60) % 60, s % 60, d.subsec_millis() / 10)
}

/// The loaded model's card.
pub fn model_card(ui: &mut egui::Ui, state: &Dashboard) {
    section(ui, "Model card");
    let Some(c) = &state.card else {
        ui.label(RichText::new("no model").weak());
        return;
    };
    let a = &c.architecture;
    // Plain wrapped lines: a grid would not wrap long values (the label list) in the panel.
    let row = |ui: &mut egui::Ui, k: &str, v: String| {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format!("{k}:")).weak());
            ui.label(v);
        });
    };
    row(ui, "name", c.name.clone());
    if let Some(p) = &state.model_path {
        row(ui, "file", p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
    }
    row(ui, "labels", c.labels.join(" "));
    let fe = &c.frontend;
    row(ui, "front end", format!("{} Hz, {} mel bands, {} ms hop", fe.sample_rate, fe.n_mels, fe.hop_length * 1000 / fe.sample_rate as usize));
    for (i, l) in a.layers.iter().enumerate() {
        row(ui, &format!("layer {i}"), format!("LMU {} x {} over {} frames, {} spiking units", l.memory_d, l.order, l.theta, l.units));
    }
    row(ui, "dt", format!("{}", a.dt));
    row(ui, "parameters", format!("{}", a.parameter_count()));
    let d = &c.detection;
    let reseed = if d.reseed_level > 0.0 { format!(", front end restarted after a keyword reaches {}", d.reseed_level) } else { String::new() };
    row(ui, "detection", format!("threshold {}, smoothing {} frames, refractory {} s{reseed}", d.default_threshold, d.smoothing_frames, d.refractory_s));
    if !c.metrics.is_null() {
        egui::CollapsingHeader::new("metrics").default_open(false).show(ui, |ui| {
            ui.label(RichText::new(serde_json::to_string_pretty(&c.metrics).unwrap_or_default()).monospace().small());
        });
    }
    if !c.provenance.is_null() {
        egui::CollapsingHeader::new("provenance").default_open(false).show(ui, |ui| {
            ui.label(RichText::new(serde_json::to_string_pretty(&c.provenance).unwrap_or_default()).monospace().small());
        });
    }
}

fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0} "),
    }
}

/// Spectrogram, spike raster and spike counts.
pub fn signals(ui: &mut egui::Ui, state: &Dashboard, spec: &Option<TextureHandle>, rasters: &[Option<TextureHandle>]) {
    let w = ui.available_width();
    // Named for the loaded model's front end: the shipped one compresses with PCEN.
    let kind = state.card.as_ref().map_or("log", |c| c.frontend.compression.name());
    ui.label(RichText::new(format!("{kind}-mel spectrogram (last 5 s)")).strong());
    if let Some(t) = spec {
        ui.add(egui::Image::from_texture((t.id(), egui::vec2(w, 80.0))).corner_radius(3.0));
    }
    ui.add_space(4.0);
    ui.label(RichText::new("spike raster: one row per neuron, brighter = more spikes in the frame").strong());
    for (l, t) in rasters.iter().enumerate() {
        if let Some(t) = t {
            let units = state.layers.get(l).map_or(0, |h| h.units);
            let hgt = (units as f32 * 0.4).clamp(40.0, 90.0);
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!("L{l}")).color(color_for(l + 4)).monospace());
                ui.add(egui::Image::from_texture((t.id(), egui::vec2(ui.available_width(), hgt))).corner_radius(3.0));
            });
        }
    }
}

/// Per-layer activity numbers and the operation counts.
pub fn spike_stats(ui: &mut egui::Ui, state: &Dashboard) {
    ui.label(RichText::new("Spikes (over the last 5 s)").strong());
    // Short headers: the grid shares half the window with the performance table.
    egui::Grid::new("spike_stats").striped(true).num_columns(5).spacing([10.0, 3.0]).show(ui, |ui| {
        for (h, tip) in [
            ("layer (units)", "layer and its number of spiking units"),
            ("spikes/fr", "spikes per 10 ms frame"),
            ("active", "share of neuron-frames with at least one spike"),
            ("bits/act", "bits per activity (the paper: at most 3.74)"),
            ("mem ev/fr", "memory read-out events (delta coding) per frame"),
        ] {
            ui.label(RichText::new(h).weak()).on_hover_text(tip);
        }
        ui.end_row();
        for l in 0..state.layers.len() {
            ui.label(RichText::new(format!("L{l} ({})", state.layers[l].units)).color(color_for(l + 4)));
            ui.label(RichText::new(format!("{:.1}", state.spikes_per_frame(l))).monospace());
            ui.label(RichText::new(format!("{:.1} %", 100.0 * state.active_fraction(l))).monospace());
            let bits = match state.bits_per_activity(l) {
                Some(b) => format!("{b:.2}"),
                None if state.modes.is_empty() => "—".to_string(),
                None => "— (dense)".to_string(),
            };
            ui.label(RichText::new(bits).monospace());
            ui.label(RichText::new(format!("{:.1}", state.memory_events_per_frame(l))).monospace());
            ui.end_row();
        }
    });
    let (ops, macs) = state.ops_per_second();
    ui.add_space(4.0);
    let kind = if state.window_is_spiking() { "spike-driven" } else { "(twin: every input row)" };
    ui.add(
        egui::Label::new(format!(
            "synaptic ops: {}op/s {kind} vs {}MAC/s dense ({:.1} %)",
            si(ops),
            si(macs),
            if macs > 0.0 { 100.0 * ops / macs } else { 0.0 }
        ))
        .wrap(),
    );
    let (adds, mults, dense) = state.network_ops_per_frame();
    ui.add(
        egui::Label::new(format!(
            "whole network per frame: {} adds + {} multiplies vs {} dense MACs ({:.1} %); input events {:.1}/frame",
            si(adds),
            si(mults),
            si(dense),
            if dense > 0.0 { 100.0 * (adds + mults) / dense } else { 0.0 },
            state.input_events_per_frame()
        ))
        .wrap(),
    );
}

/// Per-stage latency, real-time factor, delivery delay, drops.
pub fn performance(ui: &mut egui::Ui, state: &Dashboard, dropped: (u64, u64), frames: u64) {
    ui.label(RichText::new("Performance (per 10 ms frame, last 5 s)").strong());
    let lat = state.stage_latency_us();
    egui::Grid::new("perf").striped(true).num_columns(3).spacing([14.0, 3.0]).show(ui, |ui| {
        for h in ["stage", "median µs", "p99 µs"] {
            ui.label(RichText::new(h).weak());
        }
        ui.end_row();
        for (name, (m, p)) in STAGES.iter().zip(lat) {
            ui.label(*name);
            ui.label(RichText::new(format!("{m:.1}")).monospace());
            ui.label(RichText::new(format!("{p:.1}")).monospace());
            ui.end_row();
        }
    });
    let (dm, dp) = state.delivery_ms();
    ui.label(format!("real-time factor {:.4} · worker to UI {dm:.0} ms (p99 {dp:.0})", state.real_time_factor()));
    ui.label(format!(
        "frames {frames} · dropped: {} capture chunks, {} frames{}",
        dropped.0,
        dropped.1,
        if state.frames_skipped > 0 { format!(", {} during model swap", state.frames_skipped) } else { String::new() }
    ));
}

/// The central area: probabilities on top, then the signals and numbers.
pub fn central(ui: &mut egui::Ui, state: &Dashboard, spec: &Option<TextureHandle>, rasters: &[Option<TextureHandle>], dropped: (u64, u64), frames: u64) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("keyword probabilities, dashed: thresholds").strong());
        ui.add_space(8.0);
        for (k, (_, l)) in state.keywords().enumerate() {
            swatch(ui, color_for(k));
            ui.label(RichText::new(l).color(color_for(k)));
        }
    });
    plots::probabilities(ui, state, 170.0);
    ui.add_space(4.0);
    signals(ui, state, spec, rasters);
    ui.add_space(4.0);
    ui.columns(2, |cols| {
        plots::spike_trace(&mut cols[0], state, 100.0);
        plots::memory_event_trace(&mut cols[1], state, 100.0);
    });
    ui.add_space(6.0);
    ui.columns(2, |cols| {
        spike_stats(&mut cols[0], state);
        performance(&mut cols[1], state, dropped, frames);
    });
}
