//! Per-frame cost of each stage on one core: the front end, the network step spiking vs
//! its dense twin (same weights, same kernels; the spiking step with the model's delta
//! coding), a silent frame, and the whole path. Uses the shipped model (realistic weights,
//! activity and delta steps) when it is present, otherwise a random network of the same
//! size. `SPIKEWORD_MODEL=FILE cargo bench` measures another model.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use spikeword::audio::load_resampled;
use spikeword::features::{FrontEnd, FrontEndConfig};
use spikeword::model::{default_model_candidates, Model};
use spikeword::network::{Mode, Weights};
use spikeword::pipeline::Pipeline;
use spikeword::train::{card, TrainConfig};
use std::hint::black_box;
use std::path::Path;

fn model() -> Model {
    if let Some(p) = default_model_candidates().into_iter().find(|p| p.is_file()) {
        if let Ok(m) = Model::load(&p) {
            eprintln!("benchmarking {}", p.display());
            return m;
        }
    }
    let cfg = TrainConfig::default();
    let c = card(&cfg, cfg.target_dt, serde_json::Value::Null);
    eprintln!("no shipped model: benchmarking a random network of the default size");
    let weights = Weights::random(&c.architecture, 1);
    Model { card: c, weights }
}

/// Real speech and noise, a few seconds of it (the mix `spikeword bench` runs by default).
fn audio() -> Vec<f32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut x = Vec::new();
    for f in ["noise_pink_3s.flac", "yes_0cb74144.flac", "stop_0fa1e7a9.flac", "unknown_backward_0cb74144.flac", "go_0487ba9b.flac"] {
        x.extend(load_resampled(&dir.join(f), 16_000).expect("test assets decode"));
    }
    x
}

/// Log-mel frames of the audio, and the network warmed up on them.
fn frames(x: &[f32]) -> Vec<Vec<f32>> {
    let mut fe = FrontEnd::new(FrontEndConfig::default()).expect("default config");
    let mut out = Vec::new();
    fe.push(x, |f| out.push(f.to_vec()));
    out
}

fn bench(c: &mut Criterion) {
    let m = model();
    let x = audio();
    let fr = frames(&x);

    let mut fe = FrontEnd::new(m.card.frontend.clone()).expect("valid");
    let hop = m.card.frontend.hop_length;
    let mut i = 0;
    c.bench_function("front end, one 10 ms frame", |b| {
        b.iter(|| {
            let s = &x[(i * hop) % (x.len() - hop)..][..hop];
            i += 1;
            fe.push(black_box(s), |f| {
                black_box(f);
            });
        })
    });

    for (name, mode) in [("network step, spiking", Mode::Spiking), ("network step, dense twin", Mode::Dense)] {
        let mut net = m.network();
        net.set_mode(mode);
        let mut k = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                let f = &fr[k % fr.len()];
                k += 1;
                black_box(net.step(black_box(f)));
            })
        });
    }

    // A frame in which nothing changed: digital silence, after the network has settled on it.
    let mut silent = Vec::new();
    FrontEnd::new(m.card.frontend.clone()).expect("valid").push(&vec![0.0; 16_000], |f| silent = f.to_vec());
    for (name, mode) in [("silent frame, spiking", Mode::Spiking), ("silent frame, dense twin", Mode::Dense)] {
        let mut net = m.network();
        net.set_mode(mode);
        for _ in 0..2000 {
            net.step(&silent);
        }
        c.bench_function(name, |b| {
            b.iter(|| {
                black_box(net.step(black_box(&silent)));
            })
        });
    }

    let mut p = Pipeline::new(&m);
    let mut j = 0;
    c.bench_function("whole per-frame path (front end, spiking network, detection)", |b| {
        b.iter_batched(
            || {
                j += 1;
                &x[(j * hop) % (x.len() - hop)..][..hop]
            },
            |s| {
                p.push(s, |r| {
                    black_box(r.probs);
                })
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
