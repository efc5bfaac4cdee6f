//! The real window under Xvfb: the app binary draws its dashboard while a file plays in
//! real time, and a screenshot of the X screen must show a drawn, non-uniform picture.
//! Also: with no microphone at all, the window stays up and says so. scripts/setup.sh
//! installs Xvfb, Mesa and ImageMagick; where one is missing the test says SKIPPED loudly.

mod common;

use common::{asset, have, skipped, small_model, spikeword};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const W: usize = 1400;
const H: usize = 900;

/// An X server of our own on a free display (Xvfb picks it and tells us via -displayfd).
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Option<Xvfb> {
        for tool in ["Xvfb", "import", "convert"] {
            if !have(tool) {
                skipped(&format!("`{tool}` is not installed (scripts/setup.sh installs xvfb and imagemagick)"));
                return None;
            }
        }
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{W}x{H}x24"), "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb");
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let mut b = [0u8; 1];
            while out.read(&mut b).is_ok_and(|n| n == 1) && b[0] != b'\n' {
                s.push(b[0] as char);
            }
            let _ = tx.send(s);
        });
        let n = rx.recv_timeout(Duration::from_secs(15)).expect("Xvfb did not report its display");
        Some(Xvfb { child, display: format!(":{}", n.trim()) })
    }

    fn screenshot(&self, png: &Path) -> (usize, usize, Vec<[u8; 3]>) {
        let st = Command::new("import").args(["-window", "root", "-display", &self.display]).arg(png).status().unwrap();
        assert!(st.success(), "import failed");
        // Read the pixels back as binary PPM, which needs no image crate to parse.
        let ppm = Command::new("convert").arg(png).arg("ppm:-").output().unwrap();
        assert!(ppm.status.success());
        parse_ppm(&ppm.stdout)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_ppm(b: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    // Header: "P6" width height maxval, whitespace-separated, then one whitespace byte.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !b[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&b[start..i]).to_string());
    }
    assert_eq!(fields[0], "P6");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let px = b[i + 1..].chunks_exact(3).map(|c| [c[0], c[1], c[2]]).take(w * h).collect();
    (w, h, px)
}

/// The app binary on `display`, its SPIKEWORD_APP_STATS lines arriving on a channel.
struct AppProc {
    child: Child,
    stats: mpsc::Receiver<Value>,
}

impl AppProc {
    fn start(display: &str, args: &[&std::ffi::OsStr], env: &[(&str, &std::ffi::OsStr)]) -> AppProc {
        let mut cmd = spikeword();
        cmd.args(args).env("DISPLAY", display).env_remove("WAYLAND_DISPLAY").env("SPIKEWORD_APP_STATS", "1").stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, stats) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("app: {line}"),
                }
            }
        });
        AppProc { child, stats }
    }

    /// Waits for a stats line that satisfies `pred`; fails if the app exits or time runs out.
    fn until(&mut self, secs: f64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!("the app exited ({st}) before {what}; last stats {last}");
            }
            if let Ok(v) = self.stats.recv_timeout(Duration::from_millis(200)) {
                if pred(&v) {
                    return v;
                }
                last = v;
            }
        }
        panic!("no {what} within {secs} s; last stats {last}");
    }

    /// The window keeps repainting after `since`: a count of paints, not a rate, so a loaded
    /// machine slows the test down instead of failing it.
    fn keeps_repainting(&mut self, since: &Value) {
        let base = since["paints_total"].as_u64().unwrap();
        self.until(60.0, "five more repaints", |v| v["paints_total"].as_u64().is_some_and(|p| p >= base + 5));
    }
}

impl Drop for AppProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn the_dashboard_draws_a_live_window_under_xvfb() {
    let Some(x) = Xvfb::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let mut m = small_model(3);
    // A random model at a low threshold fires now and then: the log and flash get content.
    m.card.detection.default_threshold = 0.3;
    m.card.detection.refractory_s = 0.5;
    m.save(&model).unwrap();
    let input = asset("yes_0cb74144.flac");
    let mut app = AppProc::start(&x.display, &["--input".as_ref(), input.as_os_str(), "--model".as_ref(), model.as_os_str()], &[]);
    // 4 s of frames: the 5 s traces are mostly filled and the word has played twice.
    let st = app.until(60.0, "400 frames", |v| v["frames"].as_u64().is_some_and(|f| f >= 400));
    assert_eq!(st["source_ok"], true, "{st}");
    app.keeps_repainting(&st);
    assert_eq!(st["frames_dropped"], 0, "{st}");
    let png = shot_path("app-window.png");
    let (w, h, px) = x.screenshot(&png);
    assert_eq!((w, h), (W, H));
    let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
    for p in &px {
        *counts.entry(*p).or_default() += 1;
    }
    let top = counts.values().copied().max().unwrap();
    eprintln!("screenshot {} : {} colours, most common covers {:.1} %", png.display(), counts.len(), 100.0 * top as f64 / px.len() as f64);
    assert!(counts.len() > 200, "only {} colours: the window did not draw", counts.len());
    assert!((top as f64) < 0.8 * px.len() as f64, "one colour covers most of the screen");
    // The spectrogram uses the warm colour map: bright orange/yellow pixels show the word.
    let warm = px.iter().filter(|p| p[0] > 200 && p[1] > 90 && p[2] < 120).count();
    assert!(warm > 200, "no bright spectrogram pixels ({warm})");
}

