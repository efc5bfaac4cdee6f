//! The hybrid spiking LMU: linear Legendre memories feeding spiking hidden layers.
//!
//! Per layer l and frame t (METHOD.md section 3, without the h->u and m->u connections, so
//! the memory is a causal convolution and training can run a whole clip at once):
//!   u_t = E^T a_t                  (a_t: the layer's input, memory_d channels)
//!   m_t = Abar m_{t-1} + Bbar u_t  (per channel; linear, never spikes)
//!   h_t = spike(W_x^T a_t + W_m^T m_t + b)
//! and class scores z_t = W_o^T h_t + b_o from the last layer.
//!
//! Matrices are stored input-major (one row per input), so a spike on input i adds row i:
//! spike-fed layers touch only the rows of inputs that fired.
//!
//! Two computations of the same maths live here and are tested against each other:
//! [`Network::step`] (streaming, one frame, sparse) and [`Network::forward_sequence`]
//! (a whole clip at once: memory by convolution with the impulse response, dense matrix
//! products), which training differentiates.

use crate::lmu::{impulse_response, MemoryBank};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// One hidden layer: an LMU memory of `memory_d` channels, each of Legendre order `order`
/// over a window of `theta` frames, feeding `units` spiking neurons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    pub memory_d: usize,
    pub order: usize,
    pub theta: f32,
    pub units: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Features per frame (the front end's n_mels).
    pub input_dim: usize,
    pub layers: Vec<LayerSpec>,
    pub classes: usize,
    /// Spiking time step: activity = spikes / dt. Large dt approaches the ReLU network;
    /// dt * rate <= 1 gives at most one spike per neuron per frame.
    pub dt: f32,
}

impl Architecture {
    /// Input width of layer `l`.
    pub fn layer_input(&self, l: usize) -> usize {
        if l == 0 { self.input_dim } else { self.layers[l - 1].units }
    }
    pub fn last_units(&self) -> usize {
        self.layers.last().map_or(self.input_dim, |l| l.units)
    }
    pub fn parameter_count(&self) -> usize {
        let mut n = 2 * self.input_dim;
        for (l, spec) in self.layers.iter().enumerate() {
            let i = self.layer_input(l);
            n += i * spec.memory_d + i * spec.units + spec.memory_d * spec.order * spec.units + spec.units;
        }
        n + self.last_units() * self.classes + self.classes
    }
}

/// The quantizer with temporally diffused error (METHOD.md section 1): integrate the rate,
/// emit the whole spikes, keep the remainder. Returns the spike count n (activity n/dt).
#[inline(always)]
pub fn quantize(v: &mut f32, pre: f32, dt: f32) -> f32 {
    *v += dt * pre.max(0.0);
    // v >= 0 always, so truncation is floor; `f32::floor` is a library call on baseline
    // x86-64 (no SSE4.1) and cost more than the spikes saved.
    let n = if *v < 16_777_216.0 { (*v as i32) as f32 } else { v.floor() };
    *v -= n;
    n
}

/// Initial neuron voltage at deployment (training draws it from [0, 1)).
pub const V_INIT: f32 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// [input x memory_d]
    pub encoder: Vec<f32>,
    /// [input x units]
    pub w_x: Vec<f32>,
    /// [(memory_d * order) x units], memory index = channel * order + coefficient
    pub w_m: Vec<f32>,
    /// [units]
    pub bias: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Per-feature normalisation applied to the log-mel input: (x - mean) / std.
    pub input_mean: Vec<f32>,
    pub input_std: Vec<f32>,
    pub layers: Vec<LayerWeights>,
    /// [last units x classes]
    pub readout_w: Vec<f32>,
    pub readout_b: Vec<f32>,
}

impl Weights {
    /// Zeros of the right shapes.
    pub fn zeros(arch: &Architecture) -> Self {
        let layers = arch
            .layers
            .iter()
            .enumerate()
            .map(|(l, s)| {
                let i = arch.layer_input(l);
                LayerWeights {
                    encoder: vec![0.0; i * s.memory_d],
                    w_x: vec![0.0; i * s.units],
                    w_m: vec![0.0; s.memory_d * s.order * s.units],
                    bias: vec![0.0; s.units],
                }
            })
            .collect();
        Self {
            input_mean: vec![0.0; arch.input_dim],
            input_std: vec![1.0; arch.input_dim],
            layers,
            readout_w: vec![0.0; arch.last_units() * arch.classes],
            readout_b: vec![0.0; arch.classes],
        }
    }

