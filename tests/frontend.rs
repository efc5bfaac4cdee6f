use rand::{Rng, SeedableRng};
use spikeword::features::{mel_centres, FrontEnd, FrontEndConfig};

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
        let tone: Vec<f32> =
            (0..16_000).map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / 16_000.0).sin()).collect();
        let mut fe = FrontEnd::new(cfg.clone()).unwrap();
        let frames = fe.frames_of(&tone);
        let last = &frames[frames.len() - 40..];
        let loudest = (0..40).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
        let nearest = (0..40)
            .min_by(|&a, &b| (centres[a] - freq).abs().total_cmp(&(centres[b] - freq).abs()))
            .unwrap();
        assert!(
            (loudest as i32 - nearest as i32).abs() <= 1,
            "{freq} Hz peaked in band {loudest} (centre {} Hz), expected band {nearest}",
            centres[loudest]
        );
        // And it dominates: far bands are much quieter (log energies).
        let far = if nearest > 20 { 0 } else { 39 };
        assert!(last[loudest] - last[far] > 5.0);
    }
}

#[test]
fn bad_front_end_parameters_are_rejected() {
    let mut cfg = FrontEndConfig::default();
    cfg.n_fft = 500;
    assert!(FrontEnd::new(cfg).is_err());
    let mut cfg = FrontEndConfig::default();
    cfg.f_max = 20_000.0;
    assert!(FrontEnd::new(cfg).is_err());
}
