mod common;

use common::{asset, small_model};
use spikeword::eval::{evaluate_clips, labelled_clips, simulate};

fn labels() -> Vec<String> {
    small_model(1).card.labels
}

#[test]
fn a_folder_without_audio_or_with_an_unknown_class_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = labelled_clips(dir.path(), &labels(), false).unwrap_err();
    assert!(e.to_string().contains("no audio files"), "{e}");
    std::fs::create_dir(dir.path().join("banana")).unwrap();
    let e = labelled_clips(dir.path(), &labels(), false).unwrap_err();
    assert!(e.to_string().contains("'banana' is not one the model knows"), "{e}");
}

#[test]
fn clip_evaluation_counts_every_clip_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    for (class, file) in [("yes", "yes_0cb74144.flac"), ("no", "no_0cb74144.flac"), ("stop", "stop_0fa1e7a9.flac")] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        std::fs::copy(asset(file), dir.path().join(class).join(file)).unwrap();
    }
    let set = labelled_clips(dir.path(), &labels(), false).unwrap();
    assert_eq!(set.clips.len(), 3);
    let r = evaluate_clips(&small_model(3), &set).unwrap();
    assert_eq!(r.clips, 3);
    assert_eq!(r.confusion.iter().flatten().sum::<u32>(), 3);
    assert_eq!(r.confusion_dense.iter().flatten().sum::<u32>(), 3);
    assert!((0.0..=1.0).contains(&r.accuracy));
    // Each clip is scored from its start to the end of the silence after it (1 s + 1 s).
    assert_eq!(r.energy.frames, 600);
    assert!(r.energy.bits_per_activity > 0.0);
    assert!(r.energy.synaptic_ops_over_dense_macs > 0.0 && r.energy.synaptic_ops_over_dense_macs < 1.0);
    // The dense twin multiplies every connection.
    assert!((r.energy_dense.synaptic_ops_over_dense_macs - 1.0).abs() < 1e-9);
    assert!(r.energy.total_energy_uj_per_second < r.energy_dense.total_energy_uj_per_second);
}

/// A folder with one copy of the "yes" clip per made-up speaker id (Speech Commands naming).
fn yes_clips_of_speakers(n: u64) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("yes")).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("{:08x}", i * 2654435761u64 % 0xffff_ffff)).collect();
    for id in &ids {
        std::fs::copy(asset("yes_0cb74144.flac"), dir.path().join("yes").join(format!("{id}_nohash_0.flac"))).unwrap();
    }
    (dir, ids)
}

#[test]
fn held_out_filter_keeps_only_speakers_training_never_saw() {
    use spikeword::dataset::is_held_out_speaker;
    // Speaker ids on both sides of the split.
    let (dir, ids) = yes_clips_of_speakers(40);
    let held: usize = ids.iter().filter(|i| is_held_out_speaker(i)).count();
    assert!(held > 0 && held < ids.len());
    let set = labelled_clips(dir.path(), &labels(), true).unwrap();
    assert_eq!(set.clips.len(), held);
    assert_eq!(set.excluded, ids.len() - held);
}

#[test]
fn threshold_sweep_follows_the_detector_rule() {
    // Keyword 0 is likely at frames 10..20 and 150..160.
    let trace: Vec<(u16, f32)> = (0..300).map(|i| (0u16, if (10..20).contains(&i) || (150..160).contains(&i) { 0.9 } else { 0.2 })).collect();
    assert_eq!(simulate(&trace, 0.5, 100).iter().map(|e| e.0).collect::<Vec<_>>(), vec![10, 150]);
    assert_eq!(simulate(&trace, 0.5, 200).len(), 1);
    assert!(simulate(&trace, 0.95, 100).is_empty());
    assert_eq!(simulate(&trace, 0.1, 100).len(), 3);
}

#[test]
fn clips_of_every_speaker_are_also_scored_by_part_of_the_split() {
    use spikeword::corpus::{Part, Split};
    let (dir, ids) = yes_clips_of_speakers(12);
    let parts: Vec<Part> = ids.iter().map(|i| Split::default().part_of(i)).collect();
    assert!(parts.contains(&Part::Test) && parts.contains(&Part::Train), "the ids span the split: {parts:?}");
    let set = labelled_clips(dir.path(), &labels(), false).unwrap();
    let r = evaluate_clips(&small_model(3), &set).unwrap();
    let total: usize = r.by_part.iter().map(|p| p.clips).sum();
    assert_eq!(total, ids.len());
    for p in &r.by_part {
        assert_eq!(p.clips, parts.iter().filter(|q| **q == p.part).count(), "{:?}", p.part);
        assert!((0.0..=1.0).contains(&p.accuracy) && (0.0..=1.0).contains(&p.accuracy_dense));
    }
    // The same clips, one copy per speaker, all right or all wrong: each part agrees with the whole.
    for p in &r.by_part {
        assert!((p.accuracy - r.accuracy).abs() < 1e-9);
    }
    // Held-out speakers only: one part, no breakdown.
    let held = labelled_clips(dir.path(), &labels(), true).unwrap();
    assert!(evaluate_clips(&small_model(3), &held).unwrap().by_part.is_empty());
}
