//! The hand-written backward pass against finite differences of the shared forward pass.

use rand::{Rng, SeedableRng};
use spikeword::network::{forward_sequence, Architecture, LayerSpec, Mode, Weights};
use spikeword::train::grad::{backward, smoothed_cross_entropy};

fn small_arch() -> Architecture {
    Architecture {
        input_dim: 5,
        layers: vec![
            LayerSpec { memory_d: 3, order: 4, theta: 6.0, units: 7, memory_delta: 0.0 },
            LayerSpec { memory_d: 2, order: 3, theta: 4.0, units: 6, memory_delta: 0.0 },
        ],
        classes: 4,
        dt: 1.0,
        input_delta: 0.0,
    }
}

fn loss(arch: &Architecture, w: &Weights, x: &[f32]) -> f32 {
    let t = forward_sequence(arch, w, x, Mode::Dense, None);
    smoothed_cross_entropy(&t.logits, 2, 3, 0.0).0
}

#[test]
fn backward_matches_finite_differences_in_dense_mode() {
    let arch = small_arch();
    let mut w = Weights::random(&arch, 3);
    w.input_mean = vec![0.1; 5];
    w.input_std = vec![1.5; 5];
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let x: Vec<f32> = (0..12 * 5).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let trace = forward_sequence(&arch, &w, &x, Mode::Dense, None);
    let (_, dz, _) = smoothed_cross_entropy(&trace.logits, 2, 3, 0.0);
    let mut g = Weights::zeros(&arch);
    g.input_std = vec![0.0; 5];
    backward(&arch, &w, &trace, &dz, 0.0, &mut g);
    let names: Vec<String> = w.tensors().iter().map(|(n, _)| n.clone()).collect();
    let analytic: Vec<Vec<f32>> = g.tensors().iter().map(|(_, t)| (*t).clone()).collect();
    let (mut checked, mut bad) = (0, 0);
    for (ti, name) in names.iter().enumerate().skip(2) {
        for i in (0..analytic[ti].len()).step_by(2) {
            let eps = 2e-3f32;
            let mut wp = w.clone();
            wp.tensors_mut()[ti][i] += eps;
            let mut wm = w.clone();
            wm.tensors_mut()[ti][i] -= eps;
            let numeric = (loss(&arch, &wp, &x) - loss(&arch, &wm, &x)) / (2.0 * eps);
            let a = analytic[ti][i];
            if (numeric - a).abs() > 2e-3 + 0.05 * numeric.abs().max(a.abs()) {
                eprintln!("{name}[{i}]: analytic {a} vs numeric {numeric}");
                bad += 1;
            }
            checked += 1;
        }
    }
    // A finite difference can straddle a ReLU kink; allow a handful of those, no more.
    assert!(checked > 100);
    assert!(bad * 50 <= checked, "{bad} of {checked} gradient entries disagree");
}
