//! `spikeword bench`: per-stage latency of the streaming pipeline, the spiking network
//! against its dense twin in the same run, and the arithmetic each does per frame.

use super::load_model;
use anyhow::{bail, Result};
use spikeword::audio::ResampledStream;
use spikeword::network::{Mode, OpCount};
use spikeword::pipeline::{median_p99_us, Pipeline};
use std::path::{Path, PathBuf};

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

/// The speech and noise clips in `assets/` (the same mix `cargo bench` runs), about 7 s.
pub const ASSET_MIX: [&str; 5] = ["noise_pink_3s.flac", "yes_0cb74144.flac", "stop_0fa1e7a9.flac", "unknown_backward_0cb74144.flac", "go_0487ba9b.flac"];

fn asset_mix(rate: u32) -> Option<Vec<f32>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut x = Vec::new();
    for f in ASSET_MIX {
        x.extend(spikeword::audio::load_resampled(&dir.join(f), rate).ok()?);
    }
    Some(x)
}

/// What bench runs over.
enum Source<'a> {
    /// Audio in memory (the assets mix, or the built-in signal).
    Clip(Vec<f32>),
    /// A file, streamed (decoded and resampled a chunk at a time), never held whole: an hour
    /// of audio would be 230 MB of samples.
    File(&'a Path),
}

/// Feeds `repeat` passes over `source` to `run` in blocks of five seconds; the number of
/// samples fed.
fn for_each_block(source: &Source, rate: u32, repeat: usize, run: &mut impl FnMut(&[f32])) -> Result<u64> {
    let block_len = 5 * rate as usize;
    let mut samples = 0u64;
    let mut block = Vec::with_capacity(block_len);
    for _ in 0..repeat {
        match source {
            Source::Clip(x) => block.extend_from_slice(x),
            Source::File(path) => {
                let mut stream = ResampledStream::open(path, rate)?;
                while let Some(chunk) = stream.next_chunk()? {
                    block.extend_from_slice(chunk);
                    samples += drain_full(&mut block, block_len, run);
                }
            }
        }
        samples += drain_full(&mut block, block_len, run);
    }
    samples += block.len() as u64;
    if !block.is_empty() {
        run(&block);
    }
    Ok(samples)
}

/// Runs and removes every whole block at the front of `buf`; the samples it ran.
fn drain_full(buf: &mut Vec<f32>, block_len: usize, run: &mut impl FnMut(&[f32])) -> u64 {
    let whole = buf.len() / block_len * block_len;
    for b in buf[..whole].chunks(block_len) {
        run(b);
    }
    buf.drain(..whole);
    whole as u64
}

pub struct BenchOptions {
    pub input: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub repeat: usize,
    pub deltas: Option<Vec<f32>>,
    pub portable: bool,
    pub json: bool,
}

/// What one mode measured.
struct Run {
    frontend: Vec<u64>,
    network: Vec<u64>,
    detect: Vec<u64>,
    total: Vec<u64>,
    ops: OpCount,
    spike_fed: OpCount,
    spikes: f64,
    memory_events: Vec<f64>,
    input_events: f64,
}