    /// Scaled Gaussian initialisation (fan-in), with a small positive bias so hidden units
    /// start active. Used by training and by tests that need a network without a file.
    pub fn random(arch: &Architecture, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut w = Self::zeros(arch);
        let fill = |v: &mut [f32], fan_in: usize, rng: &mut rand::rngs::StdRng| {
            let n = Normal::new(0.0, (1.0 / fan_in.max(1) as f64).sqrt()).expect("finite std");
            v.iter_mut().for_each(|x| *x = n.sample(rng) as f32);
        };
        for (l, (lw, s)) in w.layers.iter_mut().zip(&arch.layers).enumerate() {
            let i = arch.layer_input(l);
            fill(&mut lw.encoder, i, &mut rng);
            fill(&mut lw.w_x, i + s.memory_d * s.order, &mut rng);
            fill(&mut lw.w_m, i + s.memory_d * s.order, &mut rng);
            lw.w_x.iter_mut().for_each(|x| *x *= 1.4);
            lw.w_m.iter_mut().for_each(|x| *x *= 1.4);
            lw.bias.iter_mut().for_each(|b| *b = rng.gen_range(0.0..0.1));
        }
        fill(&mut w.readout_w, arch.last_units(), &mut rng);
        w
    }

    /// Every tensor with its name, for the model file and for generic checks.
    pub fn tensors(&self) -> Vec<(String, &Vec<f32>)> {
        let mut t = vec![("input.mean".to_string(), &self.input_mean), ("input.std".to_string(), &self.input_std)];
        for (l, lw) in self.layers.iter().enumerate() {
            t.push((format!("layers.{l}.encoder"), &lw.encoder));
            t.push((format!("layers.{l}.w_x"), &lw.w_x));
            t.push((format!("layers.{l}.w_m"), &lw.w_m));
            t.push((format!("layers.{l}.bias"), &lw.bias));
        }
        t.push(("readout.weight".to_string(), &self.readout_w));
        t.push(("readout.bias".to_string(), &self.readout_b));
        t
    }

    pub fn tensors_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut t = vec![&mut self.input_mean, &mut self.input_std];
        for lw in self.layers.iter_mut() {
            t.push(&mut lw.encoder);
            t.push(&mut lw.w_x);
            t.push(&mut lw.w_m);
            t.push(&mut lw.bias);
        }
        t.push(&mut self.readout_w);
        t.push(&mut self.readout_b);
        t
    }

    /// Expected 2-D shape of each named tensor, in the order of [`Weights::tensors`].
    pub fn shapes(arch: &Architecture) -> Vec<(String, [usize; 2])> {
        let mut t = vec![
            ("input.mean".to_string(), [1, arch.input_dim]),
            ("input.std".to_string(), [1, arch.input_dim]),
        ];
        for (l, s) in arch.layers.iter().enumerate() {
            let i = arch.layer_input(l);
            t.push((format!("layers.{l}.encoder"), [i, s.memory_d]));
            t.push((format!("layers.{l}.w_x"), [i, s.units]));
            t.push((format!("layers.{l}.w_m"), [s.memory_d * s.order, s.units]));
            t.push((format!("layers.{l}.bias"), [1, s.units]));
        }
        t.push(("readout.weight".to_string(), [arch.last_units(), arch.classes]));
        t.push(("readout.bias".to_string(), [1, arch.classes]));
        t
    }
}

/// Whether hidden layers emit spikes or the ReLU rates of the non-spiking twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Spiking,
    Dense,
}

/// What one frame cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepStats {
    /// Spikes emitted per hidden layer this frame (sum of counts; the rate sum in dense mode).
    pub spikes: Vec<f32>,
    /// Neurons with a non-zero output, per hidden layer.
    pub active: Vec<u32>,
    /// Weight rows added for inputs that are layer outputs (spike-driven synaptic ops).
    pub event_ops: u64,
    /// Multiply-accumulates the same connections cost with dense activations.
    pub event_dense_macs: u64,
    /// Multiply-accumulates that are dense in both modes (features in, memory to hidden,
    /// memory update).
    pub fixed_macs: u64,
}

