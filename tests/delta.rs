//! Delta coding (event-driven memory read-out and input): its error bound, the streaming
//! step against the whole-sequence computation with it on, the periodic resynchronisation,
//! and that a frame in which nothing changed costs (almost) nothing.

use rand::{Rng, SeedableRng};
use spikeword::network::{delta_code, delta_level, forward_sequence, Architecture, LayerSpec, Mode, Network, Weights, RESYNC_FRAMES};

const IN: usize = 40;

fn arch(input_delta: f32, memory_delta: [f32; 2]) -> Architecture {
    Architecture {
        input_dim: IN,
        layers: vec![
            LayerSpec { memory_d: 8, order: 6, theta: 30.0, units: 48, memory_delta: memory_delta[0] },
            LayerSpec { memory_d: 4, order: 4, theta: 20.0, units: 32, memory_delta: memory_delta[1] },
        ],
        classes: 12,
        dt: 1.0,
        input_delta,
    }
}

/// Slowly varying features with noise: like log-mel frames, each changes a little per frame.
fn frames(t: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..t * IN)
        .map(|i| {
            let (t, b) = ((i / IN) as f32, (i % IN) as f32);
            (t * 0.05 + b * 0.3).sin() * 1.5 + (t * 0.013 * (1.0 + b / 20.0)).cos() + rng.gen_range(-0.05..0.05)
        })
        .collect()
}

#[test]
fn delta_coded_values_stay_within_half_a_step() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for delta in [1e-3f32, 0.05, 0.3, 2.0] {
        for _ in 0..20_000 {
            let y: f32 = rng.gen_range(-50.0..50.0);
            let c = delta_code(y, delta);
            // Half a step, plus the rounding of y / delta and of delta * level.
            assert!((y - c).abs() <= 0.5 * delta * (1.0 + 1e-5) + 1e-6 * y.abs(), "delta {delta}: {y} -> {c}");
            assert_eq!(delta_level(c, 1.0 / delta), delta_level(y, 1.0 / delta));
        }
    }
    assert_eq!(delta_code(0.123, 0.0), 0.123, "delta 0 is no coding");
    // In the network: what the units read (m_read, the coded input) is within half a step
    // of the exact signal, at every frame.
    let a = arch(0.25, [0.1, 0.2]);
    let w = Weights::random(&a, 3);
    let x = frames(300, 2);
    let t = forward_sequence(&a, &w, &x, Mode::Spiking, None);
    for (l, lt) in t.layers.iter().enumerate() {
        let d = a.layers[l].memory_delta;
        let worst = lt.m.iter().zip(&lt.m_read).map(|(m, r)| (m - r).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 0.5 * d * 1.0001, "layer {l}: memory read-out error {worst} > {d}/2");
        let changed = lt.m.iter().zip(&lt.m_read).filter(|(m, r)| m != r).count();
        assert!(changed > lt.m.len() / 2, "layer {l}: the coding must actually act ({changed})");
    }
    let raw = forward_sequence(&a, &w, &x, Mode::Dense, None).input;
    let worst = raw.iter().zip(&t.input).map(|(x, c)| (x - c).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 0.5 * 0.25 * 1.0001, "input coding error {worst}");
    // The dense twin codes nothing.
    let dense = forward_sequence(&a, &w, &x, Mode::Dense, None);
    for lt in &dense.layers {
        assert_eq!(lt.m, lt.m_read);
    }
}

/// Per frame: logits, and per layer the spike counts.
type Streamed = (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>);

/// Streams `x`: per-frame logits and counts, and the memory and input events in all.
fn stream(net: &mut Network, x: &[f32]) -> (Streamed, u64, u64) {
    let (mut logits, mut counts, mut mem_events, mut in_events) = (Vec::new(), Vec::new(), 0u64, 0u64);
    for f in x.chunks(IN) {
        logits.push(net.step(f).to_vec());
        counts.push((0..2).map(|l| net.layer_output(l).to_vec()).collect());
        mem_events += net.stats().memory_events.iter().map(|&e| e as u64).sum::<u64>();
        in_events += net.stats().input_events as u64;
    }
    ((logits, counts), mem_events, in_events)
}

