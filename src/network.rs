//! The hybrid spiking LMU: linear Legendre memories feeding spiking hidden layers.
//!
//! Per layer l and frame t (METHOD.md section 3, without the h->u and m->u connections, so
//! the memory is linear in the input and training can run a whole clip at once):
//!   u_t = E^T a_t                  (a_t: the layer's input, memory_d channels)
//!   m_t = Abar m_{t-1} + Bbar u_t  (per channel; linear, never spikes)
//!   h_t = spike(W_x^T a_t + W_m^T m_t + b)
//! and class scores z_t = W_o^T h_t + b_o from the last layer.
//!
//! Matrices are stored input-major (one row per input), so a spike on input i adds row i:
//! spike-fed layers touch only the rows of inputs that fired.
//!
//! **Delta coding** (event-driven mode, [`Mode::Spiking`]): the signals that are not spikes
//! are sent as events too. A coded signal y with step delta is read as
//! `y^ = delta * round(y / delta)` (so |y - y^| <= delta/2); a receiver keeps the running sum
//! `S = sum_i level_i * row_i` and adds `(level_t - level_{t-1}) * row` only when a level
//! changes: a change of one level is a pure addition of a weight row. Coded are layer 0's
//! input (the normalised log-mel, step [`Architecture::input_delta`]) and each layer's memory
//! read-out (the memory states seen by the hidden units, step [`LayerSpec::memory_delta`]).
//! The LMU memory changes smoothly, so most states keep their level from frame to frame. A
//! memory at rest on a constant input settles and skips its update (see
//! [`crate::lmu::MemoryBank`]), so a frame in which nothing changed costs almost nothing. The
//! running sums are recomputed from the levels every [`RESYNC_FRAMES`] frames, which bounds
//! the rounding a float running sum gathers over hours.
//!
//! [`Mode::Dense`] is the twin without spikes and without delta coding: the same weights
//! and the same kernels ([`crate::kernels`]), every connection a multiply-accumulate.
//!
//! Two computations of the same maths live here and are tested against each other:
//! [`Network::step`] (streaming, one frame, event-driven) and [`forward_sequence`]
//! (a whole clip at once: the memory by its recurrence, the codings elementwise, dense matrix
//! products), which training differentiates.

use crate::kernels::{add_dense, add_rows, collect_events};
use crate::lmu::{memory_sequence, MemoryBank};
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
    /// Delta-coding step of this layer's memory read-out in spiking mode (0: off, the
    /// exact memory is read). Absent in older model files, which then run as before.
    #[serde(default)]
    pub memory_delta: f32,
}

impl LayerSpec {
    /// A layer without delta coding.
    pub fn new(memory_d: usize, order: usize, theta: f32, units: usize) -> Self {
        Self { memory_d, order, theta, units, memory_delta: 0.0 }
    }
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
    /// Delta-coding step of layer 0's input (the normalised log-mel) in spiking mode
    /// (0: off).
    #[serde(default)]
    pub input_delta: f32,
}

/// Largest delta step a model may set; any sensible step is far below (signals are O(1)).
pub const MAX_DELTA: f32 = 100.0;
/// Smallest non-zero delta step: keeps level numbers far inside f32's exact integers.
pub const MIN_DELTA: f32 = 1e-4;
/// A delta step the network can use: 0 (off) for anything not positive and finite, else
/// clamped to [MIN_DELTA, MAX_DELTA] (model files are validated to that range on load).
pub fn usable_delta(d: f32) -> f32 {
    if d.is_finite() && d > 0.0 {
        d.clamp(MIN_DELTA, MAX_DELTA)
    } else {
        0.0
    }
}

/// Frames between recomputations of the delta-coded running sums from the levels.
pub const RESYNC_FRAMES: u64 = 1024;
/// A memory channel settles (see [`crate::lmu::MemoryBank`]) within this fraction of the
/// layer's memory step of its fixed point: far below the read-out's own delta/2.
pub const SETTLE_FRACTION: f32 = 1.0 / 16.0;

