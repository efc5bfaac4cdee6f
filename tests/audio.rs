mod common;

use common::asset;
use spikeword::audio::{decode_file, load_resampled, resample, AudioError};

#[test]
fn every_format_decodes_to_the_same_sound() {
    let reference = load_resampled(&asset("yes_0cb74144.flac"), 16_000).unwrap();
    assert_eq!(reference.len(), 16_000);
    for name in ["yes_44k_stereo.wav", "yes_0cb74144.ogg", "yes_0cb74144.mp3"] {
        let x = load_resampled(&asset(name), 16_000).unwrap();
        // MP3 pads to whole 1152-sample frames at the source rate, so lengths agree only
        // within a frame or two; loudness must agree.
        assert!((x.len() as i64 - 16_000).abs() <= 2 * 1152, "{name}: {} samples", x.len());
        let e = |v: &[f32]| (v.iter().map(|s| s * s).sum::<f32>() / v.len() as f32).sqrt();
        let ratio = e(&x) / e(&reference);
        assert!((0.8..1.25).contains(&ratio), "{name}: rms ratio {ratio}");
    }
    let stereo = decode_file(&asset("yes_44k_stereo.wav")).unwrap();
    assert_eq!(stereo.sample_rate, 44_100);
}

#[test]
fn resampling_preserves_a_tone() {
    let tone: Vec<f32> = (0..44_100).map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin()).collect();
    let y = resample(&tone, 44_100, 16_000).unwrap();
    assert_eq!(y.len(), 16_000);
    // Aligned: the resampled signal matches the analytic tone at 16 kHz.
    let err: f32 = y[1000..15000]
        .iter()
        .enumerate()
        .map(|(i, &v)| (v - (2.0 * std::f32::consts::PI * 440.0 * (i + 1000) as f32 / 16_000.0).sin()).abs())
        .fold(0.0, f32::max);
    assert!(err < 0.02, "max error {err}");
}

#[test]
fn unreadable_empty_and_corrupt_files_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wav");
    assert!(matches!(decode_file(&missing), Err(AudioError::Io { .. })));
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(decode_file(&empty).is_err());
    let garbage = dir.path().join("garbage.flac");
    std::fs::write(&garbage, (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    let e = decode_file(&garbage).unwrap_err();
    assert!(e.to_string().contains("garbage.flac"), "{e}");
    // A valid header with no samples.
    let header_only = dir.path().join("silent.wav");
    spikeword::audio::write_wav(&header_only, &[], 16_000).unwrap();
    assert!(matches!(decode_file(&header_only), Err(AudioError::Empty { .. })));
}
