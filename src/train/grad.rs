//! Backward pass through [`crate::network::forward_sequence`]: spikes forward, the ReLU
//! rate's derivative backward (METHOD.md section 2), no gradient through voltages or dt.

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

/// Adjoint of [`crate::network::memory_convolve`]:
/// du[t, c] = sum_{k=0}^{T-1-t} sum_i h[k, i] dm[t+k, c*q+i].
pub fn memory_convolve_adjoint(dm: &Array2<f32>, h: &[f32], q: usize, d: usize) -> Array2<f32> {
    let t_len = dm.nrows();
    let mut du = Array2::<f32>::zeros((t_len, d));
    for t in 0..t_len {
        for k in 0..t_len - t {
            let hk = &h[k * q..(k + 1) * q];
            let row = dm.row(t + k);
            let row = row.as_slice().expect("standard layout");
            for c in 0..d {
                let g: f32 = row[c * q..(c + 1) * q].iter().zip(hk).map(|(a, b)| a * b).sum();
                du[[t, c]] += g;
            }
        }
    }
    du
}

/// Accumulates into `grads` the gradient of a loss whose derivative with respect to the
/// logits is `dlogits` [T x classes]. `rate_reg` adds rate_reg * mean(relu(pre)) per layer
/// (the firing-rate regulariser) to the loss. `impulse[l]` is layer l's impulse response
/// for at least T steps.
pub fn backward(
    arch: &Architecture,
    w: &Weights,
    trace: &SequenceTrace,
    dlogits: &Array2<f32>,
    rate_reg: f32,
    impulse: &[Vec<f32>],
    grads: &mut Weights,
) {
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
        add_into(&mut lg.w_m, &lt.m.t().dot(&dpre));
        let dm = dpre.dot(&view(&lw.w_m, spec.memory_d * spec.order, spec.units).t());
        let du = memory_convolve_adjoint(&dm, &impulse[l], spec.order, spec.memory_d);
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
pub fn smoothed_cross_entropy(
    logits: &Array2<f32>,
    label: usize,
    window: usize,
    label_smoothing: f32,
) -> (f32, Array2<f32>, usize) {
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
    let target: Vec<f32> = (0..c)
        .map(|i| if i == label { 1.0 - label_smoothing } else { 0.0 } + label_smoothing / c as f32)
        .collect();
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
