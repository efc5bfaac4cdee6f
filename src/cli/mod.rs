//! The command line's parts: flags, reports, benchmarks.

pub mod args;
pub mod bench;
pub mod report;
pub mod train;

use anyhow::Result;
use spikeword::model::{load_resolved, Model};
use std::path::Path;

/// An error and its causes on one line, as `{:#}` prints them, less any cause whose text the
/// line already holds: errors that name their source in their own message (the audio ones
/// do, so that they read whole on their own) would otherwise say it twice.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

pub fn load_model(explicit: Option<&Path>) -> Result<Model> {
    Ok(load_resolved(explicit)?.1)
}

/// Sets `a.b.c=JSON` paths in any serialisable configuration (values that are not valid
/// JSON are taken as strings); unknown paths are errors, so a typo never goes unnoticed.
pub fn apply_overrides<T: serde::Serialize + serde::de::DeserializeOwned>(cfg: &T, overrides: &[String]) -> Result<T> {
    let mut v = serde_json::to_value(cfg)?;
    for o in overrides {
        let Some((path, value)) = o.split_once('=') else { anyhow::bail!("--set {o}: expected PATH=VALUE") };
        let value: serde_json::Value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        let mut at = &mut v;
        for key in path.split('.') {
            at = match at {
                serde_json::Value::Object(m) if m.contains_key(key) => m.get_mut(key).expect("checked"),
                serde_json::Value::Array(a) => match key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    Some(x) => x,
                    None => anyhow::bail!("--set {o}: no index {key} in {path}"),
                },
                _ => anyhow::bail!("--set {o}: no setting {key:?} in {path}"),
            };
        }
        *at = value;
    }
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("--set: {e}"))
}

/// `spikeword calibrate-delta`: search (or measure given) delta steps, report, write the model.
pub fn calibrate_delta(
    opt: &spikeword::delta_calibration::DeltaOptions,
    model: Option<&Path>,
    out: Option<&Path>,
    set: Option<Vec<f32>>,
    json: bool,
) -> Result<()> {
    use anyhow::{bail, Context};
    use spikeword::delta_calibration::{calibrate, measure, Trial};
    let mut m = load_model(model)?;
    let n = 1 + m.card.architecture.layers.len();
    let line = |t: &Trial| {
        eprintln!(
            "deltas {:?}: accuracy {:.2}% (agrees with exact on {:.2}%), {:.0} ops per frame ({:.1}% of {:.0} dense MACs), memory events {:?}, input events {:.1}",
            t.deltas,
            100.0 * t.accuracy,
            100.0 * t.agreement,
            t.ops_per_frame,
            100.0 * t.ops_per_frame / t.dense_macs_per_frame.max(1.0),
            t.dense_macs_per_frame,
            t.memory_events_per_frame.iter().map(|e| (e * 10.0).round() / 10.0).collect::<Vec<_>>(),
            t.input_events_per_frame
        )
    };
    let r = match set {
        Some(d) => {
            if d.len() != n {
                bail!("--set needs {n} steps: layer 0's input, then each layer's memory read-out");
            }
            let r = measure(&m, opt, &d)?;
            r.tried.iter().for_each(line);
            r
        }
        None => calibrate(&m, opt, &line)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "signal rms (input, memories): {:?}; {} streams per clip; smoothed accuracy along the grid {:?}; scale chosen {}",
            r.signal_rms,
            r.offsets,
            r.smoothed_accuracy.iter().map(|a| (a * 10000.0).round() / 100.0).collect::<Vec<_>>(),
            r.scale
        );
        println!(
            "{} clips: exact {:.2}%, chosen {:?}: {:.2}% ({:+.2} points), {:.1}% of the dense MACs",
            r.clips,
            100.0 * r.exact.accuracy,
            r.chosen.deltas,
            100.0 * r.chosen.accuracy,
            100.0 * (r.chosen.accuracy - r.exact.accuracy),
            100.0 * r.chosen.ops_per_frame / r.chosen.dense_macs_per_frame.max(1.0)
        );
    }
    if let Some(out) = out {
        m.card.architecture.input_delta = r.chosen.deltas[0];
        for (l, &d) in m.card.architecture.layers.iter_mut().zip(&r.chosen.deltas[1..]) {
            l.memory_delta = d;
        }
        m.card.validate()?;
        if !m.card.provenance.is_object() {
            m.card.provenance = serde_json::json!({});
        }
        m.card.provenance["delta_calibration"] = serde_json::json!({
            "data": opt.data.display().to_string(),
            "clips": r.clips,
            "speakers": if opt.dev_only { "dev" } else { "train+dev" },
            "streams_per_clip": r.offsets,
            "tolerance_points": opt.tolerance,
            "signal_rms": r.signal_rms,
            "scale": r.scale,
            "exact_accuracy": r.exact.accuracy,
            "accuracy": r.chosen.accuracy,
            "ops_per_frame": r.chosen.ops_per_frame,
            "dense_macs_per_frame": r.chosen.dense_macs_per_frame,
        });
        m.save(out).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::apply_overrides;
    use spikeword::train::TrainConfig;

    #[test]
    fn overrides_set_nested_values_and_reject_unknown_paths() {
        let cfg = TrainConfig::default();
        let c = apply_overrides(&cfg, &["compose.p_second_keyword=0.5".into(), "lr=0.001".into(), "layers.1.units=64".into()]).unwrap();
        assert_eq!(c.compose.p_second_keyword, 0.5);
        assert_eq!(c.lr, 0.001);
        assert_eq!(c.layers[1].units, 64);
        assert!(apply_overrides(&cfg, &["compose.nonsense=1".into()]).is_err());
        assert!(apply_overrides(&cfg, &["lr=fast".into()]).is_err(), "a string where a number belongs");
        assert!(apply_overrides(&cfg, &["lr".into()]).is_err());
    }
}
