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
fn the_refractory_end_is_flagged_once_on_its_last_quiet_frame() {
    let cfg = DetectionConfig { default_threshold: 0.9, smoothing_frames: 1, refractory_s: 0.5, ..Default::default() };
    let mut d = Detector::new(labels(), cfg, 0.01);
    let mut fired_at = None;
    let mut flagged = Vec::new();
    for t in 0..200usize {
        let z = if t == 10 { logits_for(0, 12.0) } else { logits_for(2, 12.0) };
        if d.push(&z).is_some() {
            fired_at = Some(t);
        }
        if d.refractory_ends_next() {
            flagged.push(t);
        }
    }
    // Fired on frame 10; frames 11..=59 are quiet (50 frames from the detection), so frame
    // 59 is the last one before a keyword may fire again.
    assert_eq!(fired_at, Some(10));
    assert_eq!(flagged, vec![59]);
    // With no refractory time the flag comes on the detection's own frame.
    let mut d = Detector::new(labels(), DetectionConfig { smoothing_frames: 1, refractory_s: 0.0, ..Default::default() }, 0.01);
    assert!(d.push(&logits_for(0, 12.0)).is_some());
    assert!(d.refractory_ends_next());
    d.push(&logits_for(2, 12.0));
    assert!(!d.refractory_ends_next());
}

#[test]
fn the_pipeline_restarts_its_front_end_where_a_detections_refractory_time_ends() {
    // A threshold this low fires on the first frame, so the 0.3 s refractory time ends on
    // frame 29: with the restart on, the features are the same up to there and differ from
    // frame 30, the first computed by the restarted smoother; with it off nothing changes.
    let mut m = common::small_model(3);
    m.card.frontend.log_floor = 1e-12;
    m.card.frontend.compression = Compression::Pcen(Default::default());
    m.card.detection = DetectionConfig { default_threshold: 1e-6, smoothing_frames: 1, refractory_s: 0.3, ..Default::default() };
    let audio = spikeword::audio::load_resampled(&common::asset("yes_0cb74144.flac"), 16_000).unwrap();
    let run = |reseed: bool| {
        let mut p = Pipeline::new(&m);
        p.detector.set_reseed_after_detection(reseed);
        let (mut frames, mut fired) = (Vec::new(), Vec::new());
        p.push(&audio, |r| {
            frames.push(r.features.to_vec());
            if r.detection.is_some() {
                fired.push(r.index);
            }
        });
        (frames, fired)
    };
    let (plain, fired) = run(false);
    let (restarted, _) = run(true);
    assert_eq!(fired.first(), Some(&0));
    assert_eq!(plain[..30], restarted[..30]);
    assert_ne!(plain[30], restarted[30]);
    let mut again = Pipeline::new(&m);
    let mut frames = Vec::new();
    again.push(&audio, |r| frames.push(r.features.to_vec()));
    assert_eq!(frames, plain, "the restart is off unless the model or the caller turns it on");
}
