use spikeword::detect::{DetectionConfig, Detector};

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
