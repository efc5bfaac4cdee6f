//! The `spikeword` command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use spikeword::audio;
use spikeword::model::{resolve_model_path, Model};
use spikeword::network::Mode;
use spikeword::pipeline::{median_p99_us, Pipeline};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "spikeword",
    version,
    about = "Keyword spotting with a hybrid spiking Legendre Memory Unit",
    long_about = "Keyword spotting with a hybrid spiking Legendre Memory Unit.\n\n\
        Audio is turned into log-mel frames every 10 ms; each frame advances a network whose\n\
        memories are linear Legendre Memory Units and whose hidden neurons emit spikes.\n\
        Without --model, the shipped model in models/ is used.\n\n\
        With no subcommand, opens the live dashboard on the default microphone."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// App: model file (.safetensors); default: the shipped model.
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// App: play this audio file in real time (looping) instead of listening to a microphone.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// App: input device (name, id, or part of either); default: the system's default input.
    #[arg(short, long)]
    device: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Spot keywords in an audio file, or live from a microphone with --mic; prints one JSON
    /// line per detection: {"time","keyword","score"} (with --mic also "wall", Unix seconds).
    Listen {
        /// Audio file (wav, flac, ogg, mp3; any rate and channel count).
        #[arg(short, long, required_unless_present = "mic", conflicts_with = "mic")]
        input: Option<PathBuf>,
        /// Listen to a microphone through the app's capture pipeline, headless. Status lines
        /// carry an "event" key (listening, first_audio, stalled, error, end).
        #[arg(long)]
        mic: bool,
        /// With --mic: input device (name, id, or part of either); default: the system's.
        #[arg(short, long, requires = "mic")]
        device: Option<String>,
        /// With --mic: stop after this many seconds (default: run until interrupted).
        #[arg(long, requires = "mic")]
        seconds: Option<f64>,
        /// With --mic: also print a line per 10 ms frame: {"frame","time","energy","wall"}
        /// (energy: mean log-mel).
        #[arg(long, requires = "mic")]
        frames: bool,
        /// Model file (.safetensors); default: the shipped model.
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// Probability a keyword must reach to fire, for every keyword (default: the model's).
        #[arg(short, long)]
        threshold: Option<f32>,
        /// Run the non-spiking twin (ReLU rates instead of spikes) with the same weights.
        #[arg(long)]
        dense: bool,
    },
    /// Print the model card: labels, architecture, detection defaults, measured metrics.
    Info {
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// The whole card as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train a model (spikes forward, rate gradients backward, dt annealed to the target).
    Train {
        /// Folder with the real recordings (see ../shared/data/README.md).
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// Folder of synthetic keyword speech made by `spikeword data synth` (skipped if absent).
        #[arg(long, default_value = "data/synth")]
        synth: PathBuf,
        /// Run folder: checkpoints, logs and the final model.safetensors.
        #[arg(long, default_value = "runs/kws12")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        epochs: Option<usize>,
        /// Training examples drawn (class-balanced) per epoch.
        #[arg(long)]
        samples_per_epoch: Option<usize>,
        /// Spiking time step the schedule ends at.
        #[arg(long)]
        target_dt: Option<f32>,
        /// Epochs of the non-spiking network before spiking starts.
        #[arg(long)]
        dense_epochs: Option<usize>,
        /// Epochs over which dt decays geometrically from its start value to --target-dt.
        #[arg(long)]
        anneal_epochs: Option<usize>,
        /// Firing-rate regulariser weight.
        #[arg(long)]
        rate_reg: Option<f32>,
        /// Continue from the run folder's last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Also copy the final model here (e.g. models/spikeword-kws12.safetensors).
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Per-frame latency of each stage (median and p99, microseconds) and the real-time factor.
    Bench {
        /// Audio to run (default: 20 s of a built-in test signal).
        #[arg(short, long)]
        input: Option<PathBuf>,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// Repeat the audio this many times.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        #[arg(long)]
        json: bool,
    },
}

fn load_model(explicit: Option<&Path>) -> Result<Model> {
    let path = resolve_model_path(explicit)?;
    Model::load(&path).with_context(|| format!("loading model {}", path.display()))
}

fn load_audio(path: &Path, rate: u32) -> Result<Vec<f32>> {
    audio::load_resampled(path, rate).map_err(Into::into)
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return spikeword::app::run_app(spikeword::app::AppOptions { model: cli.model, input: cli.input, device: cli.device });
    };
    if cli.model.is_some() || cli.input.is_some() || cli.device.is_some() {
        bail!("--model/--input/--device before a subcommand are for the app; put them after the subcommand");
    }
    match command {
        Command::Listen { input, mic, device, seconds, frames, model, threshold, dense } => {
            if let Some(t) = threshold {
                if !(t > 0.0 && t <= 1.0) {
                    bail!("--threshold must be in (0, 1], got {t}");
                }
            }
            if mic {
                return spikeword::app::listen_mic(model.as_deref(), device, seconds, threshold, dense, frames);
            }
            let Some(input) = input else { bail!("give --input FILE or --mic") };
            let model = load_model(model.as_deref())?;
            let mut p = Pipeline::new(&model);
            if let Some(t) = threshold {
                p.detector.set_threshold(t);
            }
            if dense {
                p.network.set_mode(Mode::Dense);
            }
            let samples = load_audio(&input, p.sample_rate())?;
            for d in p.detections(&samples) {
                println!("{}", serde_json::to_string(&d)?);
            }
            Ok(())
        }
        Command::Info { model, json } => {
            let path = resolve_model_path(model.as_deref())?;
            let model = Model::load(&path).with_context(|| format!("loading model {}", path.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&model.card)?);
            } else {
                print_card(&path, &model);
            }
            Ok(())
        }
        Command::Train { data, synth, out, seed, epochs, samples_per_epoch, target_dt, dense_epochs, anneal_epochs, rate_reg, resume, export } => {
            let mut cfg = spikeword::train::TrainConfig { data, synth: Some(synth), out, seed, ..Default::default() };
            if let Some(e) = epochs {
                cfg.epochs = e;
            }
            if let Some(n) = samples_per_epoch {
                cfg.samples_per_epoch = n;
            }
            if let Some(d) = target_dt {
                cfg.target_dt = d;
            }
            if let Some(e) = dense_epochs {
                cfg.dense_epochs = e;
            }
            if let Some(e) = anneal_epochs {
                cfg.anneal_epochs = e;
            }
            if let Some(r) = rate_reg {
                cfg.rate_reg = r;
            }
            let model = spikeword::train::train(&cfg, resume, None)?;
            if let Some(path) = export {
                model.save(&path).with_context(|| format!("exporting to {}", path.display()))?;
                eprintln!("exported {}", path.display());
            }
            Ok(())
        }
        Command::Bench { input, model, repeat, json } => bench(input.as_deref(), model.as_deref(), repeat, json),
    }
}

