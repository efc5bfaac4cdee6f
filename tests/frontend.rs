use rand::{Rng, SeedableRng};
use spikeword::features::{mel_centres, Compression, FrontEnd, FrontEndConfig, PcenConfig};

#[test]
fn frames_do_not_depend_on_chunking() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let audio: Vec<f32> = (0..16_000 * 2 + 77).map(|_| rng.gen_range(-0.5..0.5)).collect();
    let mut whole = FrontEnd::new(FrontEndConfig::default()).unwrap();
    let reference = whole.frames_of(&audio);
    assert_eq!(reference.len(), (audio.len() / 160) * 40);
    for max_chunk in [1usize, 7, 160, 161, 1000, 4096] {
        let mut fe = FrontEnd::new(FrontEndConfig::default()).unwrap();
        let mut out = Vec::new();
        let mut rest = &audio[..];
        while !rest.is_empty() {
            let n = rng.gen_range(1..=max_chunk).min(rest.len());
            fe.push(&rest[..n], |f| out.extend_from_slice(f));
            rest = &rest[n..];
        }
        assert_eq!(out, reference, "chunks of up to {max_chunk} samples changed the frames");
    }
}

#[test]
fn a_pure_tone_lands_in_its_mel_band() {
    let cfg = FrontEndConfig::default();
    let centres = mel_centres(&cfg);
    for freq in [300.0f32, 1000.0, 2500.0, 6000.0] {
        let tone: Vec<f32> = (0..16_000).map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / 16_000.0).sin()).collect();
        let mut fe = FrontEnd::new(cfg.clone()).unwrap();
        let frames = fe.frames_of(&tone);
        let last = &frames[frames.len() - 40..];
        let loudest = (0..40).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
        let nearest = (0..40).min_by(|&a, &b| (centres[a] - freq).abs().total_cmp(&(centres[b] - freq).abs())).unwrap();
        assert!((loudest as i32 - nearest as i32).abs() <= 1, "{freq} Hz peaked in band {loudest} (centre {} Hz), expected band {nearest}", centres[loudest]);
        // And it dominates: far bands are much quieter (log energies).
        let far = if nearest > 20 { 0 } else { 39 };
        assert!(last[loudest] - last[far] > 5.0);
    }
}

#[test]
fn bad_front_end_parameters_are_rejected() {
    let cfg = FrontEndConfig { n_fft: 500, ..FrontEndConfig::default() };
    assert!(FrontEnd::new(cfg).is_err());
    let cfg = FrontEndConfig { f_max: 20_000.0, ..FrontEndConfig::default() };
    assert!(FrontEnd::new(cfg).is_err());
    for release in [-0.1, 1.5, f32::NAN] {
        let cfg = FrontEndConfig { compression: Compression::Pcen(PcenConfig { release, ..Default::default() }), ..FrontEndConfig::default() };
        assert!(FrontEnd::new(cfg).is_err(), "PCEN release {release} accepted");
    }
    for reseed_db in [-1.0, f32::NAN, 1e9] {
        let cfg =
            FrontEndConfig { compression: Compression::Pcen(PcenConfig { reseed_frames: 20, reseed_db, ..Default::default() }), ..FrontEndConfig::default() };
        assert!(FrontEnd::new(cfg).is_err(), "PCEN reseed_db {reseed_db} accepted");
    }
}

#[test]
fn pcen_reseed_forgets_a_loud_word_after_a_pause() {
    // As above, but the smoother restarts once the pause has lasted 20 frames: the keyword
    // then reaches the network as it does from a fresh stream that opens with the same
    // silence (as eval-stream's fresh trials do).
    let kw = spikeword::audio::load_resampled(&common_asset("yes_0cb74144.flac"), 16_000).unwrap();
    let mut prefix: Vec<f32> = kw.iter().map(|v| (v * 8.0).clamp(-1.0, 1.0)).collect();
    prefix.resize(prefix.len() + 24_000, 0.0);
    let reseed = PcenConfig { reseed_frames: 20, ..Default::default() };
    let cfg = FrontEndConfig { log_floor: 1e-12, compression: Compression::Pcen(reseed), ..Default::default() };
    let mean = |f: &[f32]| f.iter().sum::<f32>() / f.len() as f32;
    let mut fresh = FrontEnd::new(cfg.clone()).unwrap();
    fresh.push(&vec![0.0; 8_000], |_| {});
    let cold = mean(&fresh.frames_of(&kw));
    let mut fe = FrontEnd::new(cfg).unwrap();
    fe.push(&prefix, |_| {});
    let warm = mean(&fe.frames_of(&kw));
    assert!(warm > 0.9 * cold && warm < 1.1 * cold, "re-seed: after a loud word {warm}, after silence {cold}");
}

