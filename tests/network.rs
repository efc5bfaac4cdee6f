use rand::{Rng, SeedableRng};
use spikeword::lmu::{delay_decoder, MemoryBank};
use spikeword::network::{quantize, Architecture, LayerSpec, Mode, Network, Weights};

fn arch(dt: f32) -> Architecture {
    Architecture {
        input_dim: 40,
        layers: vec![
            LayerSpec { memory_d: 8, order: 6, theta: 30.0, units: 48, memory_delta: 0.0 },
            LayerSpec { memory_d: 4, order: 4, theta: 20.0, units: 32, memory_delta: 0.0 },
        ],
        classes: 12,
        dt,
        input_delta: 0.0,
    }
}

fn frames(t: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..t * 40).map(|i| ((i / 40) as f32 * 0.1).sin() + rng.gen_range(-1.0..1.0)).collect()
}

fn stream(net: &mut Network, x: &[f32]) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let mut logits = Vec::new();
    let mut counts = Vec::new();
    for f in x.chunks(40) {
        logits.push(net.step(f).to_vec());
        counts.push((0..2).map(|l| net.layer_output(l).to_vec()).collect());
    }
    (logits, counts)
}

#[test]
// Indexing frames, layers and units by number mirrors the two layouts being compared.
#[allow(clippy::needless_range_loop)]
fn streaming_step_equals_whole_sequence_computation() {
    let a = arch(1.0);
    let w = Weights::random(&a, 7);
    let x = frames(120, 1);
    // Dense twin: identical up to float rounding.
    let mut net = Network::new(a.clone(), w.clone());
    net.set_mode(Mode::Dense);
    let (logits, _) = stream(&mut net, &x);
    let seq = net.forward_sequence(&x, Mode::Dense, None);
    for (t, row) in logits.iter().enumerate() {
        for (c, &z) in row.iter().enumerate() {
            let r = seq.logits[[t, c]];
            assert!((z - r).abs() <= 1e-3 * (1.0 + r.abs()), "dense t={t} c={c}: {z} vs {r}");
        }
    }
    // Spiking: the same spike counts; rounding may flip a spike that sits exactly on an
    // integer, which the quantizer repays on a later step, so cumulative counts agree
    // within one spike and almost every count is identical.
    let mut net = Network::new(a.clone(), w);
    let (logits, counts) = stream(&mut net, &x);
    let seq = net.forward_sequence(&x, Mode::Spiking, None);
    let (mut same, mut total) = (0, 0);
    for l in 0..2 {
        let units = a.layers[l].units;
        let mut cum_s = vec![0.0f32; units];
        let mut cum_q = vec![0.0f32; units];
        for t in 0..120 {
            for j in 0..units {
                let s = counts[t][l][j];
                let q = seq.layers[l].counts[[t, j]];
                cum_s[j] += s;
                cum_q[j] += q;
                same += (s == q) as usize;
                total += 1;
                assert!((cum_s[j] - cum_q[j]).abs() <= 1.0, "layer {l} unit {j} drifted at t={t}");
            }
        }
    }
    assert!(same as f64 >= 0.995 * total as f64, "only {same}/{total} spike counts identical");
    let spikes: f32 = counts.iter().flatten().flatten().sum();
    assert!(spikes > 100.0, "the test network must actually spike ({spikes})");
    let close =
        logits.iter().enumerate().filter(|(t, row)| row.iter().enumerate().all(|(c, &z)| (z - seq.logits[[*t, c]]).abs() <= 1e-3 * (1.0 + z.abs()))).count();
    assert!(close >= 110, "logits matched on {close}/120 frames");
}

#[test]
fn quantizer_output_stays_within_one_spike_of_the_rate() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for dt in [0.05f32, 0.3, 1.0, 4.0] {
        let mut v = 0.5;
        let (mut sum_out, mut sum_rate) = (0.0f64, 0.0f64);
        for _ in 0..100_000 {
            let x: f32 = rng.gen_range(-1.0..3.0);
            let n = quantize(&mut v, x, dt);
            assert!(n >= 0.0 && n.fract() == 0.0);
            sum_out += n as f64; // a_t * dt = n
            sum_rate += (x.max(0.0) * dt) as f64;
            assert!((sum_out - sum_rate).abs() < 1.0 + 1e-3, "dt={dt}: |{sum_out} - {sum_rate}| >= 1");
        }
    }
}

