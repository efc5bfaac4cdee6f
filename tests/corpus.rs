//! The corpus split (train / dev / test by speaker or file) and the streaming benchmark on a
//! small data folder laid out like `../shared/data`, built from the real clips in `assets/`.

mod common;

use common::{asset, small_model, spikeword};
use spikeword::corpus::{self, NegativeKind, Part, Split};
use spikeword::eval::stream::{benchmark, BackToBackReset, BenchmarkOptions};
use std::path::Path;

/// The part of an id under the default split.
fn part_of(id: &str) -> Part {
    Split::default().part_of(id)
}

/// Speaker ids that fall in the wanted part.
fn speakers(part: Part, n: usize) -> Vec<String> {
    (0u64..).map(|i| format!("{:08x}", i.wrapping_mul(2654435761) % 0xffff_ffff)).filter(|s| part_of(s) == part).take(n).collect()
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(asset(from), to).unwrap();
}

fn data_folder(root: &Path) {
    let sc = root.join("speech_commands_v2_test_a");
    for part in [Part::Train, Part::Dev, Part::Test] {
        for s in speakers(part, 2) {
            copy("yes_0cb74144.flac", &sc.join("yes").join(format!("{s}_nohash_0.flac")));
            copy("stop_0fa1e7a9.flac", &sc.join("stop").join(format!("{s}_nohash_0.flac")));
            copy("unknown_backward_0cb74144.flac", &sc.join("_unknown_").join(format!("backward_{s}_nohash_0.flac")));
        }
    }
    for i in 0..6 {
        copy("go_0487ba9b.flac", &root.join("wake_words_a").join("jarvis").join(format!("clip{i}.flac")));
    }
    copy("noise_pink_3s.flac", &root.join("noise").join("pink.flac"));
}

#[test]
fn every_source_is_split_three_ways_and_the_parts_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    assert_eq!(c.keywords.len(), 12);
    for part in [Part::Train, Part::Dev, Part::Test] {
        assert_eq!(c.keywords_in(part, None).count(), 4, "{part:?}");
    }
    // A speaker is in exactly one part, whatever the word.
    for k in &c.keywords {
        assert_eq!(k.part, part_of(&k.speaker));
    }
    // Speech Commands' test part is the same 35% of speakers it always was.
    for k in c.keywords_in(Part::Test, None) {
        assert!(spikeword::dataset::is_held_out_speaker(&k.speaker));
    }
    assert_eq!(c.unknown.len(), 6);
    let words = c.negatives.iter().filter(|n| n.kind == NegativeKind::IsolatedWords).count();
    assert_eq!(words, 6 + 6, "Speech Commands' other words and the wake words are isolated-word negatives");
    assert_eq!(c.noise.len(), 1);
    // Noise is split in time, and the three spans tile the recording.
    let (a, b) = corpus::noise_span(Part::Train, 1000);
    let (c2, d) = corpus::noise_span(Part::Dev, 1000);
    let (e, f) = corpus::noise_span(Part::Test, 1000);
    assert_eq!((a, b, c2, d, e, f), (0, 700, 700, 800, 800, 1000));
}