#[test]
fn pcen_reseed_leaves_words_and_short_dips_alone() {
    // Tone bursts over a noise floor with 100 ms dips between them (shorter than the 20-frame
    // pause): every frame is what the plain smoother gives. After a 0.5 s pause the re-seeded
    // smoother differs, and the next burst comes out louder than without it.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut audio = Vec::new();
    let burst = |audio: &mut Vec<f32>, rng: &mut rand::rngs::StdRng, n: usize, tone: bool| {
        for i in 0..n {
            let t = audio.len() + i;
            let s = if tone { 0.3 * (2.0 * std::f32::consts::PI * 700.0 * t as f32 / 16_000.0).sin() } else { 0.0 };
            audio.push(s + rng.gen_range(-0.001..0.001));
        }
    };
    for _ in 0..6 {
        burst(&mut audio, &mut rng, 4_800, true);
        burst(&mut audio, &mut rng, 1_600, false);
    }
    let dips_end = audio.len() / 160;
    burst(&mut audio, &mut rng, 8_000, false);
    burst(&mut audio, &mut rng, 4_800, true);
    let cfg = |reseed_frames| FrontEndConfig {
        log_floor: 1e-12,
        compression: Compression::Pcen(PcenConfig { reseed_frames, ..Default::default() }),
        ..Default::default()
    };
    let plain = FrontEnd::new(cfg(0)).unwrap().frames_of(&audio);
    let reseeded = FrontEnd::new(cfg(20)).unwrap().frames_of(&audio);
    assert_eq!(plain[..dips_end * 40], reseeded[..dips_end * 40], "a 100 ms dip re-seeded the smoother");
    let last = |f: &[f32]| f[f.len() - 30 * 40..].iter().sum::<f32>();
    assert!(last(&reseeded) > 1.2 * last(&plain), "after the pause: {} re-seeded, {} plain", last(&reseeded), last(&plain));
}

#[test]
fn pcen_release_forgets_a_loud_word_within_the_pause() {
    // The same keyword 1.5 s after a word 18 dB louder (a keyword every 2.5 s, as
    // eval-stream's back-to-back line plays them) against the keyword after silence. With
    // the paper's symmetric smoother the loud word still divides it; with the fast release
    // the smoother is back at the room's level and the keyword reaches the network as it
    // would from a fresh start.
    let kw = spikeword::audio::load_resampled(&common_asset("yes_0cb74144.flac"), 16_000).unwrap();
    let mut prefix: Vec<f32> = kw.iter().map(|v| (v * 8.0).clamp(-1.0, 1.0)).collect();
    prefix.resize(prefix.len() + 24_000, 0.0);
    let mean_of = |pcen: PcenConfig, prefix: &[f32]| {
        let cfg = FrontEndConfig { log_floor: 1e-12, compression: Compression::Pcen(pcen), ..Default::default() };
        let mut fe = FrontEnd::new(cfg).unwrap();
        fe.push(prefix, |_| {});
        let f = fe.frames_of(&kw);
        f.iter().sum::<f32>() / f.len() as f32
    };
    let symmetric = PcenConfig { release: 0.0, ..Default::default() };
    let fast = PcenConfig { release: 0.08, ..Default::default() };
    let (cold, warm) = (mean_of(symmetric, &[]), mean_of(symmetric, &prefix));
    assert!(warm < 0.7 * cold, "symmetric: after a loud word {warm}, after silence {cold}");
    let (cold, warm) = (mean_of(fast, &[]), mean_of(fast, &prefix));
    assert!(warm > 0.9 * cold, "fast release: after a loud word {warm}, after silence {cold}");
}

