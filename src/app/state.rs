//! Everything the dashboard shows, in one struct, fed by the worker's events and frames.
//! No egui here: the state and the numbers derived from it are plain data, so they are
//! unit-tested without a window.

use super::worker::{Event, FrameMsg, SourceState};
use crate::capture::DeviceEntry;
use crate::detect::is_keyword;
use crate::model::ModelCard;
use crate::network::{Mode, OpCount};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Seconds of history the traces, spectrogram and raster show.
pub const HISTORY_SECONDS: f64 = 5.0;
/// Frames of history (10 ms frames).
pub const HISTORY_FRAMES: usize = 500;
/// Detections kept in the log.
pub const MAX_LOG: usize = 200;
/// How long the detection flash lasts.
pub const FLASH: Duration = Duration::from_millis(1200);

/// A fixed-capacity ring of values, oldest first when read.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    data: Vec<T>,
    head: usize,
    cap: usize,
}

impl<T: Clone> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Self { data: Vec::with_capacity(cap.max(1)), head: 0, cap: cap.max(1) }
    }
    pub fn push(&mut self, v: T) {
        if self.data.len() < self.cap {
            self.data.push(v);
        } else {
            self.data[self.head] = v;
            self.head = (self.head + 1) % self.cap;
        }
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    pub fn clear(&mut self) {
        self.data.clear();
        self.head = 0;
    }
    /// Oldest to newest.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let (a, b) = self.data.split_at(self.head);
        b.iter().chain(a.iter())
    }
    pub fn last(&self) -> Option<&T> {
        if self.data.is_empty() {
            None
        } else {
            Some(&self.data[(self.head + self.data.len() - 1) % self.data.len()])
        }
    }
}

/// A ring of fixed-width rows (one row per frame): spectrogram, probabilities, spike counts.
#[derive(Debug, Clone)]
pub struct RingMatrix {
    cols: usize,
    rows: Ring<Vec<f32>>,
}

impl RingMatrix {
    pub fn new(cols: usize, rows: usize) -> Self {
        Self { cols, rows: Ring::new(rows) }
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.rows.capacity()
    }
    /// Adds a row; a row of another width starts the matrix over at that width.
    pub fn push(&mut self, row: &[f32]) {
        if row.len() != self.cols {
            self.cols = row.len();
            self.rows.clear();
        }
        self.rows.push(row.to_vec());
    }
    /// Oldest row first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[f32]> + '_ {
        self.rows.iter().map(|r| r.as_slice())
    }
    /// Rows of the last `n` (or fewer).
    pub fn recent(&self, n: usize) -> impl Iterator<Item = &[f32]> + '_ {
        self.iter().skip(self.len().saturating_sub(n))
    }
    /// Column `c` over time, oldest first.
    pub fn column(&self, c: usize) -> impl Iterator<Item = f32> + '_ {
        self.iter().map(move |r| r[c])
    }
    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

/// Bits per activity (the paper's measure): for each neuron, log2(1 + its largest spike
/// count over the rows), averaged over neurons. Rows are frames, columns neurons.
pub fn bits_per_activity<'a>(rows: impl Iterator<Item = &'a [f32]>, units: usize) -> f64 {
    if units == 0 {
        return 0.0;
    }
    let mut max = vec![0.0f32; units];
    for r in rows {
        for (m, &n) in max.iter_mut().zip(r) {
            *m = m.max(n);
        }
    }
    crate::energy::bits_from_max_counts(&max)
}

pub use crate::pipeline::median_p99;

/// One hidden layer's recent activity.
#[derive(Debug, Clone)]
pub struct LayerHistory {
    pub units: usize,
    /// Per-neuron output per frame (spike counts, or rates in dense mode).
    pub outputs: RingMatrix,
    pub spikes: Ring<f32>,
    pub active: Ring<u32>,
    /// Memory read-out events (delta-coded memory states that changed level) per frame.
    pub memory_events: Ring<u32>,
}

/// A line of the detection log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub wall: SystemTime,
    /// Stream seconds.
    pub time: f64,
    pub keyword: String,
    pub score: f32,
}

/// Stages whose per-frame time is shown.
pub const STAGES: [&str; 5] = ["resample", "front end", "network", "detection", "total"];

/// Recent per-frame statistics that are not per-neuron.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCosts {
    /// Spike-fed connections and the whole network.
    pub spike_ops: OpCount,
    pub ops: OpCount,
    pub input_events: u32,
    /// Nanoseconds: resample, front end, network, detection.
    pub stage_ns: [u64; 4],
    /// Audio arrival at the worker to the frame reaching the UI.
    pub delivery: Duration,
}

