//! The command line's parts: flags, reports, benchmarks.

pub mod args;
pub mod bench;
pub mod report;
pub mod train;

use anyhow::Result;
use spikeword::audio;
use spikeword::model::{load_resolved, Model};
use std::path::Path;

pub fn load_model(explicit: Option<&Path>) -> Result<Model> {
    Ok(load_resolved(explicit)?.1)
}

pub fn load_audio(path: &Path, rate: u32) -> Result<Vec<f32>> {
    audio::load_resampled(path, rate).map_err(Into::into)
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
