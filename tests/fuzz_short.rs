//! A short fuzz campaign per target (20 s each, both at once, fixed seed): the long campaign's
//! numbers are in the README; this keeps every change to the decode boundary and the model
//! loader under fire. Any crash fails the test and leaves its input in the output folder.

use serde_json::Value;
use std::process::Command;

fn campaign(target: &'static str, out: std::path::PathBuf) -> std::thread::JoinHandle<(bool, String, Value)> {
    std::thread::spawn(move || {
        let o = Command::new(env!("CARGO_BIN_EXE_spikeword-fuzz"))
            .args(["run", "--target", target, "--seconds", "20", "--seed", "10"])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let summary = std::fs::read_to_string(out.join(format!("summary-{target}.json"))).unwrap_or_default();
        (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string(), serde_json::from_str(&summary).unwrap_or(Value::Null))
    })
}

#[test]
fn twenty_seconds_per_target_find_nothing() {
    // Kept after the run, so a failure leaves the crashing inputs to look at.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-short");
    let _ = std::fs::remove_dir_all(&dir);
    let runs = [("decode", campaign("decode", dir.join("decode"))), ("model", campaign("model", dir.join("model")))];
    for (target, h) in runs {
        let (ok, stderr, s) = h.join().unwrap();
        assert!(ok, "{target}: crashes found (inputs kept in {}): {s}\n{stderr}", dir.display());
        assert!(s["executions"].as_u64().unwrap() > 100, "{target}: {s}");
        assert_eq!(s["crashes"].as_array().map(|c| c.len()), Some(0), "{target}: {s}");
        assert_eq!(s["mutator_panics"], 0, "{target}: {s}");
        // Loadable inputs are reached, not only rejections.
        assert!(s["outcomes"]["ok"].as_u64().unwrap_or(0) > 0, "{target}: {s}");
    }
}
