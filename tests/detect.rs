mod common;

use spikeword::detect::{DetectionConfig, Detector};
use spikeword::features::Compression;
use spikeword::pipeline::Pipeline;

fn labels() -> Vec<String> {
    ["yes", "no", "_unknown_", "_silence_"].iter().map(|s| s.to_string()).collect()
}

fn logits_for(class: usize, strength: f32) -> Vec<f32> {
    (0..4).map(|i| if i == class { strength } else { 0.0 }).collect()
}

#[test]
fn non_keyword_classes_never_fire() {
    let mut d = Detector::new(labels(), DetectionConfig::default(), 0.01);
    for class in [2, 3] {
        for _ in 0..500 {
            assert!(d.push(&logits_for(class, 20.0)).is_none());
        }
    }
}

#[test]
fn a_keyword_fires_once_per_refractory_period_after_smoothing() {
    let cfg = DetectionConfig { default_threshold: 0.9, smoothing_frames: 5, refractory_s: 1.0, ..Default::default() };
    let mut d = Detector::new(labels(), cfg, 0.01);
    let mut events = Vec::new();
    for t in 0..300 {
        // 'yes' is strong for frames 100..250 only.
        let z = if (100..250).contains(&t) { logits_for(0, 12.0) } else { logits_for(2, 12.0) };
        events.extend(d.push(&z));
    }
    // Smoothing delays the first crossing by a few frames; the refractory time (100 frames)
    // allows exactly one more event while 'yes' stays strong.
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].keyword, "yes");
    assert!(events[0].time > 1.0 && events[0].time < 1.06, "{}", events[0].time);
    assert!(events[1].time >= events[0].time + 1.0);
    assert!(events[0].score >= 0.9);
}

#[test]
fn per_keyword_thresholds_apply() {
    let mut cfg = DetectionConfig { smoothing_frames: 1, ..Default::default() };
    cfg.thresholds.insert("no".into(), 0.99);
    let mut d = Detector::new(labels(), cfg, 0.01);
    // p(no) = e^4 / (e^4 + 3) ~ 0.948: above the default 0.8, below no's 0.99.
    for _ in 0..10 {
        assert!(d.push(&logits_for(1, 4.0)).is_none());
    }
    assert_eq!(d.push(&logits_for(0, 4.0)).map(|e| e.keyword), Some("yes".to_string()));
}

#[test]
fn a_keyword_reaching_the_reseed_level_flags_the_end_of_its_refractory_time_once() {
    // p(yes) = e^4 / (e^4 + 3) ~ 0.948 on frame 10 only: over the reseed level (0.9), under
    // the threshold (0.99), so nothing is detected, yet the restart is due 50 frames later.
    let cfg = DetectionConfig { default_threshold: 0.99, smoothing_frames: 1, refractory_s: 0.5, reseed_level: 0.9, ..Default::default() };
    let mut d = Detector::new(labels(), cfg.clone(), 0.01);
    let mut flagged = Vec::new();
    for t in 0..200usize {
        let z = if t == 10 { logits_for(0, 4.0) } else { logits_for(2, 12.0) };
        assert!(d.push(&z).is_none());
        if d.refractory_ends_next() {
            flagged.push(t);
        }
    }
    // Frames 11..=59 are the 50 after it, so frame 59 is the last before the restart.
    assert_eq!(flagged, vec![59]);
    // Under the level (p ~ 0.87), or with the level at 0, nothing is flagged, detected or not.
    for (level, strength, threshold) in [(0.9, 3.0, 0.99), (0.0, 12.0, 0.9)] {
        let mut d = Detector::new(labels(), DetectionConfig { reseed_level: level, default_threshold: threshold, ..cfg.clone() }, 0.01);
        for t in 0..200usize {
            d.push(&if t == 10 { logits_for(0, strength) } else { logits_for(2, 12.0) });
            assert!(!d.refractory_ends_next(), "level {level}, frame {t}");
        }
    }
    // With no refractory time the flag comes on the frame the keyword reached the level.
    let mut d = Detector::new(labels(), DetectionConfig { refractory_s: 0.0, ..cfg }, 0.01);
    d.push(&logits_for(0, 4.0));
    assert!(d.refractory_ends_next());
    d.push(&logits_for(2, 12.0));
    assert!(!d.refractory_ends_next());
}

#[test]
fn a_reseed_level_outside_zero_to_one_is_rejected() {
    for level in [-0.1, 1.5, f32::NAN] {
        let cfg = DetectionConfig { reseed_level: level, ..Default::default() };
        assert!(cfg.validate(&labels()).is_err(), "reseed_level {level} accepted");
    }
}

#[test]
fn the_pipeline_restarts_its_front_end_a_refractory_time_after_a_keyword_reaches_the_level() {
    // A level this low is reached on the first frame, so the 0.3 s refractory time ends on
    // frame 29: with the restart on, the features are the same up to there and differ from
    // frame 30, the first computed by the restarted smoother. The threshold (1.0) lets
    // nothing fire: the restart does not need a detection.
    let mut m = common::small_model(3);
    m.card.frontend.log_floor = 1e-12;
    m.card.frontend.compression = Compression::Pcen(Default::default());
    m.card.detection = DetectionConfig { default_threshold: 1.0, smoothing_frames: 1, refractory_s: 0.3, ..Default::default() };
    let audio = spikeword::audio::load_resampled(&common::asset("yes_0cb74144.flac"), 16_000).unwrap();
    let run = |level: Option<f32>| {
        let mut p = Pipeline::new(&m);
        if let Some(l) = level {
            p.detector.set_reseed_level(l);
        }
        let mut frames = Vec::new();
        p.push(&audio, |r| {
            assert!(r.detection.is_none());
            frames.push(r.features.to_vec());
        });
        frames
    };
    let plain = run(None);
    let restarted = run(Some(1e-6));
    assert_eq!(plain[..30], restarted[..30]);
    assert_ne!(plain[30], restarted[30]);
    assert_eq!(run(Some(0.0)), plain, "level 0 restarts nothing");
}