pub struct Dashboard {
    // The model.
    pub card: Option<ModelCard>,
    pub model_path: Option<PathBuf>,
    pub model_error: Option<String>,
    pub model_loading: Option<PathBuf>,
    pub notice: Option<String>,
    pub model_gen: u32,
    pub labels: Vec<String>,
    /// Thresholds the running detector holds, as it last reported them.
    pub thresholds: Vec<f32>,
    /// The global threshold slider.
    pub global_threshold: f32,
    /// The restart-level slider, as the detector last reported it (0: never restart).
    pub reseed_level: f32,
    pub mode: Mode,
    /// Layout of FrameMsg::outputs: units per hidden layer.
    pub layer_units: Vec<usize>,
    pub frame_seconds: f64,

    // History, one row per frame.
    pub times: Ring<f64>,
    pub features: RingMatrix,
    pub probs: RingMatrix,
    pub layers: Vec<LayerHistory>,
    pub costs: Ring<FrameCosts>,
    pub modes: Ring<Mode>,
    pub frames_seen: u64,
    /// Frames that arrived for a model the dashboard did not know yet (during a swap).
    pub frames_skipped: u64,

    // Detections.
    pub log: VecDeque<LogEntry>,
    pub flash: Option<(Instant, String, f32)>,

    // The audio source.
    pub source: Option<SourceState>,
    pub first_audio: Option<Duration>,
    pub devices: Vec<DeviceEntry>,
    pub devices_error: Option<String>,
    /// Device id picked in the combo box (None: the default device).
    pub picked_device: Option<String>,
    pub file_input: String,
    /// Put the keyboard in the file field on the next repaint (after a file failed to play,
    /// so another path can be typed at once).
    pub focus_file_input: bool,

    // Controls' own state.
    pub model_input: String,
    pub record_seconds: f32,
    pub record_path: String,
    pub record_status: Option<Result<PathBuf, String>>,

    // UI performance.
    pub paints: Ring<Instant>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Self::new()
    }
}

impl Dashboard {
    pub fn new() -> Self {
        Self {
            card: None,
            model_path: None,
            model_error: None,
            model_loading: None,
            notice: None,
            model_gen: 0,
            labels: Vec::new(),
            thresholds: Vec::new(),
            global_threshold: 0.8,
            reseed_level: 0.0,
            mode: Mode::Spiking,
            layer_units: Vec::new(),
            frame_seconds: 0.01,
            times: Ring::new(HISTORY_FRAMES),
            features: RingMatrix::new(0, HISTORY_FRAMES),
            probs: RingMatrix::new(0, HISTORY_FRAMES),
            layers: Vec::new(),
            costs: Ring::new(HISTORY_FRAMES),
            modes: Ring::new(HISTORY_FRAMES),
            frames_seen: 0,
            frames_skipped: 0,
            log: VecDeque::new(),
            flash: None,
            source: None,
            first_audio: None,
            devices: Vec::new(),
            devices_error: None,
            picked_device: None,
            file_input: String::new(),
            focus_file_input: false,
            model_input: String::new(),
            record_seconds: 10.0,
            record_path: "spikeword-recording.wav".into(),
            record_status: None,
            paints: Ring::new(120),
        }
    }

    /// Indices of labels that can fire.
    pub fn keywords(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.labels.iter().enumerate().filter(|(_, l)| is_keyword(l)).map(|(i, l)| (i, l.as_str()))
    }

    pub fn apply_event(&mut self, e: Event) {
        match e {
            Event::Source(s) => {
                if matches!(s, SourceState::Opening(_)) {
                    self.first_audio = None;
                }
                if matches!(s, SourceState::Failed { source: super::worker::Source::File { .. }, .. }) {
                    self.focus_file_input = true;
                }
                self.source = Some(s);
            }
            Event::FirstAudio(d) => self.first_audio = Some(d),
            Event::Model { card, path, gen } => {
                self.labels = card.labels.clone();
                self.layer_units = card.architecture.layers.iter().map(|l| l.units).collect();
                self.frame_seconds = card.frontend.frame_seconds();
                self.global_threshold = card.detection.default_threshold;
                self.reseed_level = card.detection.reseed_level;
                self.model_gen = gen;
                self.model_input = path.display().to_string();
                self.model_path = Some(path);
                self.card = Some(*card);
                self.model_error = None;
                self.model_loading = None;
                self.notice = None;
                self.reset_history();
            }
            Event::ModelError { path, error } => {
                self.model_loading = None;
                self.model_error = Some(format!("{}: {error}", path.display()));
            }
            Event::Thresholds(t) => self.thresholds = t,
            Event::ReseedLevel(l) => self.reseed_level = l,
            Event::Mode(m) => self.mode = m,
            Event::Devices(Ok(d)) => {
                self.devices = d;
                self.devices_error = None;
            }
            Event::Devices(Err(e)) => self.devices_error = Some(e),
            Event::Recorded(r) => self.record_status = Some(r),
            Event::Notice(n) => self.notice = Some(n),
        }
    }