#[test]
fn pcen_does_not_depend_on_the_input_level_but_log_mel_does() {
    let x = spikeword::audio::load_resampled(&common_asset("yes_0cb74144.flac"), 16_000).unwrap();
    let quiet: Vec<f32> = x.iter().map(|v| v * 0.05).collect(); // -26 dB
    let frames = |cfg: &FrontEndConfig, y: &[f32]| FrontEnd::new(cfg.clone()).unwrap().frames_of(y);
    let mean_abs_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32;
    let spread = |a: &[f32]| {
        let m = a.iter().sum::<f32>() / a.len() as f32;
        a.iter().map(|v| (v - m).abs()).sum::<f32>() / a.len() as f32
    };
    let log = FrontEndConfig::default();
    let pcen = FrontEndConfig { compression: Compression::Pcen(PcenConfig::default()), log_floor: 1e-12, ..FrontEndConfig::default() };
    let (l1, l2) = (frames(&log, &x), frames(&log, &quiet));
    let (p1, p2) = (frames(&pcen, &x), frames(&pcen, &quiet));
    // A gain is a constant shift of every log-mel value (ln 0.05^2 = -6), far beyond its spread...
    assert!(mean_abs_diff(&l1, &l2) > 0.5 * spread(&l1), "log-mel moved {} (spread {})", mean_abs_diff(&l1, &l2), spread(&l1));
    // ...while PCEN divides it out: the change is a small fraction of the features' own spread.
    assert!(mean_abs_diff(&p1, &p2) < 0.1 * spread(&p1), "PCEN moved {} (spread {})", mean_abs_diff(&p1, &p2), spread(&p1));
}

#[test]
fn vocal_tract_warp_is_the_identity_at_one_and_keeps_the_band_edge() {
    use spikeword::features::vtlp_warp;
    for f in [0.0f32, 100.0, 1000.0, 4000.0, 7999.0] {
        assert_eq!(vtlp_warp(f, 1.0, 8000.0), f);
    }
    for alpha in [0.88f32, 1.12] {
        assert!((vtlp_warp(8000.0, alpha, 8000.0) - 8000.0).abs() < 1e-2);
        let mut last = -1.0;
        for k in 0..=80 {
            let w = vtlp_warp(k as f32 * 100.0, alpha, 8000.0);
            assert!(w > last, "monotone");
            last = w;
        }
        assert!((vtlp_warp(1000.0, alpha, 8000.0) - 1000.0 * alpha).abs() < 1e-2);
    }
    // Warped features differ from plain ones, and alpha = 1 gives exactly the plain front end.
    let x = spikeword::audio::load_resampled(&common_asset("yes_0cb74144.flac"), 16_000).unwrap();
    let plain = FrontEnd::new(FrontEndConfig::default()).unwrap().frames_of(&x);
    assert_eq!(FrontEnd::with_warp(FrontEndConfig::default(), 1.0).unwrap().frames_of(&x), plain);
    assert_ne!(FrontEnd::with_warp(FrontEndConfig::default(), 1.1).unwrap().frames_of(&x), plain);
}

fn common_asset(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join(name)
}

#[test]
fn restarting_the_smoother_forgets_a_loud_word() {
    // What the pipeline does a refractory time after a keyword reaches the reseed level: the keyword that
    // follows a loud word reaches the network as it does after silence, where without the
    // restart the loud word still divides it.
    let kw = spikeword::audio::load_resampled(&common_asset("yes_0cb74144.flac"), 16_000).unwrap();
    let mut prefix: Vec<f32> = kw.iter().map(|v| (v * 8.0).clamp(-1.0, 1.0)).collect();
    prefix.resize(prefix.len() + 16_000, 0.0);
    let cfg = FrontEndConfig { log_floor: 1e-12, compression: Compression::Pcen(PcenConfig::default()), ..Default::default() };
    let mean = |f: &[f32]| f.iter().sum::<f32>() / f.len() as f32;
    let after = |restart: bool| {
        let mut fe = FrontEnd::new(cfg.clone()).unwrap();
        fe.push(&prefix, |_| {});
        if restart {
            fe.restart_smoothing();
        }
        fe.push(&vec![0.0; 8_000], |_| {});
        mean(&fe.frames_of(&kw))
    };
    let mut fresh = FrontEnd::new(cfg.clone()).unwrap();
    fresh.push(&vec![0.0; 8_000], |_| {});
    let cold = mean(&fresh.frames_of(&kw));
    let (kept, restarted) = (after(false), after(true));
    assert!(kept < 0.7 * cold, "kept: after a loud word {kept}, after silence {cold}");
    assert!(restarted > 0.9 * cold && restarted < 1.1 * cold, "restarted: after a loud word {restarted}, after silence {cold}");
}
