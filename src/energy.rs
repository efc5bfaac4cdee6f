//! Activity and energy accounting (METHOD.md section 4), accumulated frame by frame from a
//! running network: spikes per frame per layer, active fraction, bits per activity,
//! significant bits per weight multiply, synaptic operations against dense MACs.

use crate::network::Network;
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
    /// Fan-out width of each layer's output: the next layer's (memory_d + units), or the classes.
    fan_out: Vec<usize>,
    max_count: Vec<Vec<f32>>,
    sig_bits_sum: f64,
    nonzero_events: u64,
    /// Weight rows added for single spikes (pure additions) and for counts > 1 (multiplies).
    add_ops: u64,
    mul_ops: u64,
    event_dense_macs: u64,
    fixed_macs: u64,
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

#[derive(Debug, Clone, Serialize)]
pub struct EnergyReport {
    pub frames: u64,
    pub audio_seconds: f64,
    pub spikes_per_frame: Vec<f64>,
    pub active_fraction: Vec<f64>,
    pub bits_per_activity: f64,
    pub significant_bits_per_multiply: f64,
    pub synaptic_ops_per_second: f64,
    pub dense_macs_per_second: f64,
    pub synaptic_ops_over_dense_macs: f64,
    /// MACs per second that are dense in both versions (features in, memory to hidden, memory update).
    pub fixed_macs_per_second: f64,
    pub pj_per_mac: f64,
    pub pj_per_add: f64,
    /// Energy of the spike-driven connections per second of audio (uJ), spiking vs dense.
    pub event_energy_uj_per_second: f64,
    pub event_energy_dense_uj_per_second: f64,
    /// Whole network, fixed part included (uJ per second of audio).
    pub total_energy_uj_per_second: f64,
    pub total_energy_dense_uj_per_second: f64,
}

impl ActivityMeter {
    pub fn new(net: &Network, seconds_per_frame: f64) -> Self {
        let a = net.architecture();
        let n = a.layers.len();
        let fan_out = (0..n).map(|l| if l + 1 < n { a.layers[l + 1].memory_d + a.layers[l + 1].units } else { a.classes }).collect();
        Self {
            seconds_per_frame,
            spikes: vec![0.0; n],
            active: vec![0; n],
            units: a.layers.iter().map(|l| l.units).collect(),
            max_count: a.layers.iter().map(|l| vec![0.0; l.units]).collect(),
            fan_out,
            ..Default::default()
        }
    }

    /// Records the frame the network just computed (call after each `step`).
    pub fn record(&mut self, net: &Network) {
        self.frames += 1;
        let st = net.stats();
        self.event_dense_macs += st.event_dense_macs;
        self.fixed_macs += st.fixed_macs;
        if net.mode() == crate::network::Mode::Dense {
            // Rates are real numbers: every connection is a multiply-accumulate.
            self.mul_ops += st.event_dense_macs;
            return;
        }
        for l in 0..self.units.len() {
            let out = net.layer_output(l);
            self.spikes[l] += st.spikes[l] as f64;
            self.active[l] += st.active[l] as u64;
            for (m, &n) in self.max_count[l].iter_mut().zip(out) {
                if n > *m {
                    *m = n;
                }
                if n != 0.0 {
                    let c = n as u32;
                    self.nonzero_events += 1;
                    self.sig_bits_sum += significant_bits(c.max(1)) as f64;
                    if c == 1 {
                        self.add_ops += self.fan_out[l] as u64;
                    } else {
                        self.mul_ops += self.fan_out[l] as u64;
                    }
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
        for (a, b) in self.max_count.iter_mut().flatten().zip(o.max_count.iter().flatten()) {
            *a = a.max(*b);
        }
        self.sig_bits_sum += o.sig_bits_sum;
        self.nonzero_events += o.nonzero_events;
        self.add_ops += o.add_ops;
        self.mul_ops += o.mul_ops;
        self.event_dense_macs += o.event_dense_macs;
        self.fixed_macs += o.fixed_macs;
    }

    pub fn report(&self) -> EnergyReport {
        let f = self.frames.max(1) as f64;
        let secs = f * self.seconds_per_frame;
        let ops = (self.add_ops + self.mul_ops) as f64;
        let event_e = self.add_ops as f64 * PJ_PER_ADD + self.mul_ops as f64 * PJ_PER_MAC;
        let dense_e = self.event_dense_macs as f64 * PJ_PER_MAC;
        let fixed_e = self.fixed_macs as f64 * PJ_PER_MAC;
        let max: Vec<f32> = self.max_count.iter().flatten().copied().collect();
        EnergyReport {
            frames: self.frames,
            audio_seconds: secs,
            spikes_per_frame: self.spikes.iter().map(|s| s / f).collect(),
            active_fraction: self.active.iter().zip(&self.units).map(|(&a, &u)| a as f64 / (f * u as f64)).collect(),
            bits_per_activity: bits_from_max_counts(&max),
            significant_bits_per_multiply: self.sig_bits_sum / self.nonzero_events.max(1) as f64,
            synaptic_ops_per_second: ops / secs,
            dense_macs_per_second: self.event_dense_macs as f64 / secs,
            synaptic_ops_over_dense_macs: ops / (self.event_dense_macs as f64).max(1.0),
            fixed_macs_per_second: self.fixed_macs as f64 / secs,
            pj_per_mac: PJ_PER_MAC,
            pj_per_add: PJ_PER_ADD,
            event_energy_uj_per_second: event_e / secs / 1e6,
            event_energy_dense_uj_per_second: dense_e / secs / 1e6,
            total_energy_uj_per_second: (event_e + fixed_e) / secs / 1e6,
            total_energy_dense_uj_per_second: (dense_e + fixed_e) / secs / 1e6,
        }
    }
}