#[test]
fn the_streaming_benchmark_counts_every_trial_and_hour() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    let model = small_model(5);
    let opt = BenchmarkOptions { part: Part::Test, snr_db: vec![10.0], threshold: Some(0.5), dense_twin: true, limit: None, seed: 1, ..Default::default() };
    let r = benchmark(&model, &c, &opt).unwrap();
    assert_eq!(r.results.len(), 2, "spiking and its twin");
    let negative_files = c.negatives.iter().filter(|n| n.part == Part::Test).count();
    let seconds: f64 =
        c.negatives.iter().filter(|n| n.part == Part::Test).map(|n| spikeword::audio::load_resampled(&n.path, 16_000).unwrap().len() as f64 / 16_000.0).sum();
    for m in &r.results {
        assert_eq!(m.clean.clips, 4);
        assert_eq!(m.noisy[0].1.clips, 4);
        // The same clips once more, back to back in one stream: every clip is a trial, with
        // its own keyword.
        assert_eq!(m.back_to_back.clips, 4);
        assert!(m.back_to_back.caught <= 4);
        let clips_per_keyword = |r: &spikeword::eval::score::Recall| r.per_keyword.iter().map(|(k, (n, _))| (k.clone(), *n)).collect::<Vec<_>>();
        assert_eq!(clips_per_keyword(&m.back_to_back), clips_per_keyword(&m.clean));
        assert_eq!(m.negatives.iter().map(|n| n.files).sum::<usize>(), negative_files);
        assert!((m.negative_hours * 3600.0 - seconds).abs() < 0.05, "{} h vs {seconds} s", m.negative_hours);
        assert_eq!(m.false_alarms, m.negatives.iter().map(|n| n.false_alarms).sum::<usize>());
        // The sweep at the benchmark's own threshold gives the same figures.
        let at = m.det.iter().find(|d| (d.threshold - 0.5).abs() < 1e-6).unwrap();
        assert!((at.recall_clean - m.clean.recall).abs() < 1e-9);
        assert!((at.false_alarms_per_hour - m.false_alarms_per_hour).abs() < 1e-6);
        // The ceiling is the sweep's best clean recall, at the highest threshold reaching it.
        let top = m.ceiling().unwrap();
        assert!(m.det.iter().all(|d| d.recall_clean < top.recall_clean || (d.recall_clean == top.recall_clean && d.threshold <= top.threshold)));
        assert!(top.recall_clean >= m.clean.recall);
    }
    // Without the back-to-back streams (checkpoint scores, calibration) the fresh figures are
    // the same and no back-to-back figure is made up.
    let fresh_only = benchmark(&model, &c, &BenchmarkOptions { back_to_back: None, ..opt.clone() }).unwrap();
    // ...nor a reset named for a stream that did not run (the report's JSON says null).
    assert_eq!(fresh_only.back_to_back_reset, None);
    assert_eq!(r.back_to_back_reset, opt.back_to_back);
    assert!(serde_json::to_value(&fresh_only).unwrap()["back_to_back_reset"].is_null());
    for (m, f) in r.results.iter().zip(&fresh_only.results) {
        assert_eq!(f.back_to_back.clips, 0);
        assert!(f.back_to_back_noisy.is_empty());
        assert_eq!((f.clean.caught, f.noisy[0].1.caught, f.false_alarms), (m.clean.caught, m.noisy[0].1.caught, m.false_alarms));
    }
}

#[test]
fn back_to_back_with_everything_reset_is_the_fresh_trials_again() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    // The shipped model, so that real clips are caught at some thresholds and missed at others.
    let model = spikeword::model::Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/spikeword-kws12.safetensors")).unwrap();
    let (mut caught_somewhere, mut caught_in_noise_somewhere) = (0, 0);
    for threshold in [0.5, 0.9, 0.99, 0.999] {
        let run = |reset| {
            let opt = BenchmarkOptions {
                snr_db: vec![10.0],
                threshold: Some(threshold),
                dense_twin: false,
                seed: 1,
                back_to_back: Some(reset),
                ..Default::default()
            };
            benchmark(&model, &c, &opt).unwrap().results.remove(0)
        };
        // Resetting the whole pipeline before each clip makes each back-to-back trial the
        // clip's own fresh trial, caught or missed alike, in silence and in noise (each clip
        // hears its fresh trial's noise).
        let all = run(BackToBackReset::All);
        assert_eq!(all.back_to_back.caught, all.clean.caught, "threshold {threshold}");
        assert_eq!(all.back_to_back.per_keyword, all.clean.per_keyword);
        assert_eq!(all.back_to_back_noisy.len(), 1);
        assert_eq!(all.back_to_back_noisy[0].0, 10.0);
        assert_eq!(all.back_to_back_noisy[0].1.caught, all.noisy[0].1.caught, "threshold {threshold}, 10 dB");
        assert_eq!(all.back_to_back_noisy[0].1.per_keyword, all.noisy[0].1.per_keyword);
        caught_somewhere += all.clean.caught;
        caught_in_noise_somewhere += all.noisy[0].1.caught;
        // Each clean clip's outcome agrees with the recall: a clip is caught only where its
        // own keyword's peak reached the threshold, and its file is in its keyword's folder.
        assert_eq!(all.clips.len(), all.clean.clips);
        assert_eq!(all.clips.iter().filter(|o| o.caught).count(), all.clean.caught);
        for o in &all.clips {
            assert_eq!(o.threshold, threshold);
            assert!(!o.caught || o.peak >= threshold, "{o:?} at {threshold}");
            assert!(o.peak < threshold || o.caught || o.rival.is_some(), "only a rival's refractory time hides a peak above threshold: {o:?}");
            assert_eq!(o.file.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str()), Some(o.keyword.as_str()));
            assert!(o.level_dbfs < 0.0 && o.level_dbfs > -90.0, "{o:?}");
        }
        // The partial resets run the same clips; the fresh trials do not depend on them.
        for reset in [BackToBackReset::None, BackToBackReset::FrontEnd, BackToBackReset::Network] {
            let m = run(reset);
            assert_eq!(m.back_to_back.clips, all.clean.clips);
            assert_eq!(m.back_to_back_noisy[0].1.clips, all.clean.clips);
            assert_eq!(m.clean.caught, all.clean.caught);
            assert_eq!(m.noisy[0].1.caught, all.noisy[0].1.caught);
        }
    }
    assert!(caught_somewhere > 0, "no threshold caught a clip: the comparison above was empty");
    assert!(caught_in_noise_somewhere > 0, "no threshold caught a clip in noise: the noisy comparison above was empty");
}

