//! `spikeword bench`: per-stage latency of the streaming pipeline, spiking and dense.

use super::{load_audio, load_model};
use anyhow::Result;
use spikeword::network::Mode;
use spikeword::pipeline::{median_p99_us, Pipeline};
use std::path::Path;

/// A deterministic test signal: chirps and noise bursts, so every stage does real work.
pub fn test_signal(rate: u32, seconds: f32) -> Vec<f32> {
    let n = (rate as f32 * seconds) as usize;
    let mut state = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.05;
            let f = 200.0 + 1800.0 * (t % 1.0);
            0.3 * (2.0 * std::f32::consts::PI * f * t).sin() * ((t * 3.0).sin().abs()) + noise
        })
        .collect()
}

pub fn bench(input: Option<&Path>, model: Option<&Path>, repeat: usize, json: bool) -> Result<()> {
    let model = load_model(model)?;
    let mut p = Pipeline::new(&model);
    let rate = p.sample_rate();
    let one = match input {
        Some(path) => load_audio(path, rate)?,
        None => test_signal(rate, 20.0),
    };
    let mut samples = Vec::with_capacity(one.len() * repeat.max(1));
    for _ in 0..repeat.max(1) {
        samples.extend_from_slice(&one);
    }
    let audio_s = samples.len() as f64 / rate as f64;
    let mut run = |mode: Mode| {
        p.reset();
        p.network.set_mode(mode);
        let (mut fe, mut net, mut det, mut total) = (Vec::new(), Vec::new(), Vec::new(), 0u64);
        let (mut ops, mut dense_macs, mut spikes) = (0u64, 0u64, 0.0f64);
        p.push(&samples, |r| {
            fe.push(r.timing.frontend_ns);
            net.push(r.timing.network_ns);
            det.push(r.timing.detect_ns);
            total += r.timing.total_ns();
            let st = r.network.stats();
            ops += st.event_ops;
            dense_macs += st.event_dense_macs;
            spikes += st.spikes.iter().map(|&s| s as f64).sum::<f64>();
        });
        let frames = fe.len().max(1) as f64;
        (fe, net, det, total, ops as f64 / frames, dense_macs as f64 / frames, spikes / frames)
    };
    let (fe, net_s, det, total_s, ops_s, dmacs, spikes_s) = run(Mode::Spiking);
    let (_, net_d, _, total_d, ops_d, _, _) = run(Mode::Dense);
    let (fe_m, fe_p) = median_p99_us(&fe);
    let (ns_m, ns_p) = median_p99_us(&net_s);
    let (nd_m, nd_p) = median_p99_us(&net_d);
    let (de_m, de_p) = median_p99_us(&det);
    let rtf_s = total_s as f64 / 1e9 / audio_s;
    let rtf_d = total_d as f64 / 1e9 / audio_s;
    let report = serde_json::json!({
        "audio_seconds": audio_s,
        "frames": fe.len(),
        "frontend_us": {"median": fe_m, "p99": fe_p},
        "network_spiking_us": {"median": ns_m, "p99": ns_p},
        "network_dense_us": {"median": nd_m, "p99": nd_p},
        "detection_us": {"median": de_m, "p99": de_p},
        "spiking_over_dense_network_median": ns_m / nd_m.max(1e-9),
        "real_time_factor_spiking": rtf_s,
        "real_time_factor_dense": rtf_d,
        "spikes_per_frame": spikes_s,
        "event_ops_per_frame_spiking": ops_s,
        "event_macs_per_frame_dense": ops_d.max(dmacs),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{} frames ({:.1} s of audio), one core", fe.len(), audio_s);
    println!("{:<22}{:>12}{:>12}", "stage (per frame)", "median us", "p99 us");
    for (name, m, q) in [
        ("front end", fe_m, fe_p),
        ("network, spiking", ns_m, ns_p),
        ("network, dense twin", nd_m, nd_p),
        ("detection", de_m, de_p),
    ] {
        println!("{name:<22}{m:>12.2}{q:>12.2}");
    }
    println!("spiking / dense network step (median): {:.2}", ns_m / nd_m.max(1e-9));
    println!("real-time factor: {rtf_s:.5} spiking, {rtf_d:.5} dense (processing time / audio time)");
    println!(
        "spike-driven synaptic ops per frame: {ops_s:.0} spiking vs {dmacs:.0} dense MACs ({:.1}%); {spikes_s:.1} spikes per frame",
        100.0 * ops_s / dmacs.max(1.0)
    );
    Ok(())
}