    fn reset_history(&mut self) {
        self.times.clear();
        self.features.clear();
        self.probs.clear();
        self.costs.clear();
        self.modes.clear();
        self.layers = self
            .layer_units
            .iter()
            .map(|&u| LayerHistory {
                units: u,
                outputs: RingMatrix::new(u, HISTORY_FRAMES),
                spikes: Ring::new(HISTORY_FRAMES),
                active: Ring::new(HISTORY_FRAMES),
                memory_events: Ring::new(HISTORY_FRAMES),
            })
            .collect();
    }

    pub fn push_frame(&mut self, f: FrameMsg, now: Instant) {
        if f.model_gen != self.model_gen || f.spikes.len() != self.layers.len() {
            self.frames_skipped += 1;
            return;
        }
        self.frames_seen += 1;
        self.times.push(f.time);
        self.features.push(&f.features);
        self.probs.push(&f.probs);
        let mut offset = 0;
        for (l, h) in self.layers.iter_mut().enumerate() {
            let end = (offset + h.units).min(f.outputs.len());
            h.outputs.push(&f.outputs[offset.min(end)..end]);
            offset = end;
            h.spikes.push(f.spikes[l]);
            h.active.push(f.active[l]);
            h.memory_events.push(f.memory_events.get(l).copied().unwrap_or(0));
        }
        self.costs.push(FrameCosts {
            spike_ops: f.spike_ops,
            ops: f.ops,
            input_events: f.input_events,
            stage_ns: [f.resample_ns, f.timing.frontend_ns, f.timing.network_ns, f.timing.detect_ns],
            delivery: now.saturating_duration_since(f.arrived),
        });
        self.modes.push(f.mode);
        if let Some(d) = f.detection {
            self.flash = Some((now, d.keyword.clone(), d.score));
            self.log.push_front(LogEntry { wall: SystemTime::now(), time: d.time, keyword: d.keyword, score: d.score });
            self.log.truncate(MAX_LOG);
        }
    }

    /// Flash strength in [0, 1]: 1 right after a detection, fading out.
    pub fn flash_level(&self, now: Instant) -> Option<(f32, &str, f32)> {
        let (t, k, s) = self.flash.as_ref()?;
        let age = now.saturating_duration_since(*t);
        (age < FLASH).then(|| (1.0 - age.as_secs_f32() / FLASH.as_secs_f32(), k.as_str(), *s))
    }

    /// The threshold the detector holds for label `i`.
    pub fn threshold_of(&self, i: usize) -> f32 {
        self.thresholds.get(i).copied().unwrap_or(self.global_threshold)
    }

    /// Whether every frame in the window ran spiking (bits per activity is about spikes).
    pub fn window_is_spiking(&self) -> bool {
        !self.modes.is_empty() && self.modes.iter().all(|&m| m == Mode::Spiking)
    }

    /// Bits per activity of layer `l` over the window; None in (or mixed with) dense mode.
    pub fn bits_per_activity(&self, l: usize) -> Option<f64> {
        let h = self.layers.get(l)?;
        (self.window_is_spiking() && !h.outputs.is_empty()).then(|| bits_per_activity(h.outputs.iter(), h.units))
    }

    /// Share of neuron-frames with non-zero output in layer `l` over the window.
    pub fn active_fraction(&self, l: usize) -> f64 {
        let Some(h) = self.layers.get(l) else { return 0.0 };
        if h.active.is_empty() || h.units == 0 {
            return 0.0;
        }
        h.active.iter().map(|&a| a as f64).sum::<f64>() / (h.active.len() * h.units) as f64
    }

    /// Mean spikes per frame of layer `l` over the window.
    pub fn spikes_per_frame(&self, l: usize) -> f64 {
        let Some(h) = self.layers.get(l) else { return 0.0 };
        if h.spikes.is_empty() {
            return 0.0;
        }
        h.spikes.iter().map(|&s| s as f64).sum::<f64>() / h.spikes.len() as f64
    }

    /// Mean memory read-out events per frame of layer `l` over the window.
    pub fn memory_events_per_frame(&self, l: usize) -> f64 {
        let Some(h) = self.layers.get(l) else { return 0.0 };
        if h.memory_events.is_empty() {
            return 0.0;
        }
        h.memory_events.iter().map(|&s| s as f64).sum::<f64>() / h.memory_events.len() as f64
    }

