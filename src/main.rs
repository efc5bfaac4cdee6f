//! The `spikeword` command line: parses flags (cli::args) and runs the subcommand.

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::args::{Cli, Command, DataCommand};
use cli::load_model;
use cli::report::{print_benchmark, print_card, print_class_report, print_comparison};
use spikeword::model::load_resolved;
use spikeword::network::Mode;
use spikeword::pipeline::Pipeline;

fn main() {
    let cli = Cli::parse();
    if cli.command.is_some() {
        restore_sigpipe();
    }
    if let Err(e) = run(cli) {
        eprintln!("error: {}", cli::error_text(&e));
        std::process::exit(1);
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`spikeword info | head`) panics.
/// The command-line tools end quietly instead, as other Unix tools do; the app keeps Rust's
/// default (it prints nothing that matters, and its audio libraries use sockets).
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing on the main thread, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `--reseed-level` as `listen` and `eval-stream` take it (`calibrate` validates the card it writes).
fn check_reseed_level(level: Option<f32>) -> Result<()> {
    if let Some(level) = level.filter(|&l| !spikeword::detect::is_reseed_level(l)) {
        bail!("--reseed-level {level} must be in 0..=1 (0: never restart)");
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return spikeword::app::run_app(spikeword::app::AppOptions { model: cli.model, input: cli.input, device: cli.device });
    };
    if cli.model.is_some() || cli.input.is_some() || cli.device.is_some() {
        bail!("--model/--input/--device before a subcommand are for the app; put them after the subcommand");
    }
    match command {
        Command::Listen { input, mic, device, seconds, frames, model, threshold, reseed_level, dense } => {
            if let Some(t) = threshold {
                if !(t > 0.0 && t <= 1.0) {
                    bail!("--threshold must be in (0, 1], got {t}");
                }
            }
            check_reseed_level(reseed_level)?;
            if mic {
                return spikeword::app::listen_mic(model.as_deref(), device, seconds, threshold, reseed_level, dense, frames);
            }
            let Some(input) = input else { bail!("give --input FILE or --mic") };
            let model = load_model(model.as_deref())?;
            let mut p = Pipeline::new(&model);
            if let Some(level) = reseed_level {
                p.detector.set_reseed_level(level);
            }
            if let Some(t) = threshold {
                p.detector.set_threshold(t);
            }
            if dense {
                p.network.set_mode(Mode::Dense);
            }
            // Chunk by chunk: memory is bounded by a decoded packet, whatever the file's length.
            let mut stream = spikeword::audio::ResampledStream::open(&input, p.sample_rate())?;
            let mut found = Vec::new();
            while let Some(chunk) = stream.next_chunk()? {
                p.push(chunk, |r| found.extend(r.detection));
                for d in found.drain(..) {
                    println!("{}", serde_json::to_string(&d)?);
                }
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
        Command::Train(args) => cli::train::run(args),
        Command::Data { action: DataCommand::Synth { out, seed, variants, unknown_voices, jobs } } => {
            let opts =
                spikeword::synth::SynthOptions { out_dir: out.clone(), seed, variants_per_voice: variants, unknown_voices_per_word: unknown_voices, jobs };
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
        Command::EvalStream { data, part, snr, model, threshold, no_twin, limit, gain_db, back_to_back_reset, reseed_level, dev_percent, plot, json } => {
            if part == spikeword::corpus::Part::Calib {
                bail!("the calib part holds negatives only (it sets thresholds); evaluate on dev or test");
            }
            check_reseed_level(reseed_level)?;
            let model = load_model(model.as_deref())?;
            let mut split = spikeword::corpus::Split::of(&model.card.provenance);
            if let Some(p) = dev_percent {
                if part != spikeword::corpus::Part::Dev {
                    bail!("--dev-percent only applies with --part dev");
                }
                if p > split.dev_percent {
                    bail!("--dev-percent {p} is larger than the model's own dev ({}%): the model trained on some of those speakers", split.dev_percent);
                }
                split.dev_percent = p;
            }
            let corpus = spikeword::corpus::load(&data, split)?;
            let opt = spikeword::eval::stream::BenchmarkOptions {
                part,
                snr_db: snr,
                threshold,
                dense_twin: !no_twin,
                limit,
                seed: 7,
                gain_db,
                back_to_back: Some(back_to_back_reset),
                reseed_level,
            };
            let r = spikeword::eval::stream::benchmark(&model, &corpus, &opt)?;
            spikeword::eval::det::plot_det(&r, &plot)?;
            let data_path = plot.with_extension("json");
            std::fs::write(&data_path, serde_json::to_string_pretty(&r)?).with_context(|| format!("writing {}", data_path.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_benchmark(&r);
                println!("DET plot: {} (data: {})", plot.display(), data_path.display());
            }
            Ok(())
        }
        Command::Compare { a, b, twin, b_twin, json } => {
            let mode_a = if twin { Mode::Dense } else { Mode::Spiking };
            let mode_b = if twin || b_twin { Mode::Dense } else { Mode::Spiking };
            let (ra, rb) = (spikeword::eval::compare::read_report(&a)?, spikeword::eval::compare::read_report(&b)?);
            let diffs = spikeword::eval::compare::compare(&ra, &rb, mode_a, mode_b)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&diffs)?);
            } else {
                print_comparison(&a, &b, ra.part, (mode_a, mode_b), &diffs);
                let shared_snr = ra.snr_db.iter().any(|s| rb.snr_db.contains(s));
                if shared_snr && diffs.len() == 1 {
                    println!("(the noisy conditions are left out: a report written before `compare` existed holds clean outcomes only)");
                }
            }
            Ok(())
        }
        Command::Calibrate { data, parts, per_keyword_per_hour, method, model, out, reseed_level } => {
            if parts.contains(&spikeword::corpus::Part::Test) {
                bail!("thresholds are never chosen on the test part");
            }
            let mut model = load_model(model.as_deref())?;
            if let Some(level) = reseed_level {
                model.card.detection.reseed_level = level;
                model.card.detection.validate(&model.card.labels).map_err(|e| anyhow::anyhow!("--reseed-level: {e}"))?;
            }
            let corpus = spikeword::corpus::load(&data, spikeword::corpus::Split::of(&model.card.provenance))?;
            let c = spikeword::eval::calibrate::calibrate(&model, &corpus, &parts, per_keyword_per_hour, method, None)?;
            let fit = |kc: &spikeword::eval::calibrate::KeywordCalibration| {
                let e = kc.extrapolated.map_or("too few false alarms to fit".to_string(), |e| format!("{e}"));
                format!("lowest with the allowed false alarms here {}, where the fitted tail allows them {e}", kc.observed)
            };
            println!("all keywords together: {}", fit(&c.global));
            for (k, t) in &c.thresholds {
                println!("{k:<8} {t:<8} (alone: {})", fit(&c.per_keyword[k]));
            }
            println!(
                "on {:.2} h of {:?} negatives: {:.2} false alarms per hour; dev keyword recall {:.1}%",
                c.negative_hours,
                parts,
                c.false_alarms_per_hour,
                100.0 * c.dev_recall
            );
            spikeword::eval::calibrate::apply(&mut model, &c, per_keyword_per_hour);
            model.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
        Command::CalibrateDelta { data, model, out, tolerance, dev_only, set, limit, offsets, json } => {
            let opt = spikeword::delta_calibration::DeltaOptions {
                data,
                dev_only,
                tolerance,
                grid: spikeword::delta_calibration::DEFAULT_GRID.to_vec(),
                limit,
                offsets,
            };
            cli::calibrate_delta(&opt, model.as_deref(), out.as_deref(), set, json)
        }
        Command::Bench { input, model, repeat, deltas, portable, json } => {
            cli::bench::bench(&cli::bench::BenchOptions { input, model, repeat, deltas, portable, json })
        }
    }
}
