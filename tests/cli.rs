mod common;

use common::{asset, small_model, spikeword};

#[test]
fn listen_prints_json_lines_with_time_keyword_score() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    // A random model with a tiny threshold fires on something: the format is what is tested.
    let mut m = small_model(4);
    m.card.detection.refractory_s = 0.2;
    m.save(&model_path).unwrap();
    let out = spikeword()
        .args(["listen", "--input"])
        .arg(asset("yes_44k_stereo.wav"))
        .arg("--model")
        .arg(&model_path)
        .args(["--threshold", "0.01"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "no detections at threshold 0.01");
    let mut last = -1.0;
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = v["time"].as_f64().unwrap();
        assert!(t > last && t <= 1.0 + 1e-9, "time {t}");
        last = t;
        let k = v["keyword"].as_str().unwrap();
        assert!(!k.starts_with('_'), "non-keyword {k} fired");
        let s = v["score"].as_f64().unwrap();
        assert!((0.01..=1.0).contains(&s));
    }
}

#[test]
fn bad_inputs_give_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bad_model = dir.path().join("bad.safetensors");
    std::fs::write(&bad_model, b"definitely not a model").unwrap();
    let out = spikeword().args(["listen", "--input"]).arg(asset("yes_0cb74144.flac")).arg("--model").arg(&bad_model).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.safetensors") && err.contains("not a valid safetensors"), "{err}");
    assert!(!err.contains("panicked"));

    let good_model = dir.path().join("m.safetensors");
    small_model(1).save(&good_model).unwrap();
    let out = spikeword().args(["listen", "--input", "/nonexistent.wav", "--model"]).arg(&good_model).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.wav"), "{err}");

    let run = dir.path().join("run");
    let out = spikeword().args(["train", "--stop-after", "0", "--out"]).arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--stop-after"), "{err}");
    assert!(!run.exists(), "a refused run wrote its folder");
}

#[test]
fn missing_default_model_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = spikeword().current_dir(dir.path()).env("SPIKEWORD_MODEL", dir.path().join("none.safetensors")).args(["info"]).output().unwrap();
    // Either the shipped model is found via the source tree, or the message explains.
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no default model found"), "{err}");
    }
    let out = spikeword().args(["info", "--model", "/nonexistent/m.safetensors"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bench_reports_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    small_model(2).save(&model_path).unwrap();
    let out = spikeword().args(["bench", "--json", "--model"]).arg(&model_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["frontend_us", "network_spiking_us", "network_dense_us", "detection_us", "whole_path_spiking_us"] {
        assert!(v[k]["median"].as_f64().unwrap() > 0.0, "{k}");
        assert!(v[k]["p99"].as_f64().unwrap() >= v[k]["median"].as_f64().unwrap(), "{k}");
    }
    // The assets mix: 100 frames per second of audio.
    let frames = v["frames"].as_u64().unwrap();
    assert_eq!(frames, (v["audio_seconds"].as_f64().unwrap() * 100.0).round() as u64);
    assert!(frames > 300);
    assert!(v["real_time_factor_spiking"].as_f64().unwrap() > 0.0);
    // Without delta coding the dense twin's arithmetic is all multiplies.
    let dense = &v["ops_per_frame_dense"];
    assert_eq!(dense["adds"].as_f64(), Some(0.0));
    assert_eq!(dense["multiplies"].as_f64(), dense["dense_macs"].as_f64());
    // With delta steps, memory events appear and the spiking network does less arithmetic.
    let out = spikeword().args(["bench", "--json", "--deltas", "0.3,0.2,0.3", "--model"]).arg(&model_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["memory_events_per_frame"][0].as_f64().unwrap() > 0.0);
    assert!(v["input_events_per_frame"].as_f64().unwrap() > 0.0);
    let ratio = v["ops_per_frame_spiking"]["ops_over_dense"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 0.8, "{ratio}");
    let out = spikeword().args(["bench", "--deltas", "0.3", "--model"]).arg(&model_path).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "one delta for a two-layer model is an error");
}

#[test]
fn bench_streams_an_input_file_for_each_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    small_model(2).save(&model_path).unwrap();
    // 44.1 kHz stereo: decoded and resampled chunk by chunk, three passes in a row.
    let input = asset("yes_44k_stereo.wav");
    let one = spikeword::audio::load_resampled(&input, 16_000).unwrap().len() as f64;
    let out = spikeword().args(["bench", "--json", "--repeat", "3", "--input"]).arg(&input).arg("--model").arg(&model_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["audio_seconds"].as_f64().unwrap(), 3.0 * one / 16_000.0);
    assert_eq!(v["frames"].as_u64().unwrap(), (3.0 * one / 160.0) as u64);
    // A file that is not audio is an error that names it.
    let bad = dir.path().join("notes.wav");
    std::fs::write(&bad, b"not audio at all").unwrap();
    let out = spikeword().args(["bench", "--input"]).arg(&bad).arg("--model").arg(&model_path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.wav"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_missing_input_file_is_named_once_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-recording.wav");
    let out = spikeword().args(["listen", "--input"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("no-such-recording.wav").count(), 1, "{err}");
    // The operating system's reason, said once (it used to come twice: in the message and
    // again as the error's cause).
    let os = std::fs::File::open(&missing).unwrap_err().to_string();
    assert_eq!(err.matches(&os).count(), 1, "{err}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    // A card far larger than a pipe's buffer, so the tool is still writing when the reader
    // goes away (`spikeword info --json | head -c 1`).
    let mut m = small_model(4);
    m.card.metrics = serde_json::json!({ "notes": vec!["x".repeat(100); 4000] });
    m.save(&model_path).unwrap();
    let mut child = spikeword().args(["info", "--json", "--model"]).arg(&model_path).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    out.read_exact(&mut one).unwrap();
    drop(out);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101), "a panic's exit code");
}

#[test]
fn eval_stream_takes_only_a_smaller_dev_than_the_model_s_own() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    small_model(4).save(&model_path).unwrap(); // no split recorded: the default 15% dev
    let run = |args: &[&str]| {
        let out = spikeword().arg("eval-stream").arg("--model").arg(&model_path).arg("--data").arg(dir.path()).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A larger dev would hold speakers the model trained on.
    let err = run(&["--part", "dev", "--dev-percent", "20"]);
    assert!(err.contains("--dev-percent 20") && err.contains("(15%)"), "{err}");
    // It only chooses the dev part; test and train are the same for every split.
    let err = run(&["--part", "test", "--dev-percent", "10"]);
    assert!(err.contains("only applies with --part dev"), "{err}");
    // A restart level is a probability; 0 means never.
    let err = run(&["--reseed-level", "1.5"]);
    assert!(err.contains("--reseed-level 1.5") && err.contains("0..=1"), "{err}");
}

#[test]
fn calibrate_and_listen_refuse_a_reseed_level_that_is_not_a_probability() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    small_model(4).save(&model_path).unwrap();
    let out_path = dir.path().join("out.safetensors");
    let out = spikeword()
        .arg("calibrate")
        .arg("--model")
        .arg(&model_path)
        .arg("--data")
        .arg(dir.path())
        .arg("--out")
        .arg(&out_path)
        .arg("--reseed-level=-0.5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--reseed-level") && err.contains("reseed_level -0.5"), "{err}");
    assert!(!out_path.exists(), "a refused calibration wrote a model");
    let out = spikeword()
        .args(["listen", "--input"])
        .arg(asset("yes_0cb74144.flac"))
        .arg("--model")
        .arg(&model_path)
        .args(["--reseed-level", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--reseed-level 1.5") && err.contains("0..=1"), "{err}");
}