pub fn bench(opt: &BenchOptions) -> Result<()> {
    let model = load_model(opt.model.as_deref())?;
    spikeword::kernels::set_portable(opt.portable);
    let mut p = Pipeline::new(&model);
    if let Some(d) = &opt.deltas {
        if d.len() != 1 + model.card.architecture.layers.len() {
            bail!("--deltas needs {} values: layer 0's input, then each layer's memory", 1 + model.card.architecture.layers.len());
        }
        p.network.set_deltas(d[0], &d[1..]);
    }
    let rate = p.sample_rate();
    let (audio, source) = match &opt.input {
        Some(path) => (Source::File(path), path.display().to_string()),
        None => match asset_mix(rate) {
            Some(x) => (Source::Clip(x), "assets/ speech and noise mix".to_string()),
            None => (Source::Clip(test_signal(rate, 20.0)), "built-in test signal".to_string()),
        },
    };
    let n_layers = model.card.architecture.layers.len();
    // Both modes run over the same audio in alternating blocks of five seconds, each network
    // carrying its state on, so that a burst of load from elsewhere on the machine falls on
    // both and not on one mode's whole run. A block switch costs a few cold frames (the other
    // mode's weights went through the cache), far from the median.
    let new_run = || Run {
        frontend: Vec::new(),
        network: Vec::new(),
        detect: Vec::new(),
        total: Vec::new(),
        ops: OpCount::default(),
        spike_fed: OpCount::default(),
        spikes: 0.0,
        memory_events: vec![0.0; n_layers],
        input_events: 0.0,
    };
    let mut dense = Pipeline::new(&model);
    dense.network.set_mode(Mode::Dense);
    p.network.set_mode(Mode::Spiking);
    let (mut s, mut d) = (new_run(), new_run());
    let mut run_block = |block: &[f32]| {
        for (pipe, r) in [(&mut p, &mut s), (&mut dense, &mut d)] {
            pipe.push(block, |f| {
                r.frontend.push(f.timing.frontend_ns);
                r.network.push(f.timing.network_ns);
                r.detect.push(f.timing.detect_ns);
                r.total.push(f.timing.total_ns());
                let st = f.network.stats();
                r.ops.add(&st.total());
                r.spike_fed.add(&st.spike_fed);
                r.spikes += st.spikes.iter().map(|&s| s as f64).sum::<f64>();
                for (a, &b) in r.memory_events.iter_mut().zip(&st.memory_events) {
                    *a += b as f64;
                }
                r.input_events += st.input_events as f64;
            });
        }
    };
    let samples = for_each_block(&audio, rate, opt.repeat.max(1), &mut run_block)?;
    if samples == 0 {
        bail!("{source}: no audio in it to run");
    }
    let audio_s = samples as f64 / rate as f64;
    let frames = s.frontend.len().max(1) as f64;
    let (fe_m, fe_p) = median_p99_us(&s.frontend);
    let (ns_m, ns_p) = median_p99_us(&s.network);
    let (nd_m, nd_p) = median_p99_us(&d.network);
    let (de_m, de_p) = median_p99_us(&s.detect);
    let (ts_m, ts_p) = median_p99_us(&s.total);
    let (td_m, td_p) = median_p99_us(&d.total);
    let rtf = |r: &Run| r.total.iter().sum::<u64>() as f64 / 1e9 / audio_s;
    let per = |c: &OpCount| {
        serde_json::json!({
            "adds": c.adds as f64 / frames,
            "multiplies": c.macs as f64 / frames,
            "dense_macs": c.dense_macs as f64 / frames,
            "ops_over_dense": c.ops() as f64 / (c.dense_macs as f64).max(1.0),
        })
    };
    let arch = p.network.architecture();
    let report = serde_json::json!({
        "audio": source,
        "audio_seconds": audio_s,
        "frames": s.frontend.len(),
        "kernels": spikeword::kernels::kernel_name(),
        "deltas": {"input": arch.input_delta, "memory": arch.layers.iter().map(|l| l.memory_delta).collect::<Vec<_>>()},
        "frontend_us": {"median": fe_m, "p99": fe_p},
        "network_spiking_us": {"median": ns_m, "p99": ns_p},
        "network_dense_us": {"median": nd_m, "p99": nd_p},
        "detection_us": {"median": de_m, "p99": de_p},
        "whole_path_spiking_us": {"median": ts_m, "p99": ts_p},
        "whole_path_dense_us": {"median": td_m, "p99": td_p},
        "spiking_over_dense_network_median": ns_m / nd_m.max(1e-9),
        "real_time_factor_spiking": rtf(&s),
        "real_time_factor_dense": rtf(&d),
        "spikes_per_frame": s.spikes / frames,
        "memory_events_per_frame": s.memory_events.iter().map(|e| e / frames).collect::<Vec<_>>(),
        "input_events_per_frame": s.input_events / frames,
        "ops_per_frame_spiking": per(&s.ops),
        "ops_per_frame_dense": per(&d.ops),
        "spike_fed_ops_per_frame_spiking": per(&s.spike_fed),
    });
    if opt.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{} frames ({:.1} s of {source}), one core, {} kernels", s.frontend.len(), audio_s, spikeword::kernels::kernel_name());
    println!("delta steps: input {}, memory {:?}", arch.input_delta, arch.layers.iter().map(|l| l.memory_delta).collect::<Vec<_>>());
    println!("{:<34}{:>12}{:>12}", "stage (per frame)", "median us", "p99 us");
    for (name, m, q) in [
        ("front end", fe_m, fe_p),
        ("network, spiking", ns_m, ns_p),
        ("network, dense twin", nd_m, nd_p),
        ("detection", de_m, de_p),
        ("whole path, spiking", ts_m, ts_p),
        ("whole path, dense twin", td_m, td_p),
    ] {
        println!("{name:<34}{m:>12.2}{q:>12.2}");
    }
    println!("spiking / dense network step (median): {:.2}", ns_m / nd_m.max(1e-9));
    println!("real-time factor: {:.5} spiking, {:.5} dense (processing time / audio time)", rtf(&s), rtf(&d));
    println!(
        "per frame: {:.1} spikes, {} memory events, {:.1} input events",
        s.spikes / frames,
        s.memory_events.iter().map(|e| format!("{:.1}", e / frames)).collect::<Vec<_>>().join(" + "),
        s.input_events / frames
    );
    println!(
        "arithmetic per frame, spiking: {:.0} adds + {:.0} multiplies = {:.1}% of the dense twin's {:.0} MACs",
        s.ops.adds as f64 / frames,
        s.ops.macs as f64 / frames,
        100.0 * s.ops.ops() as f64 / (s.ops.dense_macs as f64).max(1.0),
        s.ops.dense_macs as f64 / frames
    );
    println!(
        "spike-driven synaptic ops per frame: {:.0} vs {:.0} dense MACs ({:.1}%)",
        s.spike_fed.ops() as f64 / frames,
        s.spike_fed.dense_macs as f64 / frames,
        100.0 * s.spike_fed.ops() as f64 / (s.spike_fed.dense_macs as f64).max(1.0)
    );
    Ok(())
}