fn print_card(path: &Path, m: &Model) {
    let c = &m.card;
    let a = &c.architecture;
    println!("model      {} ({})", c.name, path.display());
    println!("labels     {}", c.labels.join(" "));
    println!(
        "front end  {} Hz, {} mel bands, {} ms window, {} ms hop",
        c.frontend.sample_rate,
        c.frontend.n_mels,
        c.frontend.win_length * 1000 / c.frontend.sample_rate as usize,
        c.frontend.hop_length * 1000 / c.frontend.sample_rate as usize
    );
    for (i, l) in a.layers.iter().enumerate() {
        println!(
            "layer {i}    LMU memory {} x order {} over {} frames -> {} spiking units",
            l.memory_d, l.order, l.theta, l.units
        );
    }
    println!("readout    {} classes; dt = {}; {} parameters", a.classes, a.dt, a.parameter_count());
    println!(
        "detection  threshold {} (overrides: {:?}), smoothing {} frames, refractory {} s",
        c.detection.default_threshold, c.detection.thresholds, c.detection.smoothing_frames, c.detection.refractory_s
    );
    if !c.metrics.is_null() {
        println!("metrics    {}", serde_json::to_string_pretty(&c.metrics).unwrap_or_default());
    }
    if !c.provenance.is_null() {
        println!("provenance {}", serde_json::to_string_pretty(&c.provenance).unwrap_or_default());
    }
}

/// A deterministic test signal: chirps and noise bursts, so every stage does real work.
fn test_signal(rate: u32, seconds: f32) -> Vec<f32> {
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

fn bench(input: Option<&Path>, model: Option<&Path>, repeat: usize, json: bool) -> Result<()> {
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
            ops += r.stats.event_ops;
            dense_macs += r.stats.event_dense_macs;
            spikes += r.stats.spikes.iter().map(|&s| s as f64).sum::<f64>();
        });
        let frames = fe.len().max(1) as f64;
        (fe, net, det, total, ops as f64 / frames, dense_macs as f64 / frames, spikes / frames)
    };
    let (mut fe, mut net_s, mut det, total_s, ops_s, dmacs, spikes_s) = run(Mode::Spiking);
    let (_, mut net_d, _, total_d, ops_d, _, _) = run(Mode::Dense);
    let (fe_m, fe_p) = median_p99_us(&mut fe);
    let (ns_m, ns_p) = median_p99_us(&mut net_s);
    let (nd_m, nd_p) = median_p99_us(&mut net_d);
    let (de_m, de_p) = median_p99_us(&mut det);
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
