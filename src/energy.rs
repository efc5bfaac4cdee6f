//! Activity and energy accounting (METHOD.md section 4), accumulated frame by frame from a
//! running network: spikes and memory (delta) events per frame per layer, active fraction,
//! bits per activity, significant bits per weight multiply, and the arithmetic of each group
//! of connections (additions and multiplies) against the dense twin's multiply-accumulates.

use crate::network::{Mode, Network, OpCount};
use serde::Serialize;

/// pJ per 32-bit multiply-accumulate and per 32-bit add (45 nm; Horowitz 2014), the
/// convention METHOD.md names.
pub const PJ_PER_MAC: f64 = 4.6;
pub const PJ_PER_ADD: f64 = 0.9;

#[derive(Debug, Clone, Default)]
pub struct ActivityMeter {
    frames: u64,
    seconds_per_frame: f64,
    spikes: Vec<f64>,
    active: Vec<u64>,
    units: Vec<usize>,
    memory_events: Vec<u64>,
    memory_states: Vec<usize>,
    input_events: u64,
    max_count: Vec<Vec<f32>>,
    sig_bits_sum: f64,
    nonzero_events: u64,
    input: OpCount,
    memory_update: OpCount,
    memory_read: OpCount,
    spike_fed: OpCount,
}

/// Number of significant bits of a positive integer count: highest set bit - lowest set
/// bit + 1 (1 means a pure add or shift).
pub fn significant_bits(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        32 - n.leading_zeros() - n.trailing_zeros()
    }
}

/// Bits per activity from each neuron's largest spike count: log2(1 + max), averaged.
pub fn bits_from_max_counts(max: &[f32]) -> f64 {
    max.iter().map(|&m| (1.0 + m.max(0.0) as f64).log2()).sum::<f64>() / max.len().max(1) as f64
}

/// Additions, multiplies and the dense twin's multiply-accumulates, per frame.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OpsPerFrame {
    pub adds: f64,
    pub multiplies: f64,
    pub dense_macs: f64,
    /// (adds + multiplies) / dense_macs.
    pub ops_over_dense: f64,
}

