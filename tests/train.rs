//! A small training run: the loss goes down, and the exported file, loaded by the
//! inference engine, reproduces the trained network's outputs.

mod common;

use common::asset;
use spikeword::audio::load_resampled;
use spikeword::dataset::label_index;
use spikeword::features::{FrontEnd, FrontEndConfig};
use spikeword::model::Model;
use spikeword::network::{LayerSpec, Mode};
use spikeword::train::{train, FeatureSet, TrainConfig};

fn features() -> FeatureSet {
    let mut set = FeatureSet { frames: 100, dim: 40, ..Default::default() };
    let mut fe = FrontEnd::new(FrontEndConfig::default()).unwrap();
    for (file, label) in [
        ("yes_0cb74144.flac", "yes"),
        ("no_0cb74144.flac", "no"),
        ("stop_0fa1e7a9.flac", "stop"),
        ("go_0487ba9b.flac", "go"),
        ("unknown_backward_0cb74144.flac", "_unknown_"),
        ("noise_pink_3s.flac", "_silence_"),
    ] {
        let x = load_resampled(&asset(file), 16_000).unwrap();
        // Two gains of each clip so an epoch has a few batches.
        for g in [1.0f32, 0.3] {
            let y: Vec<f32> = x.iter().take(16_000).map(|v| v * g).collect();
            fe.reset();
            set.features.extend(fe.frames_of(&y));
            set.labels.push(label_index(label).unwrap());
        }
    }
    set
}

#[test]
fn a_few_steps_lower_the_loss_and_the_export_matches_inference() {
    let dir = tempfile::tempdir().unwrap();
    let set = features();
    let cfg = TrainConfig {
        out: dir.path().to_path_buf(),
        epochs: 8,
        batch: 4,
        lr: 5e-3,
        samples_per_epoch: 24,
        layers: vec![
            LayerSpec { memory_d: 8, order: 6, theta: 100.0, units: 32 },
            LayerSpec { memory_d: 4, order: 4, theta: 50.0, units: 32 },
        ],
        dense_epochs: 2,
        start_dt: 8.0,
        target_dt: 2.0,
        anneal_epochs: 4,
        freq_masks: 0,
        time_masks: 0,
        ..Default::default()
    };
    let model = train(&cfg, false, Some((set.clone(), set.clone(), FeatureSet { frames: 100, dim: 40, ..Default::default() }))).unwrap();
    let log = model.card.metrics["epochs"].as_array().unwrap();
    let first = log.first().unwrap()["loss"].as_f64().unwrap();
    let last = log.last().unwrap()["loss"].as_f64().unwrap();
    assert!(last < 0.7 * first, "loss {first} -> {last}");
    assert_eq!(model.card.architecture.dt, 2.0);

    // The file written by training, loaded by the engine, streams the same scores as the
    // whole-clip computation training optimised.
    let loaded = Model::load(&dir.path().join("model.safetensors")).unwrap();
    assert_eq!(loaded.weights, model.weights);
    for i in 0..set.len() {
        let x = set.example(i);
        let mut net = loaded.network();
        let mut streamed = Vec::new();
        for f in x.chunks(40) {
            streamed.push(net.step(f).to_vec());
        }
        let seq = model.network().forward_sequence(x, Mode::Spiking, None).logits;
        let matching = streamed
            .iter()
            .enumerate()
            .filter(|(t, row)| row.iter().enumerate().all(|(c, &z)| (z - seq[[*t, c]]).abs() <= 1e-3 * (1.0 + z.abs())))
            .count();
        assert!(matching >= 95, "example {i}: {matching}/100 frames match");
    }
    // Resuming from the checkpoint continues, rather than restarting.
    let more = TrainConfig { epochs: 9, ..cfg };
    let resumed = train(&more, true, Some((set.clone(), set.clone(), FeatureSet { frames: 100, dim: 40, ..Default::default() }))).unwrap();
    assert_eq!(resumed.card.metrics["epochs"].as_array().unwrap().len(), 9);
}
