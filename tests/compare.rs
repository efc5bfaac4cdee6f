//! `spikeword compare` on reports whose outcomes are known clip by clip.

mod common;

use common::spikeword;
use serde_json::json;
use std::path::Path;

/// An eval-stream report of `speakers` x 2 clips; `caught(speaker, clip)` gives each clean
/// outcome and the 10 dB one is its opposite.
fn report(path: &Path, part: &str, speakers: usize, caught: impl Fn(usize, usize) -> bool) {
    let clips: Vec<_> = (0..speakers)
        .flat_map(|s| (0..2).map(move |k| (s, k)))
        .map(|(s, k)| json!({ "file": format!("data/yes/{s:08x}_nohash_{k}.flac"), "caught": caught(s, k), "caught_noisy": [!caught(s, k)] }))
        .collect();
    let r = json!({ "part": part, "snr_db": [10.0], "results": [{ "mode": "Spiking", "clips": clips }] });
    std::fs::write(path, r.to_string()).unwrap();
}

/// The same clips for the spiking network (`spiking`) and its twin (`dense`).
fn report_with_twin(path: &Path, speakers: usize, spiking: impl Fn(usize) -> bool, dense: impl Fn(usize) -> bool) {
    let clips = |hit: &dyn Fn(usize) -> bool| -> Vec<serde_json::Value> {
        (0..speakers).map(|s| json!({ "file": format!("data/no/{s:08x}_nohash_0.flac"), "caught": hit(s), "caught_noisy": [] })).collect()
    };
    let r = json!({ "part": "test", "snr_db": [], "results": [{ "mode": "Spiking", "clips": clips(&spiking) }, { "mode": "Dense", "clips": clips(&dense) }] });
    std::fs::write(path, r.to_string()).unwrap();
}

fn run(a: &Path, b: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = spikeword().arg("compare").arg(a).arg(b).args(extra).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_lead_shared_by_most_speakers_is_told_apart_and_its_opposite_too() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    // A catches every clip; B only those of the first 2 of 8 speakers.
    report(&a, "dev", 8, |_, _| true);
    report(&b, "dev", 8, |s, _| s < 2);
    let (ok, text, err) = run(&a, &b, &[]);
    assert!(ok, "{err}");
    let clean = text.lines().find(|l| l.starts_with("clean")).expect(&text);
    assert!(clean.contains("A 100.0%  B 25.0%  A - B +75.0 points"), "{clean}");
    assert!(clean.contains("A ahead") && clean.contains("caught by A only 12, by B only 0"), "{clean}");
    // At 10 dB every outcome is flipped: B leads there by as much.
    let noisy = text.lines().find(|l| l.starts_with("10 dB")).expect(&text);
    assert!(noisy.contains("A - B -75.0 points") && noisy.contains("B ahead"), "{noisy}");
    // The JSON carries the same figures, the interval inside the possible range.
    let (ok, text, _) = run(&a, &b, &["--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0]["speakers"], 8);
    let (d, lo, hi) = (v[0]["difference"].as_f64().unwrap(), v[0]["interval"]["low"].as_f64().unwrap(), v[0]["interval"]["high"].as_f64().unwrap());
    assert!((d - 0.75).abs() < 1e-9 && 0.0 < lo && lo <= d && d <= hi && hi <= 1.0, "{v}");
}

#[test]
fn a_difference_within_the_speakers_spread_is_not_called() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    // Of 6 speakers, A catches one more clip than B in the first and one fewer in the second.
    report(&a, "dev", 6, |s, k| !(s == 1 && k == 0));
    report(&b, "dev", 6, |s, k| !(s == 0 && k == 0));
    let (ok, text, err) = run(&a, &b, &[]);
    assert!(ok, "{err}");
    let clean = text.lines().find(|l| l.starts_with("clean")).expect(&text);
    assert!(clean.contains("A - B +0.0 points") && clean.contains("not told apart"), "{clean}");
}

#[test]
fn reports_that_cannot_be_paired_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a.json"), dir.path().join("b.json"), dir.path().join("c.json"));
    report(&a, "dev", 4, |_, _| true);
    report(&b, "dev", 5, |_, _| true);
    report(&c, "test", 4, |_, _| true);
    let (ok, _, err) = run(&a, &b, &[]);
    assert!(!ok && err.contains("different clips (8 and 10, 8 in both)"), "{err}");
    let (ok, _, err) = run(&a, &c, &[]);
    assert!(!ok && err.contains("different parts (Dev and Test)"), "{err}");
    let (ok, _, err) = run(&a, &a, &["--twin"]);
    assert!(!ok && err.contains("no Dense results"), "{err}");
    let not_json = dir.path().join("model.safetensors");
    std::fs::write(&not_json, b"\x08\0\0\0\0\0\0\0{}      ").unwrap();
    let (ok, _, err) = run(&not_json, &a, &[]);
    assert!(!ok && err.contains("is not an eval-stream report"), "{err}");
    let (ok, _, err) = run(&dir.path().join("missing.json"), &a, &[]);
    assert!(!ok && err.contains("cannot read") && err.contains("missing.json"), "{err}");
}

#[test]
fn one_report_against_itself_gives_the_spiking_network_s_gap_to_its_twin() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r.json");
    // 10 speakers: the twin catches all, the spiking network misses speakers 0-3.
    report_with_twin(&r, 10, |s| s >= 4, |_| true);
    let (ok, text, err) = run(&r, &r, &["--b-twin"]);
    assert!(ok, "{err}");
    assert!(text.starts_with(&format!("A {} (Spiking) against B {} (Dense)", r.display(), r.display())), "{text}");
    let clean = text.lines().find(|l| l.starts_with("clean")).expect(&text);
    assert!(clean.contains("A 60.0%  B 100.0%  A - B -40.0 points") && clean.contains("B ahead"), "{clean}");
    let (ok, text, _) = run(&r, &r, &["--twin"]);
    assert!(ok && text.lines().any(|l| l.starts_with("clean") && l.contains("A - B +0.0 points")), "{text}");
    let (ok, _, err) = run(&r, &r, &["--twin", "--b-twin"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}
