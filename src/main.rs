//! The `spikeword` command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use spikeword::audio;
use spikeword::model::{load_resolved, Model};
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
        /// With --mic: also print a line per 10 ms frame: {"frame","time","energy","top","p","wall"}
        /// (top: the most probable keyword, p: its smoothed probability)
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
        /// Spiking units in every hidden layer.
        #[arg(long)]
        units: Option<usize>,
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
    /// Clip accuracy on a folder laid out like Speech Commands (one sub-folder per class),
    /// spiking model and its non-spiking twin side by side, with energy figures.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// Include clips of speakers the shipped model was trained on (by default they are
        /// left out, so the accuracy is on unseen speakers).
        #[arg(long)]
        all_speakers: bool,
        #[arg(long)]
        json: bool,
    },
    /// False alarms per hour on continuous non-keyword speech, false rejects of keywords
    /// embedded in noise at given SNRs, and the detection-error trade-off plot.
    EvalStream {
        /// Folder of non-keyword audio, streamed as one long recording.
        #[arg(long)]
        negatives: PathBuf,
        /// Folder of keyword clips (class sub-folders); held-out speakers only.
        #[arg(long)]
        positives: Option<PathBuf>,
        /// SNRs (dB) at which positives are mixed into background noise.
        #[arg(long, num_args = 1.., default_values_t = [20.0f32, 10.0, 5.0])]
        snr: Vec<f32>,
        /// Background noise recordings (their last 20%, never used in training, is used).
        #[arg(long, default_value = "../shared/data/noise")]
        noise: PathBuf,
        /// Which negative files: `held-out` (the half of each folder that training never
        /// uses), `trained` (the other half: for choosing thresholds) or `all`.
        #[arg(long, value_enum, default_value = "held-out")]
        files: spikeword::eval::FileSplit,
        #[arg(short, long)]
        model: Option<PathBuf>,
        #[arg(short, long)]
        threshold: Option<f32>,
        /// Where to write the DET plot (PNG) and its data (same name, .json).
        #[arg(long, default_value = "det.png")]
        plot: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Choose per-keyword thresholds from non-keyword speech the model was trained on, and
    /// write them into a copy of the model file.
    Calibrate {
        #[arg(long)]
        negatives: PathBuf,
        #[arg(long, value_enum, default_value = "trained")]
        files: spikeword::eval::FileSplit,
        /// False alarms per hour each keyword may raise on those files.
        #[arg(long, default_value_t = 0.5)]
        per_keyword_per_hour: f64,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// The calibrated model file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make training data: `spikeword data synth` renders the keywords and many other words
    /// with every installed offline text-to-speech voice (install them with scripts/install-tts.sh).
    Data {
        #[command(subcommand)]
        action: DataCommand,
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

#[derive(Subcommand)]
enum DataCommand {
    /// Render synthetic keyword speech, one folder per class, 1 s 16 kHz WAV clips.
    Synth {
        #[arg(long, default_value = "data/synth")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Renders of each keyword per voice (each with its own speed and pitch).
        #[arg(long, default_value_t = 4)]
        variants: usize,
        /// Voices (drawn at random) that say each non-keyword word.
        #[arg(long, default_value_t = 12)]
        unknown_voices: usize,
        /// Parallel renders.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
}

fn load_model(explicit: Option<&Path>) -> Result<Model> {
    Ok(load_resolved(explicit)?.1)
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
            let (path, model) = load_resolved(model.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&model.card)?);
            } else {
                print_card(&path, &model);
            }
            Ok(())
        }
        Command::Train { data, synth, out, seed, epochs, samples_per_epoch, target_dt, dense_epochs, anneal_epochs, units, rate_reg, resume, export } => {
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
            if let Some(u) = units {
                cfg.layers.iter_mut().for_each(|l| l.units = u);
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
        Command::Data { action: DataCommand::Synth { out, seed, variants, unknown_voices, jobs } } => {
            let opts = spikeword::synth::SynthOptions {
                out_dir: out.clone(),
                seed,
                variants_per_voice: variants,
                unknown_voices_per_word: unknown_voices,
                jobs,
            };
            let pb = spikeword::progress::bar(0, "rendering");
            let report = spikeword::synth::synthesize(&opts, &|done, total| {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
            })?;
            pb.finish();
            eprintln!("{} clips from {} voices in {} ({} renders failed)", report.clips, report.voices.len(), out.display(), report.failed);
            Ok(())
        }
        Command::Eval { data, model, all_speakers, json } => {
            let model = load_model(model.as_deref())?;
            let set = spikeword::eval::labelled_clips(&data, &model.card.labels, !all_speakers)?;
            let r = spikeword::eval::evaluate_clips(&model, &set)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_class_report(&r);
            }
            Ok(())
        }
        Command::EvalStream { negatives, positives, snr, noise, files, model, threshold, plot, json } => {
            let model = load_model(model.as_deref())?;
            let opt = spikeword::eval::StreamOptions {
                negatives,
                positives,
                snr_db: snr,
                noise,
                files,
                threshold,
                seed: 7,
            };
            let r = spikeword::eval::evaluate_stream(&model, &opt)?;
            spikeword::eval::plot_det(&r, &plot)?;
            let data_path = plot.with_extension("json");
            std::fs::write(&data_path, serde_json::to_string_pretty(&r)?)
                .with_context(|| format!("writing {}", data_path.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "negatives: {} files, {:.3} h: {} false alarms = {:.2} per hour (threshold {})",
                    r.negative_files, r.hours, r.false_alarms, r.false_alarms_per_hour, r.default_threshold
                );
                for p in &r.positives {
                    println!(
                        "positives at {:>4} dB SNR: {} clips, {:.1}% false rejects, {} wrong-keyword detections",
                        p.snr_db, p.trials, 100.0 * p.false_reject_rate, p.wrong_keyword
                    );
                }
                print_energy(&r.energy);
                println!("DET plot: {} (data: {})", plot.display(), data_path.display());
            }
            Ok(())
        }
        Command::Calibrate { negatives, files, per_keyword_per_hour, model, out } => {
            let mut model = load_model(model.as_deref())?;
            let (th, hours) = spikeword::eval::calibrate_thresholds(&model, &negatives, files, per_keyword_per_hour)?;
            for (k, t) in &th {
                println!("{k:<8} {t}");
            }
            model.card.detection.thresholds = th;
            model.card.provenance["calibration"] = serde_json::json!({
                "negatives": negatives.display().to_string(),
                "files": format!("{files:?}"),
                "hours": hours,
                "per_keyword_false_alarms_per_hour": per_keyword_per_hour,
            });
            model.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} (thresholds chosen on {:.2} h of audio)", out.display(), hours);
            Ok(())
        }
        Command::Bench { input, model, repeat, json } => bench(input.as_deref(), model.as_deref(), repeat, json),
    }
}

