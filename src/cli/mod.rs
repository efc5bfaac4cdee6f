//! The command line's parts: flags, reports, benchmarks.

pub mod args;
pub mod bench;
pub mod report;

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

