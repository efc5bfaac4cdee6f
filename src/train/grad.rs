//! Backward pass through [`crate::network::forward_sequence`]: spikes forward, the ReLU
//! rate's derivative backward (METHOD.md section 2), no gradient through voltages or dt.
//! The delta codings are straight-through like the spikes: the weights' gradients use the
//! coded values the forward pass multiplied, the signals' gradients pass as if exact.

use crate::lmu::memory_sequence_adjoint;
use crate::network::{Architecture, SequenceTrace, Weights};
use ndarray::{Array2, ArrayView2, Axis};

fn view<'a>(v: &'a [f32], rows: usize, cols: usize) -> ArrayView2<'a, f32> {
    ArrayView2::from_shape((rows, cols), v).expect("shapes follow the architecture")
}

fn add_into(dst: &mut [f32], src: &Array2<f32>) {
    for (d, s) in dst.iter_mut().zip(src.iter()) {
        *d += s;
    }
}

/// Accumulates into `grads` the gradient of a loss whose derivative with respect to the
/// logits is `dlogits` [T x classes]. `rate_reg` adds rate_reg * mean(relu(pre)) per layer
/// (the firing-rate regulariser) to the loss. The memory's adjoint runs its recurrence
/// backwards, O(T d q^2) per layer.
pub fn backward(arch: &Architecture, w: &Weights, trace: &SequenceTrace, dlogits: &Array2<f32>, rate_reg: f32, grads: &mut Weights) {
    let n_layers = arch.layers.len();
    let last_act = trace.layers.last().map_or(trace.input.view(), |l| l.act.view());
    add_into(&mut grads.readout_w, &last_act.t().dot(dlogits));
    add_into(&mut grads.readout_b, &dlogits.sum_axis(Axis(0)).insert_axis(Axis(0)));
    let mut dact = dlogits.dot(&view(&w.readout_w, arch.last_units(), arch.classes).t());
    for l in (0..n_layers).rev() {
        let spec = &arch.layers[l];
        let lt = &trace.layers[l];
        let lw = &w.layers[l];
        let lg = &mut grads.layers[l];
        let n_in = arch.layer_input(l);
        let reg = rate_reg / (lt.pre.len() as f32);
        // Straight-through: d act / d pre = relu'(pre).
        let mut dpre = dact;
        ndarray::Zip::from(&mut dpre).and(&lt.pre).for_each(|g, &p| {
            *g = if p > 0.0 { *g + reg } else { 0.0 };
        });
        let x = if l == 0 { trace.input.view() } else { trace.layers[l - 1].act.view() };
        add_into(&mut lg.bias, &dpre.sum_axis(Axis(0)).insert_axis(Axis(0)));
        add_into(&mut lg.w_x, &x.t().dot(&dpre));
        add_into(&mut lg.w_m, &lt.m_read.t().dot(&dpre));
        let dm = dpre.dot(&view(&lw.w_m, spec.memory_d * spec.order, spec.units).t());
        let du = memory_sequence_adjoint(&dm, spec.order, spec.theta as f64, spec.memory_d);
        add_into(&mut lg.encoder, &x.t().dot(&du));
        if l == 0 {
            break;
        }
        let mut dx = dpre.dot(&view(&lw.w_x, n_in, spec.units).t());
        dx += &du.dot(&view(&lw.encoder, n_in, spec.memory_d).t());
        dact = dx;
    }
}

/// Softmax cross-entropy on the mean of the last `window` frames' logits (the readout the
/// detector smooths). Returns (loss, dlogits, predicted class).
pub fn smoothed_cross_entropy(logits: &Array2<f32>, label: usize, window: usize, label_smoothing: f32) -> (f32, Array2<f32>, usize) {
    let (t_len, c) = logits.dim();
    let window = window.clamp(1, t_len);
    let mut mean = vec![0.0f32; c];
    for t in t_len - window..t_len {
        for (m, &z) in mean.iter_mut().zip(logits.row(t)) {
            *m += z / window as f32;
        }
    }
    let max = mean.iter().cloned().fold(f32::MIN, f32::max);
    let exp: Vec<f32> = mean.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    let p: Vec<f32> = exp.iter().map(|e| e / sum).collect();
    let target: Vec<f32> = (0..c).map(|i| if i == label { 1.0 - label_smoothing } else { 0.0 } + label_smoothing / c as f32).collect();
    let loss = -target.iter().zip(&p).map(|(t, p)| t * p.max(1e-12).ln()).sum::<f32>();
    let mut d = Array2::<f32>::zeros((t_len, c));
    for t in t_len - window..t_len {
        for i in 0..c {
            d[[t, i]] = (p[i] - target[i]) / window as f32;
        }
    }
    let pred = p.iter().enumerate().fold(0, |b, (i, &v)| if v > p[b] { i } else { b });
    (loss, d, pred)
}
