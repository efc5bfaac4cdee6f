//! `spikeword train`: one command from the data folder to a calibrated model file.

use super::args::TrainArgs;
use anyhow::{bail, Context, Result};
use spikeword::corpus::Part;
use spikeword::eval::calibrate::{apply, calibrate, Method};
use spikeword::features::Compression;
use spikeword::train::TrainConfig;

/// False alarms per hour each keyword may raise on the train and dev negatives when the
/// thresholds are chosen at the end of training.
pub const CALIBRATION_PER_KEYWORD_PER_HOUR: f64 = 0.1;

fn config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = TrainConfig { data: a.data.clone(), synth: Some(a.synth.clone()), out: a.out.clone(), seed: a.seed, ..Default::default() };
    let set = |v: Option<usize>, dst: &mut usize| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(a.epochs, &mut cfg.epochs);
    set(a.sequences_per_epoch, &mut cfg.sequences_per_epoch);
    set(a.dense_epochs, &mut cfg.dense_epochs);
    set(a.anneal_epochs, &mut cfg.anneal_epochs);
    if let Some(s) = a.seconds {
        cfg.compose.seconds = s;
    }
    cfg.limit_files = a.limit_files;
    match a.frontend.as_str() {
        "log" => cfg.frontend.compression = Compression::Log,
        "pcen" => {
            // A floor far below 16-bit quantisation noise, so the division by the smoothed
            // energy cancels any gain.
            cfg.frontend.log_floor = 1e-12;
            cfg.frontend.compression = Compression::Pcen(Default::default());
        }
        other => bail!("--frontend must be log or pcen, not {other:?}"),
    }
    if let Some(d) = &a.memory_d {
        if d.len() != cfg.layers.len() {
            bail!("--memory-d needs {} values (one per layer)", cfg.layers.len());
        }
        cfg.layers.iter_mut().zip(d).for_each(|(l, &d)| l.memory_d = d);
    }
    if let Some(d) = a.target_dt {
        cfg.target_dt = d;
    }
    if let Some(u) = a.units {
        cfg.layers.iter_mut().for_each(|l| l.units = u);
    }
    if let Some(r) = a.rate_reg {
        cfg.rate_reg = r;
    }
    if !a.overrides.is_empty() {
        cfg = super::apply_overrides(&cfg, &a.overrides)?;
    }
    Ok(cfg)
}

pub fn run(a: TrainArgs) -> Result<()> {
    let saved = a.out.join("config.json");
    let mut cfg = if a.resume && saved.is_file() {
        // A resumed run continues with the settings it started with.
        let text = std::fs::read_to_string(&saved).with_context(|| format!("reading {}", saved.display()))?;
        let cfg: TrainConfig = serde_json::from_str(&text).with_context(|| format!("{} is not a training configuration", saved.display()))?;
        eprintln!("resuming with the settings in {}", saved.display());
        cfg
    } else {
        config(&a)?
    };
    if a.stop_after == Some(0) {
        bail!("--stop-after counts epochs from 1");
    }
    cfg.stop_after = a.stop_after;
    let mut model = spikeword::train::train(&cfg, a.resume, None)?;
    let trained = model.card.metrics["epochs"].as_array().map_or(0, |e| e.len());
    if trained < cfg.epochs {
        eprintln!("{trained} of {} epochs done; continue with the same command and --resume", cfg.epochs);
        return Ok(());
    }
    let out = cfg.out.join("model.safetensors");
    if !a.no_calibrate {
        let corpus = spikeword::corpus::load(&cfg.data, cfg.split)?;
        let parts = [Part::Calib, Part::Dev];
        let c = calibrate(&model, &corpus, &parts, CALIBRATION_PER_KEYWORD_PER_HOUR, Method::Global, cfg.limit_files)?;
        eprintln!(
            "thresholds chosen on {:.2} h of calibration and dev negatives, never trained on ({:.2} false alarms/h there; dev keyword recall {:.1}%): {}",
            c.negative_hours,
            c.false_alarms_per_hour,
            100.0 * c.dev_recall,
            c.thresholds.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        );
        apply(&mut model, &c, CALIBRATION_PER_KEYWORD_PER_HOUR);
        model.save(&out).with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(path) = a.export {
        model.save(&path).with_context(|| format!("exporting to {}", path.display()))?;
        eprintln!("exported {}", path.display());
    }
    Ok(())
}
