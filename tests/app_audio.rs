//! End to end through a real virtual audio device: a private PulseAudio server with a null
//! sink, its monitor as the microphone, a recording played into the sink with `paplay`, and
//! the app's capture pipeline (cpal, downmix, resampling, front end, network, detection)
//! listening, through both cpal hosts (native PulseAudio, and ALSA routed to PulseAudio by
//! libasound2-plugins). No sound card is needed. scripts/setup.sh installs the system parts;
//! where one is missing the test says SKIPPED loudly instead of passing silently.

mod common;

use common::{asset, have, skipped, small_model};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

const SINK: &str = "spikeword_test";
const SHIPPED_MODEL: &str = "models/spikeword-kws12.safetensors";

fn now_unix() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A PulseAudio server of our own, in a temp dir, stopped on drop.
struct Pulse {
    child: Child,
    dir: tempfile::TempDir,
}

impl Pulse {
    fn start() -> Option<Pulse> {
        for tool in ["pulseaudio", "pactl", "paplay"] {
            if !have(tool) {
                skipped(&format!("`{tool}` is not installed (scripts/setup.sh installs pulseaudio pulseaudio-utils)"));
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        for d in ["rt", "home", "state"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let socket = dir.path().join("rt/native");
        let mut cmd = Command::new("pulseaudio");
        // As root, PulseAudio warns but runs per-user with --system=false; auth-anonymous
        // spares the clients a cookie.
        cmd.args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "--disallow-exit", "--log-target=stderr"])
            .arg(format!("--load=module-native-protocol-unix auth-anonymous=1 socket={}", socket.display()))
            .arg(format!("--load=module-null-sink sink_name={SINK} rate=48000"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let pulse = Pulse { child: Pulse::env_into(&mut cmd, dir.path()).spawn().expect("starting pulseaudio"), dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !pulse.pactl(&["info"]).status.success() {
            assert!(Instant::now() < deadline, "pulseaudio did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(pulse.pactl(&["set-default-source", &format!("{SINK}.monitor")]).status.success());
        assert!(pulse.pactl(&["set-default-sink", SINK]).status.success());
        Some(pulse)
    }

    fn env_into<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
        cmd.env("PULSE_SERVER", format!("unix:{}", dir.join("rt/native").display()))
            .env("XDG_RUNTIME_DIR", dir.join("rt"))
            .env("PULSE_RUNTIME_PATH", dir.join("rt"))
            .env("PULSE_STATE_PATH", dir.join("state"))
            .env("HOME", dir.join("home"))
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        Pulse::env_into(&mut c, self.dir.path());
        c
    }

    fn pactl(&self, args: &[&str]) -> std::process::Output {
        self.cmd("pactl").args(args).output().expect("running pactl")
    }

    fn paplay(&self, file: &Path) {
        let st = self.cmd("paplay").arg(format!("--device={SINK}")).arg(file).status().expect("running paplay");
        assert!(st.success(), "paplay failed");
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 1 s of silence, the clip, 1 s of silence, at 16 kHz.
struct Padded {
    path: PathBuf,
    /// Where the clip's speech starts and ends, seconds from the clip's start.
    speech: (f64, f64),
}

fn padded(clip: &Path, dir: &Path) -> Padded {
    let s = spikeword::audio::load_resampled(clip, 16_000).unwrap();
    let mut v = vec![0.0f32; 16_000];
    v.extend_from_slice(&s);
    v.extend(std::iter::repeat_n(0.0, 16_000));
    let out = dir.join("padded.wav");
    spikeword::audio::write_wav(&out, &v, 16_000).unwrap();
    // Speech: the first and last 10 ms blocks within 30 dB of the loudest.
    let rms: Vec<f32> = s.chunks(160).map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt()).collect();
    let peak = rms.iter().fold(0.0f32, |a, &b| a.max(b));
    let start = rms.iter().position(|&r| r > peak * 0.0316).unwrap_or(0);
    let end = rms.iter().rposition(|&r| r > peak * 0.0316).unwrap_or(0) + 1;
    Padded { path: out, speech: (start as f64 * 0.01, end as f64 * 0.01) }
}

/// A running `spikeword listen --mic`, its stdout lines arriving on a channel.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Listener {
    fn start(pulse: &Pulse, host: &str, model: &Path, extra: &[&str]) -> Listener {
        let mut child = pulse
            .cmd(env!("CARGO_BIN_EXE_spikeword"))
            .env("SPIKEWORD_AUDIO_HOST", host)
            .args(["listen", "--mic", "--frames", "--model"])
            .arg(model)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Listener { child, lines, seen: Vec::new() }
    }

    /// Collects lines until one matches (or the timeout, which fails the test).
    /// The next line within `secs`, if any.
    fn next(&mut self, secs: f64) -> Option<Value> {
        let v = self.lines.recv_timeout(Duration::from_secs_f64(secs)).ok()?;
        self.seen.push(v.clone());
        Some(v)
    }

    fn until(&mut self, secs: f64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what} within {secs} s; last lines: {:?}", &self.seen[self.seen.len().saturating_sub(3)..]),
            }
        }
    }

    fn frames(&self) -> Vec<(f64, f64)> {
        self.seen.iter().filter(|v| v.get("frame").is_some()).map(|v| (v["wall"].as_f64().unwrap(), v["energy"].as_f64().unwrap())).collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == name
}

/// Plays the padded clip once the stream is live and checks what the pipeline saw.
fn capture_and_check(pulse: &Pulse, host: &str, model: &Path, device: Option<&str>, clip: &Padded) {
    let mut extra = vec!["--seconds", "30"];
    if let Some(d) = device {
        extra.extend(["--device", d]);
    }
    let mut l = Listener::start(pulse, host, model, &extra);
    let open = l.until(20.0, "listening event", event("listening"));
    assert_eq!(open["host"].as_str().unwrap().to_lowercase(), host, "{open}");
    // The first callback can take a while (about 2 s through ALSA): play only once audio flows.
    l.until(20.0, "first audio", event("first_audio"));
    l.until(5.0, "frames", |v| v.get("frame").is_some());
    std::thread::sleep(Duration::from_millis(700));
    let play_start = now_unix();
    pulse.paplay(&clip.path);
    let play_end = now_unix();
    // Let the tail (and any buffering) come through.
    let settle = play_end + 1.5;
    l.until(10.0, "frames after playing", |v| v["wall"].as_f64().is_some_and(|w| w > settle));

    let frames = l.frames();
    let floor = frames.iter().map(|f| f.1).fold(f64::MAX, f64::min);
    // Before playing: digital silence from the null sink, the front end's floor.
    let before: Vec<f64> = frames.iter().filter(|f| f.0 < play_start).map(|f| f.1).collect();
    assert!(before.len() >= 20, "{host}: only {} frames before playing", before.len());
    let before_max = before.iter().copied().fold(f64::MIN, f64::max);
    assert!(before_max < floor + 1.0, "{host}: energy before the clip played: {before_max} (floor {floor})");
    // While it played: the word, 1 s in, stands far above the floor.
    let loud: Vec<f64> = frames.iter().filter(|f| f.1 > floor + 6.0).map(|f| f.0).collect();
    assert!(loud.len() >= 20, "{host}: only {} loud frames while the clip played", loud.len());
    let onset = loud[0] - play_start;
    assert!((0.8..3.5).contains(&onset), "{host}: speech appeared {onset:.2} s after play started (1 s of padding)");
    // Frames come at the audio's pace: 100 per second over the playing time.
    let during = frames.iter().filter(|f| f.0 >= play_start && f.0 < play_end).count() as f64;
    let expected = (play_end - play_start) * 100.0;
    assert!((during - expected).abs() < 0.2 * expected, "{host}: {during} frames while playing {expected:.0} frames' worth");
    eprintln!(
        "{host}: {} frames, speech onset in the features {onset:.2} s after paplay started (1.00 s padding + {:.2} s into the clip: about {:.0} ms from playing to a processed frame), {} loud frames, {during} frames in {:.2} s of playing",
        frames.len(),
        clip.speech.0,
        (onset - 1.0 - clip.speech.0) * 1000.0,
        loud.len(),
        play_end - play_start
    );
}

#[test]
fn virtual_microphone_audio_reaches_the_pipeline_through_both_hosts() {
    let Some(pulse) = Pulse::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    small_model(1).save(&model).unwrap();
    let clip = padded(&asset("yes_0cb74144.flac"), dir.path());
    // Native host, device picked by name, like `--device` in the app.
    capture_and_check(&pulse, "pulseaudio", &model, Some(&format!("{SINK}.monitor")), &clip);
    // ALSA host: its default device is PulseAudio's default source through the pulse plugin.
    let plugin = ["/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so", "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so"];
    if plugin.iter().any(|p| Path::new(p).exists()) {
        capture_and_check(&pulse, "alsa", &model, None, &clip);
    } else {
        skipped("(ALSA half) libasound2-plugins' pulse plugin is not installed (scripts/setup.sh installs it)");
    }
}

#[test]
fn a_device_that_disappears_is_reported() {
    let Some(pulse) = Pulse::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    small_model(2).save(&model).unwrap();
    let monitor = format!("{SINK}.monitor");
    let mut l = Listener::start(&pulse, "pulseaudio", &model, &["--device", &monitor, "--seconds", "30"]);
    l.until(20.0, "first audio", event("first_audio"));
    l.until(5.0, "frames", |v| v.get("frame").is_some());
    // Pull the device out from under the stream.
    assert!(pulse.pactl(&["unload-module", "module-null-sink"]).status.success());
    let err = l.until(10.0, "an error or stall report", |v| v["event"] == "error" || v["event"] == "stalled");
    eprintln!("device loss reported as {err}");
    if err["event"] == "error" {
        // Headless, a lost device ends the run with a clear message and a failure code.
        let st = l.child.wait().unwrap();
        assert_eq!(st.code(), Some(1));
    }
}

#[test]
fn shipped_model_hears_yes_through_the_virtual_microphone() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_MODEL);
    if !model.is_file() {
        skipped(&format!("{SHIPPED_MODEL} does not exist yet (train and export it first)"));
        return;
    }
    let Some(pulse) = Pulse::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = padded(&asset("yes_0cb74144.flac"), dir.path());
    let mut l = Listener::start(&pulse, "pulseaudio", &model, &["--seconds", "30"]);
    l.until(20.0, "first audio", event("first_audio"));
    std::thread::sleep(Duration::from_millis(700));
    let play_start = now_unix();
    pulse.paplay(&clip.path);
    // What the network heard, frame by frame, until 1.5 s after the word: the keyword it
    // found most probable at its peak must be "yes", and a detection, if the model's
    // (false-alarm calibrated) threshold lets one through, must be "yes" too.
    let mut peak = (String::new(), 0.0f64, 0.0f64);
    let mut det: Option<serde_json::Value> = None;
    let until = play_start + 1.0 + clip.speech.1 + 1.5;
    while let Some(v) = l.next(5.0) {
        if v["wall"].as_f64().is_some_and(|w| w > until) {
            break;
        }
        if v.get("keyword").is_some() && det.is_none() {
            det = Some(v.clone());
        }
        if let (Some(top), Some(p)) = (v.get("top").and_then(|t| t.as_str()), v.get("p").and_then(|p| p.as_f64())) {
            if p > peak.1 {
                peak = (top.to_string(), p, v["wall"].as_f64().unwrap_or(0.0));
            }
        }
    }
    assert_eq!(peak.0, "yes", "most probable keyword at its peak: {peak:?}");
    if let Some(d) = &det {
        assert_eq!(d["keyword"], "yes", "{d}");
    }
    let det = det.unwrap_or_else(|| serde_json::json!({"keyword": "yes", "score": peak.1, "wall": peak.2}));
    let word_end = play_start + 1.0 + clip.speech.1;
    let delay = det["wall"].as_f64().unwrap() - word_end;
    let word_start = play_start + 1.0 + clip.speech.0;
    // On the real stderr, so the measurement shows in every test run's log.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "end-to-end delay from the end of \"yes\" (last 10 ms within 30 dB of its peak) to its detection through the virtual device: {:.0} ms; {:.0} ms after the word began ({:.0} ms long); score {}",
        delay * 1000.0,
        (det["wall"].as_f64().unwrap() - word_start) * 1000.0,
        (clip.speech.1 - clip.speech.0) * 1000.0,
        det["score"]
    );
    assert!(delay < 2.0, "detection {delay:.2} s after the word ended");
}

