//! Every input the fuzz campaign found (and the hand-made files of issue 10), kept under
//! tests/fuzz_regressions/<target>/ (see its README.md): each runs through the fuzz target
//! it broke (no panic, no over-allocation, no broken invariant) and through the command a
//! user would run (an error that names the file, never a panic).

mod common;

use common::{small_model, spikeword};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions").join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    assert!(!v.is_empty(), "no regression files in {}", dir.display());
    v
}

fn replay(target: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_spikeword-fuzz")).args(["replay", "--target", target]).args(files(target)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for l in &lines {
        let status = l["status"].as_str().unwrap();
        // "caught": a decoder panic turned into an error at the decode boundary.
        assert!(matches!(status, "ok" | "error" | "caught"), "{target}: {l}");
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines.len(), files(target).len());
    lines
}

#[test]
fn decode_regressions_end_in_clean_outcomes() {
    replay("decode");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    small_model(3).save(&model).unwrap();
    for f in files("decode") {
        let out = spikeword().args(["listen", "--input"]).arg(&f).arg("--model").arg(&model).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{}: {err}", f.display());
        match out.status.code() {
            Some(0) => {}
            Some(1) => assert!(err.contains(&f.display().to_string()), "the error must name the file: {err}"),
            other => panic!("{}: exit {other:?}: {err}", f.display()),
        }
    }
}

#[test]
fn model_regressions_end_in_clean_outcomes() {
    replay("model");
    for f in files("model") {
        let out = spikeword().args(["info", "--model"]).arg(&f).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: a broken model must not load: {err}", f.display());
        assert!(err.contains(&f.display().to_string()) && !err.contains("panicked"), "{err}");
    }
}