#[test]
fn without_a_microphone_the_window_stays_up_and_says_so() {
    let Some(x) = Xvfb::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    small_model(4).save(&model).unwrap();
    let nowhere = dir.path().join("no-pulse");
    // No PulseAudio to reach, and ALSA's default device leads to it: no input at all.
    let env: [(&str, &std::ffi::OsStr); 4] = [
        ("PULSE_SERVER", "unix:/nonexistent/spikeword/native".as_ref()),
        ("XDG_RUNTIME_DIR", nowhere.as_os_str()),
        ("SPIKEWORD_AUDIO_HOST", "alsa".as_ref()),
        ("HOME", dir.path().as_os_str()),
    ];
    std::fs::create_dir_all(&nowhere).unwrap();
    let mut app = AppProc::start(&x.display, &["--model".as_ref(), model.as_os_str()], &env);
    let first = app.until(60.0, "a stats line", |_| true);
    // Keep it running a while: the app must not exit or hang.
    let later = app.until(20.0, "later stats", |v| v["wall"].as_f64() > first["wall"].as_f64().map(|w| w + 3.0));
    assert_eq!(later["source_ok"], false, "{later}");
    app.keeps_repainting(&later);
    let png = shot_path("app-window-no-mic.png");
    let (_, _, px) = x.screenshot(&png);
    // The failure banner is drawn in red.
    let red = px.iter().filter(|p| p[0] > 80 && p[0] as u32 > 2 * p[1] as u32 && p[0] as u32 > 2 * p[2] as u32).count();
    assert!(red > 500, "no red failure banner ({red} red pixels), see {}", png.display());
}

#[test]
fn without_a_display_the_app_explains_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    small_model(5).save(&model).unwrap();
    let out = spikeword()
        .args(["--input"])
        .arg(asset("yes_0cb74144.flac"))
        .arg("--model")
        .arg(&model)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the window") && err.contains("listen --mic"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs xdotool against `display`; false if it failed.
fn xdotool(display: &str, args: &[&str]) -> bool {
    Command::new("xdotool").args(args).env("DISPLAY", display).status().is_ok_and(|s| s.success())
}

#[test]
fn a_broken_file_is_reported_in_the_window_and_a_good_one_then_plays() {
    let Some(x) = Xvfb::start() else { return };
    if !have("xdotool") {
        skipped("`xdotool` is not installed (scripts/setup.sh installs it): cannot type into the window");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    small_model(6).save(&model).unwrap();
    // The hand-made file of issue 10: it used to kill the worker while the window showed
    // "opening …" forever.
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/decode/rate-0-hz.wav");
    let mut app = AppProc::start(&x.display, &["--input".as_ref(), bad.as_os_str(), "--model".as_ref(), model.as_os_str()], &[]);
    let failed = app.until(60.0, "the error", |v| v["source_error"].as_str().is_some());
    let error = failed["source_error"].as_str().unwrap();
    assert!(error.contains("rate-0-hz.wav") && error.contains("sample rate 0 Hz in the header"), "{failed}");
    assert_eq!(failed["worker_restarts"], 0, "{failed}");
    // It keeps drawing.
    let later = app.until(20.0, "later stats", |v| v["wall"].as_f64() > failed["wall"].as_f64().map(|w| w + 2.0));
    assert_eq!(later["source_ok"], false, "{later}");
    app.keeps_repainting(&later);
    let png = shot_path("app-window-bad-file.png");
    let (_, _, px) = x.screenshot(&png);
    let red = px.iter().filter(|p| p[0] > 80 && p[0] as u32 > 2 * p[1] as u32 && p[0] as u32 > 2 * p[2] as u32).count();
    assert!(red > 500, "no red failure banner ({red} red pixels), see {}", png.display());

    // The failed file's path is in the file field, which has the keyboard: type another, Enter.
    let good = asset("yes_0cb74144.flac");
    let typed = xdotool(&x.display, &["search", "--sync", "--name", "spikeword", "windowfocus", "--sync"])
        && xdotool(&x.display, &["key", "--clearmodifiers", "ctrl+a"])
        && xdotool(&x.display, &["type", "--delay", "5", &good.display().to_string()])
        && xdotool(&x.display, &["key", "Return"]);
    assert!(typed, "xdotool failed");
    let before = later["frames"].as_u64().unwrap();
    let playing = app.until(60.0, "frames from the good file", |v| v["source_ok"] == true && v["frames"].as_u64().is_some_and(|f| f >= before + 200));
    assert_eq!(playing["source_error"], Value::Null, "{playing}");
    assert_eq!(playing["frames_dropped"], 0, "{playing}");
}