struct LayerState {
    memory: MemoryBank,
    v: Vec<f32>,
    /// Spike counts (spiking) or rates (dense) this frame.
    out: Vec<f32>,
    u: Vec<f32>,
    pre: Vec<f32>,
}

/// A network running one frame at a time.
pub struct Network {
    arch: Architecture,
    w: Weights,
    mode: Mode,
    layers: Vec<LayerState>,
    input: Vec<f32>,
    logits: Vec<f32>,
    stats: StepStats,
    /// Indices of the inputs that spiked this frame (scratch, sized once).
    active: Vec<u32>,
}

/// Adds `x[i] * row_i` of `mat` ([n x width], row-major) into `acc` for every i.
#[inline]
fn accumulate_dense(acc: &mut [f32], mat: &[f32], x: &[f32]) {
    let width = acc.len();
    for (&xi, row) in x.iter().zip(mat.chunks_exact(width)) {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += xi * w;
        }
    }
}

/// Collects the indices of non-zero inputs (spiking neurons) without a branch per input;
/// returns how many there are.
#[inline]
fn active_inputs(x: &[f32], idx: &mut [u32]) -> usize {
    let mut k = 0;
    for (i, &xi) in x.iter().enumerate() {
        idx[k] = i as u32;
        k += (xi != 0.0) as usize;
    }
    k
}

/// Adds `n_i * row_i` for the active inputs only: one weight row per neuron that fired.
#[inline]
fn accumulate_active(acc: &mut [f32], mat: &[f32], x: &[f32], active: &[u32]) {
    let width = acc.len();
    for &i in active {
        let i = i as usize;
        let n = x[i];
        let row = &mat[i * width..(i + 1) * width];
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += n * w;
        }
    }
}