impl OpsPerFrame {
    fn of(c: &OpCount, frames: f64) -> Self {
        Self {
            adds: c.adds as f64 / frames,
            multiplies: c.macs as f64 / frames,
            dense_macs: c.dense_macs as f64 / frames,
            ops_over_dense: c.ops() as f64 / (c.dense_macs as f64).max(1.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnergyReport {
    pub frames: u64,
    pub audio_seconds: f64,
    pub spikes_per_frame: Vec<f64>,
    pub active_fraction: Vec<f64>,
    /// Memory read-out events (states whose delta level changed) per frame, per layer, and
    /// as a share of the layer's memory states.
    pub memory_events_per_frame: Vec<f64>,
    pub memory_event_fraction: Vec<f64>,
    /// Layer-0 input events (features whose delta level changed) per frame.
    pub input_events_per_frame: f64,
    pub bits_per_activity: f64,
    pub significant_bits_per_multiply: f64,
    /// The spike-driven connections: synaptic operations against the dense MACs of the
    /// same connections.
    pub synaptic_ops_per_second: f64,
    pub dense_macs_per_second: f64,
    pub synaptic_ops_over_dense_macs: f64,
    /// Per frame, by group of connections, and the whole network.
    pub ops_input: OpsPerFrame,
    pub ops_memory_update: OpsPerFrame,
    pub ops_memory_read: OpsPerFrame,
    pub ops_spike_fed: OpsPerFrame,
    pub ops_total: OpsPerFrame,
    pub pj_per_mac: f64,
    pub pj_per_add: f64,
    /// Energy of the spike-driven connections per second of audio (uJ), spiking vs dense.
    pub event_energy_uj_per_second: f64,
    pub event_energy_dense_uj_per_second: f64,
    /// Whole network (uJ per second of audio), this mode vs the dense twin.
    pub total_energy_uj_per_second: f64,
    pub total_energy_dense_uj_per_second: f64,
}

fn energy_pj(c: &OpCount) -> f64 {
    c.adds as f64 * PJ_PER_ADD + c.macs as f64 * PJ_PER_MAC
}

impl ActivityMeter {
    pub fn new(net: &Network, seconds_per_frame: f64) -> Self {
        let a = net.architecture();
        let n = a.layers.len();
        Self {
            seconds_per_frame,
            spikes: vec![0.0; n],
            active: vec![0; n],
            memory_events: vec![0; n],
            memory_states: a.layers.iter().map(|l| l.memory_d * l.order).collect(),
            units: a.layers.iter().map(|l| l.units).collect(),
            max_count: a.layers.iter().map(|l| vec![0.0; l.units]).collect(),
            ..Default::default()
        }
    }

    /// Records the frame the network just computed (call after each `step`).
    pub fn record(&mut self, net: &Network) {
        self.frames += 1;
        let st = net.stats();
        self.input.add(&st.input);
        self.memory_update.add(&st.memory_update);
        self.memory_read.add(&st.memory_read);
        self.spike_fed.add(&st.spike_fed);
        self.input_events += st.input_events as u64;
        for (a, &b) in self.memory_events.iter_mut().zip(&st.memory_events) {
            *a += b as u64;
        }
        if net.mode() == Mode::Dense {
            return;
        }
        for l in 0..self.units.len() {
            self.spikes[l] += st.spikes[l] as f64;
            self.active[l] += st.active[l] as u64;
            for (m, &n) in self.max_count[l].iter_mut().zip(net.layer_output(l)) {
                if n > *m {
                    *m = n;
                }
                if n != 0.0 {
                    self.nonzero_events += 1;
                    self.sig_bits_sum += significant_bits((n as u32).max(1)) as f64;
                }
            }
        }
    }

    /// Adds another meter's counts (streams measured in parallel on the same network).
    pub fn merge(&mut self, o: &ActivityMeter) {
        self.frames += o.frames;
        for (a, b) in self.spikes.iter_mut().zip(&o.spikes) {
            *a += b;
        }
        for (a, b) in self.active.iter_mut().zip(&o.active) {
            *a += b;
        }
        for (a, b) in self.memory_events.iter_mut().zip(&o.memory_events) {
            *a += b;
        }
        self.input_events += o.input_events;
        for (a, b) in self.max_count.iter_mut().flatten().zip(o.max_count.iter().flatten()) {
            *a = a.max(*b);
        }
        self.sig_bits_sum += o.sig_bits_sum;
        self.nonzero_events += o.nonzero_events;
        self.input.add(&o.input);
        self.memory_update.add(&o.memory_update);
        self.memory_read.add(&o.memory_read);
        self.spike_fed.add(&o.spike_fed);
    }

    pub fn report(&self) -> EnergyReport {
        let f = self.frames.max(1) as f64;
        let secs = f * self.seconds_per_frame;
        let mut total = self.input;
        total.add(&self.memory_update);
        total.add(&self.memory_read);
        total.add(&self.spike_fed);
        let max: Vec<f32> = self.max_count.iter().flatten().copied().collect();
        let sf = &self.spike_fed;
        EnergyReport {
            frames: self.frames,
            audio_seconds: secs,
            spikes_per_frame: self.spikes.iter().map(|s| s / f).collect(),
            active_fraction: self.active.iter().zip(&self.units).map(|(&a, &u)| a as f64 / (f * u as f64)).collect(),
            memory_events_per_frame: self.memory_events.iter().map(|&e| e as f64 / f).collect(),
            memory_event_fraction: self.memory_events.iter().zip(&self.memory_states).map(|(&e, &n)| e as f64 / (f * n.max(1) as f64)).collect(),
            input_events_per_frame: self.input_events as f64 / f,
            bits_per_activity: bits_from_max_counts(&max),
            significant_bits_per_multiply: self.sig_bits_sum / self.nonzero_events.max(1) as f64,
            synaptic_ops_per_second: sf.ops() as f64 / secs,
            dense_macs_per_second: sf.dense_macs as f64 / secs,
            synaptic_ops_over_dense_macs: sf.ops() as f64 / (sf.dense_macs as f64).max(1.0),
            ops_input: OpsPerFrame::of(&self.input, f),
            ops_memory_update: OpsPerFrame::of(&self.memory_update, f),
            ops_memory_read: OpsPerFrame::of(&self.memory_read, f),
            ops_spike_fed: OpsPerFrame::of(sf, f),
            ops_total: OpsPerFrame::of(&total, f),
            pj_per_mac: PJ_PER_MAC,
            pj_per_add: PJ_PER_ADD,
            event_energy_uj_per_second: energy_pj(sf) / secs / 1e6,
            event_energy_dense_uj_per_second: sf.dense_macs as f64 * PJ_PER_MAC / secs / 1e6,
            total_energy_uj_per_second: energy_pj(&total) / secs / 1e6,
            total_energy_dense_uj_per_second: total.dense_macs as f64 * PJ_PER_MAC / secs / 1e6,
        }
    }
}