#[test]
fn the_app_worker_survives_device_loss_and_retry_recovers() {
    use spikeword::app::worker::{self, Command as WCommand, Event, SourceState};
    let Some(pulse) = Pulse::start() else { return };
    // The worker runs in this process, so the cpal host reads this process's environment.
    // Only this test reads it in-process; the others pass it to their children explicitly.
    let rt = pulse.dir.path().join("rt");
    std::env::set_var("PULSE_SERVER", format!("unix:{}", rt.join("native").display()));
    std::env::set_var("XDG_RUNTIME_DIR", &rt);
    // cpal's PulseAudio client must present the server's cookie (an empty one is refused).
    std::env::set_var("PULSE_COOKIE", pulse.dir.path().join("home/.config/pulse/cookie"));
    std::env::set_var("SPIKEWORD_AUDIO_HOST", "pulseaudio");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let m = small_model(3);
    m.save(&path).unwrap();
    let monitor = format!("{SINK}.monitor");
    let w = worker::spawn(Some((m, path)), worker::Source::Mic(Some(monitor.clone()))).unwrap();
    let wait = |what: &str, pred: &dyn Fn(&Event) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while w.frames.try_recv().is_ok() {}
            match w.events.recv_timeout(Duration::from_millis(50)) {
                Ok(e) if pred(&e) => return,
                Ok(Event::Source(s)) => eprintln!("source: {s:?}"),
                _ => assert!(Instant::now() < deadline, "no {what}"),
            }
        }
    };
    let frames_flow = || {
        while w.frames.try_recv().is_ok() {}
        let n = (0..60).filter(|_| w.frames.recv_timeout(Duration::from_millis(100)).is_ok()).count();
        assert!(n >= 50, "only {n} frames");
    };
    wait("open microphone", &|e| matches!(e, Event::Source(SourceState::Mic(i)) if i.id.ends_with(&monitor)));
    frames_flow();
    assert!(pulse.pactl(&["unload-module", "module-null-sink"]).status.success());
    wait("failure report", &|e| matches!(e, Event::Source(SourceState::Failed { .. } | SourceState::Stalled { .. })));
    // The device comes back; the user presses Retry.
    assert!(pulse.pactl(&["load-module", "module-null-sink", &format!("sink_name={SINK}"), "rate=48000"]).status.success());
    w.send(WCommand::Retry);
    wait("reopened microphone", &|e| matches!(e, Event::Source(SourceState::Mic(_))));
    frames_flow();
}