#[test]
fn counts_are_zero_or_one_when_dt_times_rate_is_at_most_one() {
    let dt = 0.05;
    let mut net = Network::new(arch(dt), Weights::random(&arch(1.0), 5));
    let x = frames(200, 2);
    let seq = net.forward_sequence(&x, Mode::Spiking, None);
    let max_rate = seq.layers.iter().flat_map(|l| l.pre.iter()).cloned().fold(0.0f32, f32::max);
    assert!(max_rate * dt <= 1.0, "the premise dt*rate <= 1 must hold ({})", max_rate * dt);
    let mut spikes = 0.0;
    for f in x.chunks(40) {
        net.step(f);
        for l in 0..2 {
            for &n in net.layer_output(l) {
                assert!(n == 0.0 || n == 1.0, "count {n}");
                spikes += n;
            }
        }
    }
    assert!(spikes > 10.0, "the network must spike at all ({spikes})");
}

#[test]
fn spiking_outputs_converge_to_the_dense_twin_as_dt_grows() {
    let w = Weights::random(&arch(1.0), 11);
    let x = frames(100, 4);
    let dense = Network::new(arch(1.0), w.clone()).forward_sequence(&x, Mode::Dense, None).logits;
    let mut errors = Vec::new();
    for dt in [0.5f32, 5.0, 50.0, 500.0] {
        let s = Network::new(arch(dt), w.clone()).forward_sequence(&x, Mode::Spiking, None).logits;
        let err = (&s - &dense).mapv(|v| v * v).mean().unwrap().sqrt();
        errors.push(err);
    }
    for pair in errors.windows(2) {
        assert!(pair[1] < pair[0], "error did not shrink as dt grew: {errors:?}");
    }
    assert!(errors[3] < 0.05 * errors[0], "{errors:?}");
}

#[test]
fn lmu_memory_decodes_a_sine_delayed_by_half_theta() {
    let theta = 100.0;
    let order = 12;
    let mut mem = MemoryBank::new(1, order, theta);
    let decoder = delay_decoder(order, 0.5);
    let u = |t: usize| (2.0 * std::f64::consts::PI * t as f64 / 160.0).sin();
    let (mut err, mut power) = (0.0, 0.0);
    for t in 0..1000 {
        mem.step(&[u(t) as f32], 0.0);
        if t >= 300 {
            let est: f64 = mem.state().iter().zip(&decoder).map(|(&m, d)| m as f64 * d).sum();
            let truth = u(t - 50);
            err += (est - truth).powi(2);
            power += truth * truth;
        }
    }
    let nrmse = (err / power).sqrt();
    assert!(nrmse < 0.05, "normalised RMSE of the delayed sine {nrmse}");
}

#[test]
fn spiking_mode_touches_fewer_weight_rows_than_dense() {
    let a = arch(0.5);
    let mut net = Network::new(a, Weights::random(&arch(1.0), 2));
    let x = frames(100, 6);
    let (mut ops, mut dense) = (0u64, 0u64);
    for f in x.chunks(40) {
        net.step(f);
        ops += net.stats().spike_fed.ops();
        dense += net.stats().spike_fed.dense_macs;
    }
    assert!(ops > 0 && ops < dense, "{ops} vs {dense}");
    net.set_mode(Mode::Dense);
    net.reset();
    net.step(&x[..40]);
    let st = net.stats();
    assert_eq!(st.spike_fed.macs, st.spike_fed.dense_macs);
    assert_eq!(st.total().macs, st.total().dense_macs);
    assert_eq!(st.total().adds, 0);
}

#[test]
fn memory_recurrence_equals_the_convolution_with_its_impulse_response() {
    use spikeword::lmu::{impulse_response, memory_sequence};
    use spikeword::network::memory_convolve;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let (t_len, d, q, theta) = (150, 5, 7, 40.0);
    let u = ndarray::Array2::from_shape_fn((t_len, d), |_| rng.gen_range(-1.0f32..1.0));
    let rec = memory_sequence(&u, q, theta, 0.0);
    let conv = memory_convolve(&u, &impulse_response(q, theta, t_len), q);
    let worst = rec.iter().zip(&conv).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "recurrence vs convolution: {worst}");
    assert!(rec.iter().any(|v| v.abs() > 0.1));
}

#[test]
fn memory_adjoint_is_the_transpose_of_the_recurrence() {
    // <dm, M u> = <M^T dm, u> for the linear map u -> m.
    use spikeword::lmu::{memory_sequence, memory_sequence_adjoint};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (t_len, d, q, theta) = (120, 3, 6, 25.0);
    let u = ndarray::Array2::from_shape_fn((t_len, d), |_| rng.gen_range(-1.0f32..1.0));
    let dm = ndarray::Array2::from_shape_fn((t_len, d * q), |_| rng.gen_range(-1.0f32..1.0));
    let m = memory_sequence(&u, q, theta, 0.0);
    let du = memory_sequence_adjoint(&dm, q, theta, d);
    let lhs: f64 = dm.iter().zip(&m).map(|(a, b)| *a as f64 * *b as f64).sum();
    let rhs: f64 = du.iter().zip(&u).map(|(a, b)| *a as f64 * *b as f64).sum();
    assert!((lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
}