#[test]
fn every_false_alarm_is_located_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    // Threshold 0: the detector fires once per refractory time on every negative file.
    let opt = BenchmarkOptions { part: Part::Test, snr_db: vec![], threshold: Some(0.0), dense_twin: false, limit: None, seed: 1, ..Default::default() };
    let r = benchmark(&small_model(5), &c, &opt).unwrap();
    let m = &r.results[0];
    assert!(m.false_alarms > 0);
    let duration = |p: &Path| spikeword::audio::load_resampled(p, 16_000).unwrap().len() as f64 / 16_000.0;
    for n in &m.negatives {
        assert_eq!(n.events.len(), n.false_alarms, "{}", n.source);
        for e in &n.events {
            let f = c.negatives.iter().find(|f| f.path == e.file).expect("a negative file");
            assert_eq!(f.part, Part::Test);
            assert!(e.at_s >= 0.0 && e.at_s < duration(&e.file), "{} s in {}", e.at_s, e.file.display());
            assert!(spikeword::detect::is_keyword(&e.keyword));
        }
        // Consecutive alarms in one file are at least the refractory time apart.
        for w in n.events.windows(2).filter(|w| w[0].file == w[1].file) {
            assert!(w[1].at_s - w[0].at_s >= 0.99, "{:?}", w);
        }
    }
}

#[test]
fn calibration_negatives_are_never_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    for i in 6..60 {
        copy("go_0487ba9b.flac", &dir.path().join("wake_words_a").join("jarvis").join(format!("clip{i}.flac")));
    }
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    let in_part = |p: Part| c.negatives.iter().filter(|n| n.part == p && n.source == "wake_words").count();
    let (train, calib) = (in_part(Part::Train), in_part(Part::Calib));
    assert!(calib > 0 && train > calib, "train {train}, calib {calib}");
    // Calibration takes from training only: test and dev keep exactly the files they had.
    for n in &c.negatives {
        let id = n.path.file_stem().unwrap().to_str().unwrap();
        let before = if n.source == "wake_words" { part_of(id) } else { n.part };
        match n.part {
            Part::Calib => assert_eq!(before, Part::Train),
            p => assert_eq!(p, before),
        }
    }
    assert_eq!(c.keywords_in(Part::Calib, None).count(), 0, "no keyword clip is a calibration negative");
    // The training pool holds the training negatives and none of the calibration ones.
    let (pool, _) = spikeword::train::data::load_pool(&c, None, None).unwrap();
    let train_words = c.negatives.iter().filter(|n| n.part == Part::Train).count();
    assert_eq!(pool.words.len(), train_words);
    // Thresholds can be set on the calibration part alone (it has no keyword clips).
    let model = small_model(5);
    let cal = spikeword::eval::calibrate::calibrate(&model, &c, &[Part::Calib], 0.1, spikeword::eval::calibrate::Method::Global, None).unwrap();
    let seconds = calib as f64 * load_seconds("go_0487ba9b.flac");
    assert!((cal.negative_hours * 3600.0 - seconds).abs() < 0.05 * seconds, "{} h calibrated on, {seconds} s of calibration audio", cal.negative_hours);
    // One threshold for all keywords becomes the card's default; per keyword, overrides.
    let mut m = small_model(5);
    spikeword::eval::calibrate::apply(&mut m, &cal, 0.1);
    let t = cal.thresholds["yes"];
    assert!(cal.thresholds.values().all(|&v| v == t));
    assert_eq!(m.card.detection.default_threshold, t);
    assert!(m.card.detection.thresholds.is_empty());
    let per = spikeword::eval::calibrate::calibrate(&model, &c, &[Part::Calib], 0.1, spikeword::eval::calibrate::Method::PerKeyword, None).unwrap();
    spikeword::eval::calibrate::apply(&mut m, &per, 0.1);
    assert_eq!(m.card.detection.thresholds, per.thresholds);
}

