//! Helpers shared by the integration tests: small models built in code.
#![allow(dead_code)]

use spikeword::dataset::LABELS;
use spikeword::detect::DetectionConfig;
use spikeword::features::FrontEndConfig;
use spikeword::model::{Model, ModelCard, FORMAT_VERSION};
use spikeword::network::{Architecture, LayerSpec, Weights};

pub fn small_model(seed: u64) -> Model {
    let arch = Architecture {
        input_dim: 40,
        layers: vec![
            LayerSpec { memory_d: 8, order: 6, theta: 50.0, units: 32, memory_delta: 0.0 },
            LayerSpec { memory_d: 4, order: 4, theta: 20.0, units: 24, memory_delta: 0.0 },
        ],
        classes: 12,
        dt: 1.0,
        input_delta: 0.0,
    };
    let weights = Weights::random(&arch, seed);
    let card = ModelCard {
        format_version: FORMAT_VERSION,
        name: "test".into(),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        frontend: FrontEndConfig::default(),
        architecture: arch,
        detection: DetectionConfig::default(),
        provenance: serde_json::json!({"made_by": "test"}),
        metrics: serde_json::Value::Null,
    };
    Model { card, weights }
}

/// The `spikeword` binary this test run built.
pub fn spikeword() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_spikeword"))
}

/// Whether `tool` is on PATH (tests that need a system tool skip, saying so, without it).
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh").arg("-c").arg(format!("command -v {tool}")).stdout(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Says SKIPPED on the real stderr: libtest hides `eprintln!` output of passing tests.
pub fn skipped(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {msg} ***");
}

pub fn asset(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join(name)
}