#[test]
fn streaming_step_matches_the_whole_sequence_with_delta_coding_on() {
    let t_len = 300;
    let a = arch(0.25, [0.1, 0.2]);
    let w = Weights::random(&a, 7);
    let x = frames(t_len, 1);
    let mut net = Network::new(a.clone(), w.clone());
    let ((logits, counts), mem_events, in_events) = stream(&mut net, &x);
    let seq = forward_sequence(&a, &w, &x, Mode::Spiking, None);
    // The codings send events, but far fewer than a dense read-out touches.
    let states: usize = a.layers.iter().map(|l| l.memory_d * l.order).sum();
    assert!(mem_events > 0 && mem_events < (states * t_len / 2) as u64, "{mem_events} memory events");
    assert!(in_events > 0 && in_events < (IN * t_len / 2) as u64, "{in_events} input events");
    // Same spike counts, but for the rare count that rounding puts on the other side of a
    // spike or level boundary; the quantizer repays it, so cumulative counts stay close.
    let (mut same, mut total, mut spikes) = (0usize, 0usize, 0.0f32);
    for (l, spec) in a.layers.iter().enumerate() {
        let units = spec.units;
        let (mut cum_s, mut cum_q) = (vec![0.0f32; units], vec![0.0f32; units]);
        for (t, frame_counts) in counts.iter().enumerate() {
            for j in 0..units {
                let (s, q) = (frame_counts[l][j], seq.layers[l].counts[[t, j]]);
                cum_s[j] += s;
                cum_q[j] += q;
                spikes += s;
                same += (s == q) as usize;
                total += 1;
                assert!((cum_s[j] - cum_q[j]).abs() <= 1.0, "layer {l} unit {j} drifted at t={t}");
            }
        }
    }
    assert!(same as f64 >= 0.995 * total as f64, "only {same}/{total} spike counts identical");
    assert!(spikes > 1000.0, "the test network must spike ({spikes})");
    let close =
        logits.iter().enumerate().filter(|(t, row)| row.iter().enumerate().all(|(c, &z)| (z - seq.logits[[*t, c]]).abs() <= 1e-3 * (1.0 + z.abs()))).count();
    assert!(close as f64 >= 0.95 * t_len as f64, "logits matched on {close}/{t_len} frames");
    // And the coding changes the computation: the uncoded network differs.
    let exact = forward_sequence(&arch(0.0, [0.0, 0.0]), &w, &x, Mode::Spiking, None);
    assert!(exact.logits != seq.logits);
}

#[test]
fn running_sums_stay_within_rounding_of_their_recomputation() {
    // The incremental sums gather rounding; the periodic rebuild bounds it. Check the gap to
    // an exact (f64) recomputation at every frame over several rebuild periods.
    let a = arch(0.25, [0.1, 0.2]);
    let w = Weights::random(&a, 11);
    let t_len = 3 * RESYNC_FRAMES as usize + 100;
    let x = frames(t_len, 5);
    let mut net = Network::new(a, w);
    let (mut worst, mut right_after) = (0.0f32, 0.0f32);
    for (t, f) in x.chunks(IN).enumerate() {
        net.step(f);
        let e = net.running_sum_error();
        worst = worst.max(e);
        if (t as u64).is_multiple_of(RESYNC_FRAMES) && t > 0 {
            right_after = right_after.max(e);
        }
    }
    assert!(worst > 0.0, "float running sums do round");
    assert!(worst < 1e-4, "running sums drifted by {worst}");
    assert!(right_after < 1e-5, "a rebuild leaves {right_after}");
}