fn load_seconds(name: &str) -> f64 {
    spikeword::audio::load_resampled(&asset(name), 16_000).unwrap().len() as f64 / 16_000.0
}

#[test]
fn a_model_records_its_split_and_a_larger_dev_holds_the_smaller() {
    // A trained model's card names the split it was trained on, so that its dev figures are
    // taken on its own dev audio.
    let wide = Split { dev_percent: 30 };
    let cfg = spikeword::train::TrainConfig { split: wide, ..Default::default() };
    let card = spikeword::train::card(&cfg, 1.0, serde_json::Value::Null);
    assert_eq!(Split::of(&card.provenance), wide);
    // Models from before the record (r12 and r20 among them) had the default split.
    assert_eq!(Split::of(&serde_json::json!({ "train_config": {} })), Split::default());
    // Dev at 30% holds every id of dev at 15%, and more; test never moves.
    let (mut narrow_dev, mut wide_dev) = (0, 0);
    for i in 0u64..3000 {
        let id = format!("{:08x}", i.wrapping_mul(2654435761) % 0xffff_ffff);
        let (a, b) = (Split::default().part_of(&id), wide.part_of(&id));
        assert_eq!(a == Part::Test, b == Part::Test, "{id}");
        if a == Part::Dev {
            assert_eq!(b, Part::Dev, "{id}");
            narrow_dev += 1;
        }
        wide_dev += usize::from(b == Part::Dev);
    }
    assert!(narrow_dev > 0 && wide_dev > narrow_dev * 3 / 2, "{narrow_dev} {wide_dev}");
    assert!(Split { dev_percent: 100 }.validate().is_err());
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let err = corpus::load(dir.path(), Split { dev_percent: 100 }).unwrap_err().to_string();
    assert!(err.contains("dev_percent"), "{err}");
}

#[test]
fn dev_figures_count_false_alarms_on_the_dev_and_calibration_negatives_one_row_per_source() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    // Wake-word files named so that some fall in dev and some in calibration.
    let part_of_file = |name: &str| corpus::negative_part(part_of(name), name);
    let names = |part: Part| (0..).map(|i| format!("ww{i}")).filter(move |n| part_of_file(n) == part).take(2).collect::<Vec<_>>();
    for n in names(Part::Dev).into_iter().chain(names(Part::Calib)) {
        copy("unknown_backward_0cb74144.flac", &dir.path().join("wake_words_a").join("snowboy").join(format!("{n}.flac")));
    }
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    let in_part = |p: Part| c.negatives.iter().filter(|n| n.part == p && n.source == "wake_words").count();
    assert!(in_part(Part::Dev) >= 2 && in_part(Part::Calib) >= 2);
    let model = small_model(5);
    let opt = BenchmarkOptions { part: Part::Dev, snr_db: vec![], threshold: Some(0.0), dense_twin: false, limit: None, seed: 1, ..Default::default() };
    let r = benchmark(&model, &c, &opt).unwrap();
    let m = &r.results[0];
    let rows: Vec<_> = m.negatives.iter().filter(|n| n.source == "wake_words").collect();
    assert_eq!(rows.len(), 1, "the two parts' streams of one source are one row");
    assert_eq!(rows[0].files, in_part(Part::Dev) + in_part(Part::Calib));
    let all = c.negatives.iter().filter(|n| matches!(n.part, Part::Dev | Part::Calib)).count();
    assert_eq!(m.negatives.iter().map(|n| n.files).sum::<usize>(), all);
    // At threshold 0 every file fires; each false alarm is traced to a file of its own row.
    assert!(m.false_alarms > 0);
    for n in &m.negatives {
        assert_eq!(n.events.len(), n.false_alarms);
    }
    let calib_files: Vec<_> = c.negatives.iter().filter(|n| n.part == Part::Calib && n.source == "wake_words").map(|n| n.path.clone()).collect();
    assert!(rows[0].events.iter().any(|e| calib_files.contains(&e.file)), "the joined stream points into the calibration files too");
    assert!(rows[0].events.iter().all(|e| e.file.starts_with(dir.path().join("wake_words_a"))));
}