impl Network {
    pub fn new(arch: Architecture, w: Weights) -> Self {
        let layers = arch
            .layers
            .iter()
            .map(|s| LayerState {
                memory: MemoryBank::new(s.memory_d, s.order, s.theta as f64),
                v: vec![V_INIT; s.units],
                out: vec![0.0; s.units],
                u: vec![0.0; s.memory_d],
                pre: vec![0.0; s.units],
            })
            .collect();
        let n_layers = arch.layers.len();
        Self {
            input: vec![0.0; arch.input_dim],
            logits: vec![0.0; arch.classes],
            stats: StepStats { spikes: vec![0.0; n_layers], active: vec![0; n_layers], ..Default::default() },
            active: vec![0; arch.layers.iter().map(|l| l.units).max().unwrap_or(0).max(arch.input_dim)],
            layers,
            mode: Mode::Spiking,
            arch,
            w,
        }
    }

    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }
    pub fn weights(&self) -> &Weights {
        &self.w
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// Switches between spiking and the non-spiking twin; state is kept.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }
    pub fn set_dt(&mut self, dt: f32) {
        self.arch.dt = dt;
    }

    /// Back to the state before any audio.
    pub fn reset(&mut self) {
        for l in &mut self.layers {
            l.memory.reset();
            l.v.fill(V_INIT);
            l.out.fill(0.0);
        }
        self.logits.fill(0.0);
    }

    /// This frame's class scores (logits).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
    pub fn stats(&self) -> &StepStats {
        &self.stats
    }
    /// Spike counts (or rates in dense mode) of hidden layer `l` this frame.
    pub fn layer_output(&self, l: usize) -> &[f32] {
        &self.layers[l].out
    }

    /// Advances every layer by one frame of log-mel features and returns the class scores.
    pub fn step(&mut self, frame: &[f32]) -> &[f32] {
        let dense = self.mode == Mode::Dense;
        let dt = self.arch.dt;
        for ((x, f), (m, s)) in self.input.iter_mut().zip(frame).zip(self.w.input_mean.iter().zip(&self.w.input_std)) {
            *x = (f - m) / s;
        }
        self.stats.event_ops = 0;
        self.stats.event_dense_macs = 0;
        self.stats.fixed_macs = 0;
        for l in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(l);
            let st = &mut rest[0];
            let spec = &self.arch.layers[l];
            let lw = &self.w.layers[l];
            let (x, spike_fed): (&[f32], bool) =
                if l == 0 { (&self.input, false) } else { (&before[l - 1].out, true) };
            let width = spec.memory_d + spec.units;
            st.u.fill(0.0);
            st.pre.fill(0.0);
            let rows_x = if dense || !spike_fed {
                accumulate_dense(&mut st.u, &lw.encoder, x);
                accumulate_dense(&mut st.pre, &lw.w_x, x);
                x.len() as u64
            } else {
                let k = active_inputs(x, &mut self.active);
                accumulate_active(&mut st.u, &lw.encoder, x, &self.active[..k]);
                accumulate_active(&mut st.pre, &lw.w_x, x, &self.active[..k]);
                k as u64
            };
            // Spiking inputs arrive as counts: one multiply per output turns them into
            // activity n/dt.
            let scale = if spike_fed && !dense { 1.0 / dt } else { 1.0 };
            st.u.iter_mut().for_each(|v| *v *= scale);
            for (p, b) in st.pre.iter_mut().zip(&lw.bias) {
                *p = *p * scale + b;
            }
            if spike_fed {
                self.stats.event_ops += rows_x * width as u64;
                self.stats.event_dense_macs += (x.len() * width) as u64;
            } else {
                self.stats.fixed_macs += (x.len() * width) as u64;
            }
            st.memory.step(&st.u);
            accumulate_dense(&mut st.pre, &lw.w_m, st.memory.state());
            self.stats.fixed_macs += (spec.memory_d * spec.order * (spec.order + 1 + spec.units)) as u64;
            let mut spikes = 0.0;
            let mut active = 0;
            if dense {
                for (o, &p) in st.out.iter_mut().zip(&st.pre) {
                    *o = p.max(0.0);
                }
            } else {
                for ((o, v), &p) in st.out.iter_mut().zip(st.v.iter_mut()).zip(&st.pre) {
                    *o = quantize(v, p, dt);
                }
            }
            for &o in &st.out {
                spikes += o;
                active += (o != 0.0) as u32;
            }
            self.stats.spikes[l] = spikes;
            self.stats.active[l] = active;
        }
        self.logits.fill(0.0);
        let last = self.layers.last().map_or(&self.input, |l| &l.out);
        let spike_fed = !self.layers.is_empty();
        let rows = if dense || !spike_fed {
            accumulate_dense(&mut self.logits, &self.w.readout_w, last);
            last.len() as u64
        } else {
            let k = active_inputs(last, &mut self.active);
            accumulate_active(&mut self.logits, &self.w.readout_w, last, &self.active[..k]);
            k as u64
        };
        let scale = if spike_fed && !dense { 1.0 / dt } else { 1.0 };
        for (z, b) in self.logits.iter_mut().zip(&self.w.readout_b) {
            *z = *z * scale + b;
        }
        if spike_fed {
            self.stats.event_ops += rows * self.arch.classes as u64;
            self.stats.event_dense_macs += (last.len() * self.arch.classes) as u64;
        }
        &self.logits
    }

    /// Runs a whole clip from the initial state, independently of the streaming state.
    /// `frames` is [T x input_dim] raw log-mel. `v0` gives each layer's initial voltages
    /// (None: [`V_INIT`]).
    pub fn forward_sequence(&self, frames: &[f32], mode: Mode, v0: Option<&[Vec<f32>]>) -> SequenceTrace {
        forward_sequence(&self.arch, &self.w, frames, mode, v0)
    }
}

/// Everything a whole-clip forward pass computed, kept for the backward pass.
#[derive(Debug, Clone)]
pub struct SequenceTrace {
    pub steps: usize,
    /// Normalised input [T x input_dim].
    pub input: Array2<f32>,
    pub layers: Vec<LayerTrace>,
    /// [T x classes]
    pub logits: Array2<f32>,
}