impl Architecture {
    /// Input width of layer `l`.
    pub fn layer_input(&self, l: usize) -> usize {
        if l == 0 {
            self.input_dim
        } else {
            self.layers[l - 1].units
        }
    }
    pub fn last_units(&self) -> usize {
        self.layers.last().map_or(self.input_dim, |l| l.units)
    }
    /// Whether any signal is delta-coded in spiking mode.
    pub fn delta_coded(&self) -> bool {
        self.input_delta > 0.0 || self.layers.iter().any(|l| l.memory_delta > 0.0)
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
    let n = floor_nonnegative(*v);
    *v -= n;
    n
}

/// floor(v) for v >= 0 without `f32::floor` (a library call on baseline x86-64) or a
/// float-to-int cast (scalar, for its saturation): below 2^23, adding and subtracting 2^23
/// rounds to the nearest integer, then one step back where that rounded up; from 2^23 up
/// every f32 is an integer. Vectorises.
#[inline(always)]
fn floor_nonnegative(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let r = (v + TWO_23) - TWO_23;
    let r = if r > v { r - 1.0 } else { r };
    if v < TWO_23 {
        r
    } else {
        v
    }
}

/// The delta-coding level of `y` for `inv_delta` = 1/delta: round(y / delta), ties to
/// even, within +-2^22. The magic-number rounding avoids `f32::round`, a library call on
/// baseline x86-64, and vectorises.
#[inline(always)]
pub fn delta_level(y: f32, inv_delta: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it leaves no fraction bits
                                     // Levels are bounded to +-2^22 (where the trick is exact), far beyond any real signal.
    const LIMIT: f32 = 4_194_304.0;
    let v = (y * inv_delta).clamp(-LIMIT, LIMIT);
    (v + MAGIC) - MAGIC
}

/// The delta-coded value of `y`: delta * round(y / delta); `y` itself when delta is 0.
#[inline]
pub fn delta_code(y: f32, delta: f32) -> f32 {
    if delta > 0.0 {
        delta * delta_level(y, 1.0 / delta)
    } else {
        y
    }
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
        let mut t = vec![("input.mean".to_string(), [1, arch.input_dim]), ("input.std".to_string(), [1, arch.input_dim])];
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

/// Whether hidden layers emit spikes (and delta-coded signals send events) or the ReLU
/// rates of the non-spiking, non-coded twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Spiking,
    Dense,
}

/// Arithmetic of one group of connections in one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpCount {
    /// Additions: a weight row added for an event of size one (a single spike, a change of
    /// one delta level), one per weight.
    pub adds: u64,
    /// Multiplies (multiply-accumulates): rows scaled by a count above one or by a real
    /// value, the memory update, the coding and output scaling.
    pub macs: u64,
    /// What the same connections cost in the dense twin (all multiply-accumulates).
    pub dense_macs: u64,
}

impl OpCount {
    pub fn ops(&self) -> u64 {
        self.adds + self.macs
    }
    pub fn add(&mut self, o: &OpCount) {
        self.adds += o.adds;
        self.macs += o.macs;
        self.dense_macs += o.dense_macs;
    }
}

/// What one frame cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepStats {
    /// Spikes emitted per hidden layer this frame (sum of counts; the rate sum in dense mode).
    pub spikes: Vec<f32>,
    /// Neurons with a non-zero output, per hidden layer.
    pub active: Vec<u32>,
    /// Memory read-out events per layer: memory states whose delta level changed (0 when
    /// the read-out is not coded).
    pub memory_events: Vec<u32>,
    /// Input events: layer-0 features whose delta level changed.
    pub input_events: u32,
    /// Layer 0's input connections (features into the memory encoder and the units).
    pub input: OpCount,
    /// The LMU memory updates (zero while a memory is settled).
    pub memory_update: OpCount,
    /// Memory states into the hidden units.
    pub memory_read: OpCount,
    /// Connections fed by spikes: hidden layers into the next layer and the readout.
    pub spike_fed: OpCount,
}

impl StepStats {
    /// The whole frame.
    pub fn total(&self) -> OpCount {
        let mut t = self.input;
        t.add(&self.memory_update);
        t.add(&self.memory_read);
        t.add(&self.spike_fed);
        t
    }
}

