//! The SIMD kernels against the portable ones (run in its own process: the switch between
//! them is global).

use rand::{Rng, SeedableRng};
use spikeword::kernels::{add_dense, add_rows, collect_events, set_portable, simd_active};
use spikeword::network::{Architecture, LayerSpec, Mode, Network, Weights};

/// Runs `f` with the portable kernels, then with the SIMD ones (one test at a time: the
/// switch is global).
fn both<T>(mut f: impl FnMut() -> T) -> (T, T) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    set_portable(true);
    let p = f();
    set_portable(false);
    (p, f())
}

#[test]
fn simd_and_portable_kernels_agree() {
    if !simd_active() {
        eprintln!("SKIPPED: this CPU has no AVX2/FMA, only the portable kernels run");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Widths with full 64-column blocks, 8-column blocks and single columns.
    for width in [1usize, 7, 12, 16, 40, 64, 100, 256, 296] {
        let n = 53;
        let mat: Vec<f32> = (0..n * width).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let x: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { 0.0 } else { rng.gen_range(-2.0..2.0) }).collect();
        let init: Vec<f32> = (0..width).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (a, b) = both(|| {
            let mut acc = init.clone();
            add_dense(&mut acc, &mat, &x);
            acc
        });
        let reference: Vec<f64> = (0..width).map(|j| init[j] as f64 + (0..n).map(|i| x[i] as f64 * mat[i * width + j] as f64).sum::<f64>()).collect();
        for j in 0..width {
            assert!((a[j] as f64 - reference[j]).abs() < 1e-4 && (b[j] as f64 - reference[j]).abs() < 1e-4, "dense width {width} col {j}");
        }
        let rows: Vec<u32> = (0..20).map(|_| rng.gen_range(0..n as u32)).collect();
        let coefs: Vec<f32> = (0..20).map(|k| if k % 2 == 0 { 1.0 } else { -3.0 }).collect();
        let (a, b) = both(|| {
            let mut acc = init.clone();
            add_rows(&mut acc, &mat, &rows, &coefs);
            acc
        });
        for j in 0..width {
            let r: f64 = init[j] as f64 + rows.iter().zip(&coefs).map(|(&i, &c)| c as f64 * mat[i as usize * width + j] as f64).sum::<f64>();
            assert!((a[j] as f64 - r).abs() < 1e-4 && (b[j] as f64 - r).abs() < 1e-4, "rows width {width} col {j}");
        }
    }
    // Event collection is exact either way, for every length (full blocks and a tail).
    for len in [0usize, 1, 7, 8, 9, 40, 255, 480] {
        let coefs: Vec<f32> = (0..len).map(|_| [0.0f32, 0.0, 0.0, 1.0, -1.0, 2.0, -0.5][rng.gen_range(0..7)]).collect();
        let map: Vec<u32> = (0..len as u32).map(|i| (i * 7) % 1000).collect();
        for row_map in [None, Some(&map[..])] {
            let (a, b) = both(|| {
                let (mut rows, mut out) = (vec![u32::MAX; len], vec![f32::NAN; len]);
                let (k, ones) = collect_events(&coefs, row_map, &mut rows, &mut out);
                (k, ones, rows[..k].to_vec(), out[..k].to_vec())
            });
            assert_eq!(a, b, "len {len}");
            let expect: Vec<usize> = (0..len).filter(|&i| coefs[i] != 0.0).collect();
            assert_eq!(a.0, expect.len());
            assert_eq!(a.1, expect.iter().filter(|&&i| coefs[i].abs() == 1.0).count() as u64);
            for (k, &i) in expect.iter().enumerate() {
                assert_eq!(a.2[k], row_map.map_or(i as u32, |m| m[i]));
                assert_eq!(a.3[k], coefs[i]);
            }
        }
    }
}

#[test]
fn a_network_computes_the_same_with_either_kernels() {
    let arch = Architecture {
        input_dim: 40,
        layers: vec![
            LayerSpec { memory_d: 8, order: 6, theta: 30.0, units: 48, memory_delta: 0.1 },
            LayerSpec { memory_d: 4, order: 4, theta: 20.0, units: 32, memory_delta: 0.2 },
        ],
        classes: 12,
        dt: 1.0,
        input_delta: 0.25,
    };
    let w = Weights::random(&arch, 3);
    let x: Vec<f32> = (0..100 * 40).map(|i| ((i / 40) as f32 * 0.07 + (i % 40) as f32 * 0.3).sin() * 1.5).collect();
    for mode in [Mode::Spiking, Mode::Dense] {
        let (a, b) = both(|| {
            let mut net = Network::new(arch.clone(), w.clone());
            net.set_mode(mode);
            x.chunks(40).map(|f| net.step(f).to_vec()).collect::<Vec<_>>()
        });
        let close = a.iter().zip(&b).filter(|(p, q)| p.iter().zip(q.iter()).all(|(u, v)| (u - v).abs() <= 1e-3 * (1.0 + u.abs()))).count();
        // Fused multiply-adds round differently, which can move a rare spike.
        assert!(close >= 95, "{mode:?}: {close}/100 frames agree");
    }
}