#[derive(Debug, Clone)]
pub struct LayerTrace {
    /// [T x memory_d]
    pub u: Array2<f32>,
    /// [T x memory_d*order]
    pub m: Array2<f32>,
    /// Pre-activation [T x units]
    pub pre: Array2<f32>,
    /// Activity a = n/dt (spiking) or relu(pre) (dense) [T x units]
    pub act: Array2<f32>,
    /// Spike counts n [T x units] (equal to act in dense mode)
    pub counts: Array2<f32>,
}

fn view<'a>(v: &'a [f32], rows: usize, cols: usize) -> ArrayView2<'a, f32> {
    ArrayView2::from_shape((rows, cols), v).expect("weight shapes are validated on load")
}

/// Causal convolution of each channel of `u` [T x d] with the impulse response
/// `h` [T x q]: m[t, c*q + i] = sum_k h[k, i] u[t-k, c].
pub fn memory_convolve(u: &Array2<f32>, h: &[f32], q: usize) -> Array2<f32> {
    let (t_len, d) = u.dim();
    let mut m = Array2::<f32>::zeros((t_len, d * q));
    for t in 0..t_len {
        let mut row = m.row_mut(t);
        let row = row.as_slice_mut().expect("standard layout");
        for k in 0..=t {
            let hk = &h[k * q..(k + 1) * q];
            let urow = u.row(t - k);
            for (c, &uc) in urow.iter().enumerate() {
                if uc == 0.0 {
                    continue;
                }
                for (dst, &hv) in row[c * q..(c + 1) * q].iter_mut().zip(hk) {
                    *dst += hv * uc;
                }
            }
        }
    }
    m
}

/// Whole-clip forward pass (see module docs). Shared by training and the parity tests.
pub fn forward_sequence(
    arch: &Architecture,
    w: &Weights,
    frames: &[f32],
    mode: Mode,
    v0: Option<&[Vec<f32>]>,
) -> SequenceTrace {
    let d_in = arch.input_dim;
    let t_len = frames.len() / d_in;
    let mut input = Array2::from_shape_vec((t_len, d_in), frames[..t_len * d_in].to_vec())
        .expect("length checked above");
    for mut row in input.rows_mut() {
        for ((x, m), s) in row.iter_mut().zip(&w.input_mean).zip(&w.input_std) {
            *x = (*x - m) / s;
        }
    }
    let mut layers: Vec<LayerTrace> = Vec::with_capacity(arch.layers.len());
    for (l, spec) in arch.layers.iter().enumerate() {
        let lw = &w.layers[l];
        let n_in = arch.layer_input(l);
        let x = if l == 0 { input.view() } else { layers[l - 1].act.view() };
        let u = x.dot(&view(&lw.encoder, n_in, spec.memory_d));
        let h = impulse_response(spec.order, spec.theta as f64, t_len);
        let m = memory_convolve(&u, &h, spec.order);
        let mut pre = x.dot(&view(&lw.w_x, n_in, spec.units));
        pre += &m.dot(&view(&lw.w_m, spec.memory_d * spec.order, spec.units));
        pre += &ndarray::ArrayView1::from(&lw.bias[..]);
        let (act, counts) = match mode {
            Mode::Dense => {
                let a = pre.mapv(|p| p.max(0.0));
                (a.clone(), a)
            }
            Mode::Spiking => {
                let mut counts = Array2::<f32>::zeros(pre.dim());
                let mut v: Vec<f32> = match v0 {
                    Some(v0) => v0[l].clone(),
                    None => vec![V_INIT; spec.units],
                };
                for t in 0..t_len {
                    for (j, vj) in v.iter_mut().enumerate() {
                        counts[[t, j]] = quantize(vj, pre[[t, j]], arch.dt);
                    }
                }
                let inv = 1.0 / arch.dt;
                (counts.mapv(|n| n * inv), counts)
            }
        };
        layers.push(LayerTrace { u, m, pre, act, counts });
    }
    let last = layers.last().map_or(input.view(), |l| l.act.view());
    let mut logits = last.dot(&view(&w.readout_w, arch.last_units(), arch.classes));
    logits += &ndarray::ArrayView1::from(&w.readout_b[..]);
    SequenceTrace { steps: t_len, input, layers, logits }
}