struct LayerState {
    memory: MemoryBank,
    v: Vec<f32>,
    /// Spike counts (spiking) or rates (dense) this frame.
    out: Vec<f32>,
    /// [memory_d + units]: the input's contribution to u and to the units. For a coded input
    /// the running sum of delta * level * row, otherwise this frame's sum.
    acc_in: Vec<f32>,
    /// [units]: coded memory read-out, the running sum of delta * level * W_m row.
    acc_m: Vec<f32>,
    /// Delta level of each memory state (coefficient-major, as the bank stores them), and
    /// this frame's change of each.
    level_m: Vec<f32>,
    change_m: Vec<f32>,
    pre: Vec<f32>,
    /// The memory channel-major, for the dense read-out.
    m_cm: Vec<f32>,
    /// [input x (memory_d + units)]: encoder and W_x side by side, so one pass over an
    /// input's row feeds both.
    w_in: Vec<f32>,
    /// W_m row of each coefficient-major memory state.
    m_row: Vec<u32>,
}

/// A network running one frame at a time.
pub struct Network {
    arch: Architecture,
    w: Weights,
    mode: Mode,
    layers: Vec<LayerState>,
    input: Vec<f32>,
    /// Delta level of each layer-0 input, and this frame's change of each.
    level_in: Vec<f32>,
    change_in: Vec<f32>,
    logits: Vec<f32>,
    stats: StepStats,
    /// Event lists (row, coefficient), sized once for the widest signal.
    ev_rows: Vec<u32>,
    ev_coef: Vec<f32>,
    /// Frames since the running sums were recomputed; whether they must be before the next
    /// coded frame (after a reset of the codings, a mode switch or new steps).
    since_sync: u64,
    needs_sync: bool,
}

/// Values sent as delta-coded events: each one's change of level (or, on a resync frame,
/// its whole level) adds its weight row, scaled by `delta`, to a running sum.
struct DeltaCoding<'a> {
    values: &'a [f32],
    delta: f32,
    /// Recompute the running sum from the levels instead of adding the changes.
    sync: bool,
    /// Weight row of each value (None: the value's own index).
    row_map: Option<&'a [u32]>,
}

/// The coding's state and the scratch space for its events.
struct EventBuffers<'a> {
    level: &'a mut [f32],
    change: &'a mut [f32],
    rows: &'a mut [u32],
    coefs: &'a mut [f32],
}

impl DeltaCoding<'_> {
    /// Updates `acc` (one row of `w` is `acc.len()` wide), counts the work in `op`, and
    /// returns how many values changed level. Shared by layer 0's input and every memory
    /// read-out, so both code the same way.
    #[inline(always)]
    fn accumulate(&self, b: EventBuffers<'_>, acc: &mut [f32], w: &[f32], op: &mut OpCount) -> u32 {
        let width = acc.len() as u64;
        relevel(self.values, b.level, b.change, 1.0 / self.delta);
        let coefs: &[f32] = if self.sync { b.level } else { b.change };
        let (k, ones) = collect_events(coefs, self.row_map, b.rows, b.coefs);
        let events = if self.sync { b.change.iter().map(|&c| (c != 0.0) as u32).sum() } else { k as u32 };
        b.coefs[..k].iter_mut().for_each(|c| *c *= self.delta);
        if self.sync {
            acc.fill(0.0);
            op.macs += k as u64 * width;
        } else {
            op.adds += ones * width;
            op.macs += (k as u64 - ones) * width;
        }
        add_rows(acc, w, &b.rows[..k], &b.coefs[..k]);
        // One multiply per value for its level.
        op.macs += self.values.len() as u64;
        events
    }
}

/// New delta levels of `values` (for `inv` = 1/delta) into `levels`, and how much each
/// changed into `changes`. Vectorises.
#[inline(always)]
fn relevel(values: &[f32], levels: &mut [f32], changes: &mut [f32], inv: f32) {
    for ((&y, l), c) in values.iter().zip(levels.iter_mut()).zip(changes.iter_mut()) {
        let new = delta_level(y, inv);
        *c = new - *l;
        *l = new;
    }
}