fn print_class_report(r: &spikeword::eval::ClassReport) {
    println!(
        "{} clips ({} of trained-on speakers left out): accuracy {:.2}% spiking, {:.2}% non-spiking twin",
        r.clips,
        r.excluded_trained_speakers,
        100.0 * r.accuracy,
        100.0 * r.accuracy_dense
    );
    println!("{:<11}{:>10}{:>10}{:>12}{:>12}", "class", "precision", "recall", "prec.dense", "rec.dense");
    for (i, c) in r.classes.iter().enumerate() {
        println!(
            "{c:<11}{:>10.3}{:>10.3}{:>12.3}{:>12.3}",
            r.precision[i], r.recall[i], r.precision_dense[i], r.recall_dense[i]
        );
    }
    println!("confusion (rows: true, columns: predicted, spiking):");
    print!("{:<11}", "");
    for c in &r.classes {
        print!("{:>6}", &c[..c.len().min(5)]);
    }
    println!();
    for (i, row) in r.confusion.iter().enumerate() {
        print!("{:<11}", r.classes[i]);
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
    print_energy(&r.energy);
    println!(
        "non-spiking twin: {:.3} uJ per second of audio (spike-driven connections {:.3} uJ/s)",
        r.energy_dense.total_energy_uj_per_second, r.energy_dense.event_energy_dense_uj_per_second
    );
}

fn print_energy(e: &spikeword::energy::EnergyReport) {
    println!(
        "spikes per frame per layer: {}; active fraction: {}",
        e.spikes_per_frame.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", "),
        e.active_fraction.iter().map(|s| format!("{:.1}%", 100.0 * s)).collect::<Vec<_>>().join(", ")
    );
    println!(
        "bits per activity {:.2}; significant bits per weight multiply {:.2}",
        e.bits_per_activity, e.significant_bits_per_multiply
    );
    println!(
        "synaptic ops {:.0}/s vs dense MACs {:.0}/s on the spike-driven connections ({:.1}%); fixed dense MACs {:.0}/s",
        e.synaptic_ops_per_second,
        e.dense_macs_per_second,
        100.0 * e.synaptic_ops_over_dense_macs,
        e.fixed_macs_per_second
    );
    println!(
        "energy ({} pJ/MAC, {} pJ/add, 45 nm): spike-driven {:.3} vs {:.3} uJ/s dense; whole network {:.3} vs {:.3} uJ/s",
        e.pj_per_mac,
        e.pj_per_add,
        e.event_energy_uj_per_second,
        e.event_energy_dense_uj_per_second,
        e.total_energy_uj_per_second,
        e.total_energy_dense_uj_per_second
    );
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