#[test]
fn eval_stream_takes_the_dev_part_from_the_model_s_own_split() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    // Speakers that train at the default split and are dev at 30%.
    let wide = Split { dev_percent: 30 };
    let moved: Vec<String> = (0u64..)
        .map(|i| format!("{:08x}", i.wrapping_mul(40503) % 0xffff_ffff))
        .filter(|s| part_of(s) == Part::Train && wide.part_of(s) == Part::Dev)
        .take(2)
        .collect();
    for s in &moved {
        copy("yes_0cb74144.flac", &dir.path().join("speech_commands_v2_test_a").join("yes").join(format!("{s}_nohash_0.flac")));
    }
    let dev_clips = |split: Split| corpus::load(dir.path(), split).unwrap().keywords_in(Part::Dev, Some("speech_commands_v2")).count();
    assert_eq!(dev_clips(wide), dev_clips(Split::default()) + moved.len());
    for (split, expected) in [(Split::default(), dev_clips(Split::default())), (wide, dev_clips(wide))] {
        let mut model = small_model(5);
        model.card.provenance = serde_json::json!({ "split": split.record() });
        let path = dir.path().join(format!("model{}.safetensors", split.dev_percent));
        model.save(&path).unwrap();
        let out = spikeword()
            .args(["eval-stream", "--part", "dev", "--snr", "10", "--no-twin", "--data"])
            .arg(dir.path())
            .arg("-m")
            .arg(&path)
            .arg("--plot")
            .arg(dir.path().join(format!("det{}.png", split.dev_percent)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("(dev: {}% of the non-test ids", split.dev_percent)), "{text}");
        let clean = text.lines().find(|l| l.starts_with("clean keyword clips")).unwrap_or_else(|| panic!("{text}"));
        assert!(
            clean.contains(&format!(" of {expected})")) || clean.contains(&format!(" of {expected}; 95% ")),
            "dev clips of the {}% split: {clean}",
            split.dev_percent
        );
        if split == wide {
            assert!(clean.contains("% by speaker)"), "{clean}");
        }
    }
    // Its report pairs with itself, clean and at 10 dB.
    let wide_json = dir.path().join("det30.json");
    let out = spikeword().arg("compare").arg(&wide_json).arg(&wide_json).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for condition in ["clean", "10 dB"] {
        let line = text.lines().find(|l| l.starts_with(condition)).unwrap_or_else(|| panic!("no {condition} line: {text}"));
        assert!(line.contains("A - B +0.0 points") && line.contains("caught by A only 0, by B only 0"), "{line}");
    }
}

#[test]
fn synthetic_words_that_sound_like_a_keyword_are_not_negatives() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let c = corpus::load(dir.path(), Split::default()).unwrap();
    let synth = dir.path().join("synth");
    let unknown = synth.join("_unknown_");
    std::fs::create_dir_all(&unknown).unwrap();
    // "know" is "no" said alone; "note" is a near miss a spotter must learn to reject.
    for (word, n) in [("know", 3), ("write", 2), ("note", 4)] {
        for i in 0..n {
            copy("go_0487ba9b.flac", &unknown.join(format!("{word}_voice{i}_nohash_0.flac")));
        }
    }
    let (without, _) = spikeword::train::data::load_pool(&c, None, None).unwrap();
    let (with, _) = spikeword::train::data::load_pool(&c, Some(&synth), None).unwrap();
    assert_eq!(with.words.len(), without.words.len() + 4, "only the 4 \"note\" clips join the negatives");
}