/// Sum of `x` and its number of non-zero entries, in eight lanes so that it vectorises
/// (a single running float sum is a chain of dependent additions).
#[inline(always)]
fn sum_and_count(x: &[f32]) -> (f32, u32) {
    let mut sum = [0.0f32; 8];
    let mut count = [0u32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for t in 0..8 {
            sum[t] += c[t];
            count[t] += (c[t] != 0.0) as u32;
        }
    }
    for (t, &v) in rest.iter().enumerate() {
        sum[t] += v;
        count[t] += (v != 0.0) as u32;
    }
    (sum.iter().sum(), count.iter().sum())
}

/// Builds the fused [input x (memory_d + units)] matrix from encoder and W_x.
fn fuse_input(lw: &LayerWeights, n_in: usize, d: usize, units: usize) -> Vec<f32> {
    let mut w = Vec::with_capacity(n_in * (d + units));
    for i in 0..n_in {
        w.extend_from_slice(&lw.encoder[i * d..(i + 1) * d]);
        w.extend_from_slice(&lw.w_x[i * units..(i + 1) * units]);
    }
    w
}

impl Network {
    pub fn new(mut arch: Architecture, w: Weights) -> Self {
        arch.input_delta = usable_delta(arch.input_delta);
        for s in &mut arch.layers {
            s.memory_delta = usable_delta(s.memory_delta);
        }
        let layers: Vec<LayerState> = arch
            .layers
            .iter()
            .enumerate()
            .map(|(l, s)| {
                let n_states = s.memory_d * s.order;
                LayerState {
                    memory: MemoryBank::new(s.memory_d, s.order, s.theta as f64),
                    v: vec![V_INIT; s.units],
                    out: vec![0.0; s.units],
                    acc_in: vec![0.0; s.memory_d + s.units],
                    acc_m: vec![0.0; s.units],
                    level_m: vec![0.0; n_states],
                    change_m: vec![0.0; n_states],
                    pre: vec![0.0; s.units],
                    m_cm: vec![0.0; n_states],
                    w_in: fuse_input(&w.layers[l], arch.layer_input(l), s.memory_d, s.units),
                    m_row: (0..n_states).map(|k| ((k % s.memory_d) * s.order + k / s.memory_d) as u32).collect(),
                }
            })
            .collect();
        let n_layers = arch.layers.len();
        let widest = arch.layers.iter().map(|l| l.units.max(l.memory_d * l.order)).max().unwrap_or(0).max(arch.input_dim);
        Self {
            input: vec![0.0; arch.input_dim],
            level_in: vec![0.0; arch.input_dim],
            change_in: vec![0.0; arch.input_dim],
            logits: vec![0.0; arch.classes],
            stats: StepStats { spikes: vec![0.0; n_layers], active: vec![0; n_layers], memory_events: vec![0; n_layers], ..Default::default() },
            ev_rows: vec![0; widest],
            ev_coef: vec![0.0; widest],
            layers,
            mode: Mode::Spiking,
            since_sync: 0,
            needs_sync: false,
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
    /// Switches between spiking and the non-spiking twin; state is kept (the delta-coded
    /// running sums are rebuilt at the next spiking frame).
    pub fn set_mode(&mut self, mode: Mode) {
        if mode != self.mode {
            self.needs_sync = true;
        }
        self.mode = mode;
    }
    pub fn set_dt(&mut self, dt: f32) {
        self.arch.dt = dt;
    }
    /// Changes the delta steps (layer 0's input, then each layer's memory read-out);
    /// 0 switches a coding off. Steps are clamped to [0, MAX_DELTA], non-zero ones to at
    /// least MIN_DELTA.
    pub fn set_deltas(&mut self, input_delta: f32, memory_delta: &[f32]) {
        self.arch.input_delta = usable_delta(input_delta);
        for (s, &d) in self.arch.layers.iter_mut().zip(memory_delta) {
            s.memory_delta = usable_delta(d);
        }
        self.needs_sync = true;
    }

    /// Back to the state before any audio.
    pub fn reset(&mut self) {
        for l in &mut self.layers {
            l.memory.reset();
            l.v.fill(V_INIT);
            l.out.fill(0.0);
            l.acc_in.fill(0.0);
            l.acc_m.fill(0.0);
            l.level_m.fill(0.0);
        }
        self.level_in.fill(0.0);
        self.logits.fill(0.0);
        self.since_sync = 0;
        self.needs_sync = false;
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
    /// Layer `l`'s memory, coefficient-major (see [`MemoryBank::state`]).
    pub fn memory(&self, l: usize) -> &MemoryBank {
        &self.layers[l].memory
    }
    /// The normalised layer-0 input of this frame (before any coding).
    pub fn input(&self) -> &[f32] {
        &self.input
    }

    /// Largest difference between the delta-coded running sums and their recomputation from
    /// the current levels (0 when nothing is coded): the rounding the incremental sums have
    /// gathered since the last resynchronisation. A diagnostic that allocates; not for the
    /// per-frame path.
    pub fn running_sum_error(&self) -> f32 {
        if self.mode != Mode::Spiking || self.needs_sync {
            return 0.0;
        }
        let mut worst = 0.0f32;
        let mut check = |acc: &[f32], mat: &[f32], levels: &[f32], rows: &dyn Fn(usize) -> usize, delta: f32| {
            let mut exact = vec![0.0f64; acc.len()];
            for (j, &lev) in levels.iter().enumerate() {
                let row = &mat[rows(j) * acc.len()..(rows(j) + 1) * acc.len()];
                for (e, &w) in exact.iter_mut().zip(row) {
                    *e += (delta * lev) as f64 * w as f64;
                }
            }
            for (a, e) in acc.iter().zip(exact) {
                worst = worst.max((*a as f64 - e).abs() as f32);
            }
        };
        for (l, (ls, spec)) in self.layers.iter().zip(&self.arch.layers).enumerate() {
            if l == 0 && self.arch.input_delta > 0.0 {
                check(&ls.acc_in, &ls.w_in, &self.level_in, &|i| i, self.arch.input_delta);
            }
            if spec.memory_delta > 0.0 {
                check(&ls.acc_m, &self.w.layers[l].w_m, &ls.level_m, &|j| ls.m_row[j] as usize, spec.memory_delta);
            }
        }
        worst
    }

    /// Advances every layer by one frame of log-mel features and returns the class scores.
    pub fn step(&mut self, frame: &[f32]) -> &[f32] {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::simd_active() {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { self.step_avx2(frame) };
            return &self.logits;
        }
        self.step_body(frame);
        &self.logits
    }

    /// The step compiled for AVX2, so that its elementwise loops (normalisation, delta
    /// levels, neurons) vectorise 8 wide. Without explicit `mul_add` the compiler fuses
    /// nothing, so this computes exactly what the portable build does.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn step_avx2(&mut self, frame: &[f32]) {
        self.step_body(frame)
    }

    #[inline(always)]
    fn step_body(&mut self, frame: &[f32]) {
        let coded = self.mode == Mode::Spiking;
        let dt = self.arch.dt;
        for ((x, f), (m, s)) in self.input.iter_mut().zip(frame).zip(self.w.input_mean.iter().zip(&self.w.input_std)) {
            *x = (f - m) / s;
        }
        let sync = coded && self.arch.delta_coded() && (self.needs_sync || self.since_sync >= RESYNC_FRAMES);
        if sync {
            self.needs_sync = false;
            self.since_sync = 0;
        }
        self.since_sync += 1;
        let st = &mut self.stats;
        st.input = OpCount::default();
        st.memory_update = OpCount::default();
        st.memory_read = OpCount::default();
        st.spike_fed = OpCount::default();
        st.input_events = 0;
        for l in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(l);
            let ls = &mut rest[0];
            let spec = &self.arch.layers[l];
            let lw = &self.w.layers[l];
            let d = spec.memory_d;
            let width = ls.acc_in.len() as u64;
            // Input connections into acc_in = [u | the units' share].
            if l == 0 {
                let n_in = self.input.len() as u64;
                let delta = self.arch.input_delta;
                st.input.dense_macs = n_in * width;
                if coded && delta > 0.0 {
                    // Event-driven: only features whose level changed add their row, scaled
                    // by delta times the change (a pure addition for one level with the
                    // rows pre-scaled by delta, as event hardware stores them).
                    let coding = DeltaCoding { values: &self.input, delta, sync, row_map: None };
                    let bufs = EventBuffers { level: &mut self.level_in, change: &mut self.change_in, rows: &mut self.ev_rows, coefs: &mut self.ev_coef };
                    st.input_events = coding.accumulate(bufs, &mut ls.acc_in, &ls.w_in, &mut st.input);
                } else {
                    ls.acc_in.fill(0.0);
                    add_dense(&mut ls.acc_in, &ls.w_in, &self.input);
                    st.input.macs += n_in * width;
                }
            } else {
                let x = &before[l - 1].out;
                st.spike_fed.dense_macs += x.len() as u64 * width;
                ls.acc_in.fill(0.0);
                if coded {
                    // Spikes arrive as counts n and act as n/dt: one row per neuron that
                    // fired, a pure addition for a single spike.
                    let (k, ones) = collect_events(x, None, &mut self.ev_rows, &mut self.ev_coef);
                    let inv_dt = 1.0 / dt;
                    self.ev_coef[..k].iter_mut().for_each(|c| *c *= inv_dt);
                    add_rows(&mut ls.acc_in, &ls.w_in, &self.ev_rows[..k], &self.ev_coef[..k]);
                    st.spike_fed.adds += ones * width;
                    st.spike_fed.macs += (k as u64 - ones) * width;
                } else {
                    add_dense(&mut ls.acc_in, &ls.w_in, x);
                    st.spike_fed.macs += x.len() as u64 * width;
                }
            }
            // The memory.
            let mdelta = spec.memory_delta;
            let coded_m = coded && mdelta > 0.0;
            let updated = ls.memory.step(&ls.acc_in[..d], if coded_m { mdelta * SETTLE_FRACTION } else { 0.0 });
            let update_macs = ls.memory.update_macs();
            st.memory_update.dense_macs += update_macs;
            st.memory_update.macs += if updated { update_macs } else { 0 };
            // The units' pre-activation: bias, input share, memory read-out.
            for ((p, &a), &b) in ls.pre.iter_mut().zip(&ls.acc_in[d..]).zip(&lw.bias) {
                *p = a + b;
            }
            let n_states = ls.level_m.len() as u64;
            let units = ls.pre.len() as u64;
            st.memory_read.dense_macs += n_states * units;
            st.memory_events[l] = 0;
            if coded_m {
                // Event-driven read-out: nothing to do while the memory is unchanged (a
                // settled bank skipped its update).
                if updated || sync {
                    let coding = DeltaCoding { values: ls.memory.state(), delta: mdelta, sync, row_map: Some(&ls.m_row) };
                    let bufs = EventBuffers { level: &mut ls.level_m, change: &mut ls.change_m, rows: &mut self.ev_rows, coefs: &mut self.ev_coef };
                    st.memory_events[l] = coding.accumulate(bufs, &mut ls.acc_m, &lw.w_m, &mut st.memory_read);
                }
                for (p, &a) in ls.pre.iter_mut().zip(&ls.acc_m) {
                    *p += a;
                }
            } else {
                ls.memory.copy_channel_major(&mut ls.m_cm);
                add_dense(&mut ls.pre, &lw.w_m, &ls.m_cm);
                st.memory_read.macs += n_states * units;
            }
            // The neurons.
            if coded {
                for ((o, v), &p) in ls.out.iter_mut().zip(ls.v.iter_mut()).zip(&ls.pre) {
                    *o = quantize(v, p, dt);
                }
            } else {
                for (o, &p) in ls.out.iter_mut().zip(&ls.pre) {
                    *o = p.max(0.0);
                }
            }
            let (spikes, active) = sum_and_count(&ls.out);
            st.spikes[l] = spikes;
            st.active[l] = active;
        }
        // The readout.
        self.logits.copy_from_slice(&self.w.readout_b);
        let classes = self.arch.classes as u64;
        let st = &mut self.stats;
        let (last, spike_fed) = match self.layers.last() {
            Some(l) => (&l.out, true),
            None => (&self.input, false),
        };
        st.spike_fed.dense_macs += last.len() as u64 * classes;
        if coded && spike_fed {
            let (k, ones) = collect_events(last, None, &mut self.ev_rows, &mut self.ev_coef);
            let inv_dt = 1.0 / dt;
            self.ev_coef[..k].iter_mut().for_each(|c| *c *= inv_dt);
            add_rows(&mut self.logits, &self.w.readout_w, &self.ev_rows[..k], &self.ev_coef[..k]);
            st.spike_fed.adds += ones * classes;
            st.spike_fed.macs += (k as u64 - ones) * classes;
        } else {
            add_dense(&mut self.logits, &self.w.readout_w, last);
            st.spike_fed.macs += last.len() as u64 * classes;
        }
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
    /// Layer 0's input as the network used it [T x input_dim]: normalised, and delta-coded
    /// in spiking mode when the architecture codes it.
    pub input: Array2<f32>,
    pub layers: Vec<LayerTrace>,
    /// [T x classes]
    pub logits: Array2<f32>,
}

#[derive(Debug, Clone)]
pub struct LayerTrace {
    /// [T x memory_d]
    pub u: Array2<f32>,
    /// The memory [T x memory_d*order], channel-major.
    pub m: Array2<f32>,
    /// The memory as the hidden units read it: `m` delta-coded when the read-out is coded,
    /// else equal to `m`.
    pub m_read: Array2<f32>,
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
/// `h` [T x q]: m[t, c*q + i] = sum_k h[k, i] u[t-k, c]. O(T^2); the reference the
/// recurrence ([`memory_sequence`]) is tested against.
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
/// In spiking mode the delta codings of the architecture apply: the coded values are what
/// the next products see (the backward pass treats the coding as exact).
pub fn forward_sequence(arch: &Architecture, w: &Weights, frames: &[f32], mode: Mode, v0: Option<&[Vec<f32>]>) -> SequenceTrace {
    let d_in = arch.input_dim;
    let t_len = frames.len() / d_in;
    let coded = mode == Mode::Spiking;
    let mut input = Array2::from_shape_vec((t_len, d_in), frames[..t_len * d_in].to_vec()).expect("length checked above");
    let in_delta = if coded { arch.input_delta } else { 0.0 };
    for mut row in input.rows_mut() {
        for ((x, m), s) in row.iter_mut().zip(&w.input_mean).zip(&w.input_std) {
            *x = delta_code((*x - m) / s, in_delta);
        }
    }
    let mut layers: Vec<LayerTrace> = Vec::with_capacity(arch.layers.len());
    for (l, spec) in arch.layers.iter().enumerate() {
        let lw = &w.layers[l];
        let n_in = arch.layer_input(l);
        let x = if l == 0 { input.view() } else { layers[l - 1].act.view() };
        let u = x.dot(&view(&lw.encoder, n_in, spec.memory_d));
        let m_delta = if coded { spec.memory_delta } else { 0.0 };
        let m = memory_sequence(&u, spec.order, spec.theta as f64, m_delta * SETTLE_FRACTION);
        let m_read = if m_delta > 0.0 { m.mapv(|v| delta_code(v, m_delta)) } else { m.clone() };
        let mut pre = x.dot(&view(&lw.w_x, n_in, spec.units));
        pre += &m_read.dot(&view(&lw.w_m, spec.memory_d * spec.order, spec.units));
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
        layers.push(LayerTrace { u, m, m_read, pre, act, counts });
    }
    let last = layers.last().map_or(input.view(), |l| l.act.view());
    let mut logits = last.dot(&view(&w.readout_w, arch.last_units(), arch.classes));
    logits += &ndarray::ArrayView1::from(&w.readout_b[..]);
    SequenceTrace { steps: t_len, input, layers, logits }
}
