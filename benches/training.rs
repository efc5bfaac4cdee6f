//! Training cost per example: the whole-sequence forward pass and the hand-written backward
//! pass of the default architecture, for 1 s and 3 s sequences, dense and spiking. The
//! memory runs by its recurrence (O(T d q^2)); these show the cost grows linearly in T.

use criterion::{criterion_group, criterion_main, Criterion};
use spikeword::network::{forward_sequence, Mode, Weights};
use spikeword::train::grad::backward;
use spikeword::train::{card, TrainConfig};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let cfg = TrainConfig::default();
    let arch = card(&cfg, 1.0, serde_json::Value::Null).architecture;
    let w = Weights::random(&arch, 1);
    for t_len in [100usize, 300] {
        let x: Vec<f32> = (0..t_len * arch.input_dim).map(|i| (i as f32 * 0.37).sin() * 3.0 - 8.0).collect();
        for mode in [Mode::Dense, Mode::Spiking] {
            let mut g = Weights::zeros(&arch);
            c.bench_function(&format!("forward + backward, T = {t_len}, {mode:?}"), |b| {
                b.iter(|| {
                    let trace = forward_sequence(&arch, &w, black_box(&x), mode, None);
                    let dz = ndarray::Array2::<f32>::from_elem(trace.logits.dim(), 0.01);
                    backward(&arch, &w, &trace, &dz, 0.02, &mut g);
                    black_box(&g);
                })
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