#[test]
fn a_silent_input_costs_almost_no_work() {
    // Units with negative bias are quiet without input. Drive the network with loud input
    // first, so memories, levels and spikes are all busy, then hold the input still.
    let a = arch(0.25, [0.1, 0.2]);
    let mut w = Weights::random(&a, 4);
    for lw in &mut w.layers {
        lw.bias.iter_mut().for_each(|b| *b = -1.0);
    }
    let mut net = Network::new(a.clone(), w.clone());
    let loud = frames(200, 9);
    let mut busy = 0u64;
    for f in loud.chunks(IN) {
        net.step(f);
        busy += net.stats().total().ops();
    }
    let dense_per_frame = net.stats().total().dense_macs;
    assert!(busy > 200 * dense_per_frame / 20, "loud input must cost real work ({busy})");
    // Silence: the input's mean, which normalises to zero.
    let silent = w.input_mean.clone();
    let mut settled_at = None;
    for t in 0..2000 {
        net.step(&silent);
        let st = net.stats();
        if (200 + t as u64).is_multiple_of(RESYNC_FRAMES) {
            // The periodic rebuild of the running sums: with every level at zero it is
            // cheap, but it is work.
            assert!(st.total().ops() * 10 < st.total().dense_macs);
            continue;
        }
        let quiet =
            st.total().ops() <= IN as u64 && st.memory_update.macs == 0 && st.memory_events.iter().all(|&e| e == 0) && st.spikes.iter().all(|&s| s == 0.0);
        if quiet && settled_at.is_none() {
            settled_at = Some(t);
        }
        if settled_at.is_some() {
            // Once quiet, it stays quiet: only the input's level check (one multiply per
            // feature) remains, against a dense twin that redoes every product.
            assert!(quiet, "frame {t}: work came back ({:?})", st.total());
            assert_eq!(st.input_events, 0);
            assert_eq!(st.total().adds, 0);
            assert!(st.total().ops() * 100 < st.total().dense_macs);
        }
    }
    let settled_at = settled_at.expect("the network never went quiet on a silent input");
    assert!(settled_at < 20 * 30, "took {settled_at} frames to settle");
    // The same silent frame in the dense twin costs every multiply-accumulate.
    net.set_mode(Mode::Dense);
    net.step(&silent);
    assert_eq!(net.stats().total().macs, dense_per_frame);
    // And the streaming network still computes what the whole-sequence pass computes.
    let mut all = loud.clone();
    for _ in 0..(settled_at + 50) {
        all.extend_from_slice(&silent);
    }
    let seq = forward_sequence(&a, &w, &all, Mode::Spiking, None);
    let mut net = Network::new(a, w);
    let t_len = all.len() / IN;
    let mut close = 0;
    for (t, f) in all.chunks(IN).enumerate() {
        let z = net.step(f);
        close += z.iter().enumerate().all(|(c, &v)| (v - seq.logits[[t, c]]).abs() <= 1e-3 * (1.0 + v.abs())) as usize;
    }
    assert!(close as f64 >= 0.97 * t_len as f64, "{close}/{t_len}");
}

#[test]
fn switching_to_the_dense_twin_and_back_keeps_the_coding_consistent() {
    // In dense mode the coded running sums are not kept up to date. After switching back,
    // the spiking network must compute what one that rebuilds its sums from scratch at every
    // frame computes.
    let a = arch(0.25, [0.1, 0.2]);
    let w = Weights::random(&a, 21);
    let x = frames(400, 3);
    let (mut switching, mut rebuilding) = (Network::new(a.clone(), w.clone()), Network::new(a.clone(), w));
    let mut differing = 0;
    for (t, f) in x.chunks(IN).enumerate() {
        let mode = if (100..150).contains(&t) { Mode::Dense } else { Mode::Spiking };
        switching.set_mode(mode);
        rebuilding.set_mode(mode);
        rebuilding.set_deltas(0.25, &[0.1, 0.2]);
        let z1 = switching.step(f).to_vec();
        let z2 = rebuilding.step(f);
        differing += z1.iter().zip(z2).any(|(a, b)| (a - b).abs() > 1e-3 * (1.0 + a.abs())) as usize;
    }
    assert!(differing <= 10, "{differing} of 400 frames differ");
}