    /// Mean layer-0 input events per frame over the window.
    pub fn input_events_per_frame(&self) -> f64 {
        if self.costs.is_empty() {
            return 0.0;
        }
        self.costs.iter().map(|c| c.input_events as f64).sum::<f64>() / self.costs.len() as f64
    }

    /// Spike-driven synaptic operations and the dense multiply-accumulates the same
    /// connections cost, per second of audio, over the window.
    pub fn ops_per_second(&self) -> (f64, f64) {
        if self.costs.is_empty() {
            return (0.0, 0.0);
        }
        let secs = self.costs.len() as f64 * self.frame_seconds;
        let ops: u64 = self.costs.iter().map(|c| c.spike_ops.ops()).sum();
        let macs: u64 = self.costs.iter().map(|c| c.spike_ops.dense_macs).sum();
        (ops as f64 / secs, macs as f64 / secs)
    }

    /// The whole network per frame over the window: (additions, multiplies, the dense
    /// twin's multiply-accumulates).
    pub fn network_ops_per_frame(&self) -> (f64, f64, f64) {
        if self.costs.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let n = self.costs.len() as f64;
        let mut t = OpCount::default();
        for c in self.costs.iter() {
            t.add(&c.ops);
        }
        (t.adds as f64 / n, t.macs as f64 / n, t.dense_macs as f64 / n)
    }

    /// Per stage (see [`STAGES`]): median and p99 per frame, microseconds, over the window.
    pub fn stage_latency_us(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(STAGES.len());
        for s in 0..STAGES.len() {
            let mut v: Vec<f64> = self.costs.iter().map(|c| if s < 4 { c.stage_ns[s] } else { c.stage_ns.iter().sum() } as f64 / 1000.0).collect();
            out.push(median_p99(&mut v));
        }
        out
    }

    /// Processing time over audio time, over the window.
    pub fn real_time_factor(&self) -> f64 {
        if self.costs.is_empty() {
            return 0.0;
        }
        let ns: u64 = self.costs.iter().map(|c| c.stage_ns.iter().sum::<u64>()).sum();
        ns as f64 / 1e9 / (self.costs.len() as f64 * self.frame_seconds)
    }

    /// Median and p99 of the time from audio reaching the worker to its frame reaching the
    /// UI, milliseconds.
    pub fn delivery_ms(&self) -> (f64, f64) {
        let mut v: Vec<f64> = self.costs.iter().map(|c| c.delivery.as_secs_f64() * 1000.0).collect();
        median_p99(&mut v)
    }

    /// Records a repaint; returns the repaint rate over the last ones.
    pub fn note_paint(&mut self, now: Instant) {
        self.paints.push(now);
    }
    pub fn fps(&self) -> f64 {
        let (Some(first), Some(last)) = (self.paints.iter().next(), self.paints.last()) else { return 0.0 };
        let span = last.saturating_duration_since(*first).as_secs_f64();
        if self.paints.len() < 2 || span <= 0.0 {
            0.0
        } else {
            (self.paints.len() - 1) as f64 / span
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_overwrites_oldest_and_reads_in_order() {
        let mut r = Ring::new(3);
        assert!(r.is_empty() && r.last().is_none());
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(r.last(), Some(&4));
        assert_eq!(r.len(), 3);
        r.clear();
        r.push(9);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn ring_matrix_rows_columns_and_width_change() {
        let mut m = RingMatrix::new(2, 3);
        for i in 0..4 {
            m.push(&[i as f32, 10.0 * i as f32]);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.column(1).collect::<Vec<_>>(), vec![10.0, 20.0, 30.0]);
        assert_eq!(m.recent(1).next(), Some(&[3.0, 30.0][..]));
        m.push(&[1.0, 2.0, 3.0]);
        assert_eq!((m.cols(), m.len()), (3, 1));
    }

    #[test]
    fn bits_per_activity_follows_the_definition() {
        // Neuron 0 peaks at 3 spikes (2 bits), neuron 1 at 1 (1 bit), neuron 2 never fires (0).
        let rows: Vec<Vec<f32>> = vec![vec![1.0, 0.0, 0.0], vec![3.0, 1.0, 0.0], vec![0.0, 0.0, 0.0]];
        let b = bits_per_activity(rows.iter().map(|r| r.as_slice()), 3);
        assert!((b - 1.0).abs() < 1e-12, "{b}");
        let silent = bits_per_activity(std::iter::empty(), 4);
        assert_eq!(silent, 0.0);
    }

    #[test]
    fn median_and_p99() {
        let mut v: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        v.reverse();
        let (m, p) = median_p99(&mut v);
        assert_eq!((m, p), (51.0, 99.0));
        assert_eq!(median_p99(&mut []), (0.0, 0.0));
    }
}
