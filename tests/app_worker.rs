//! The app's worker thread, driven the way the window drives it, with a file played in real
//! time as the source (no audio device needed): thresholds reach the detector, model swaps
//! (bad and good), a failed device and recovery, the spiking/dense switch, recording, and
//! the dashboard state fed from real frames.

mod common;

use common::{asset, small_model};
use spikeword::app::state::Dashboard;
use spikeword::app::worker::{self, Command, Event, FrameMsg, Source, SourceState, WorkerHandle};
use spikeword::detect::is_keyword;
use spikeword::network::Mode;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn yes_file() -> Source {
    Source::File { path: asset("yes_0cb74144.flac"), looped: true }
}

fn start(seed: u64, source: Source) -> (WorkerHandle, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let m = small_model(seed);
    m.save(&path).unwrap();
    let w = worker::spawn(Some((m, path.clone())), source).unwrap();
    (w, dir, path)
}

/// Waits for the first event `pick` accepts, feeding every event seen into `dash`.
fn wait_event<T>(w: &WorkerHandle, dash: &mut Dashboard, secs: f64, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for an event");
        // Keep the frame queue drained as the window would.
        while let Ok(f) = w.frames.try_recv() {
            dash.push_frame(f, Instant::now());
        }
        if let Ok(e) = w.events.recv_timeout(left.min(Duration::from_millis(50))) {
            let hit = pick(&e);
            dash.apply_event(e);
            if let Some(t) = hit {
                return t;
            }
        }
    }
}

fn frames_for(w: &WorkerHandle, dash: &mut Dashboard, secs: f64) -> Vec<FrameMsg> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        while let Ok(e) = w.events.try_recv() {
            dash.apply_event(e);
        }
        if let Ok(f) = w.frames.recv_timeout(Duration::from_millis(20)) {
            dash.push_frame(f.clone(), Instant::now());
            out.push(f);
        }
    }
    out
}

#[test]
fn threshold_changes_reach_the_detector() {
    let (w, _dir, _) = start(1, yes_file());
    let mut dash = Dashboard::new();
    let labels = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Model { card, .. } => Some(card.labels.clone()),
        _ => None,
    });
    w.send(Command::SetThreshold(0.42));
    let t = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Thresholds(t) if t.contains(&0.42) => Some(t.clone()),
        _ => None,
    });
    for (l, &x) in labels.iter().zip(&t) {
        if is_keyword(l) {
            assert_eq!(x, 0.42, "{l}");
        } else {
            assert!(x.is_infinite(), "{l} must never fire");
        }
    }
    w.send(Command::SetThresholdFor("yes".into(), 0.9));
    let t = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Thresholds(t) if t.contains(&0.9) => Some(t.clone()),
        _ => None,
    });
    let yes = labels.iter().position(|l| l == "yes").unwrap();
    assert_eq!(t[yes], 0.9);
    assert_eq!(t.iter().filter(|&&x| x == 0.42).count(), labels.iter().filter(|l| is_keyword(l)).count() - 1);
    assert_eq!(dash.thresholds, t, "the dashboard shows what the detector holds");

    // And the detector acts on it: at a tiny threshold even a random model fires.
    w.send(Command::SetThreshold(0.01));
    let frames = frames_for(&w, &mut dash, 2.5);
    assert!(frames.iter().any(|f| f.detection.is_some()), "no detection at threshold 0.01");
    assert!(!dash.log.is_empty());
}

#[test]
fn the_restart_level_reaches_the_detector() {
    let (w, _dir, _) = start(1, yes_file());
    let mut dash = Dashboard::new();
    let card_level = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Model { card, .. } => Some(card.detection.reseed_level),
        _ => None,
    });
    assert_eq!(dash.reseed_level, card_level, "the slider starts at the model's level");
    w.send(Command::SetReseedLevel(0.7));
    let l = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::ReseedLevel(l) => Some(*l),
        _ => None,
    });
    assert_eq!(l, 0.7);
    assert_eq!(dash.reseed_level, 0.7, "the dashboard shows what the detector holds");
    // Outside 0..=1 is not a level: the detector holds the nearest one.
    w.send(Command::SetReseedLevel(1.5));
    let l = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::ReseedLevel(l) => Some(*l),
        _ => None,
    });
    assert_eq!(l, 1.0);
}

#[test]
fn a_bad_model_is_reported_and_the_running_one_keeps_going() {
    let (w, dir, _) = start(2, yes_file());
    let mut dash = Dashboard::new();
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Model { .. }).then_some(()));
    let before = frames_for(&w, &mut dash, 0.5);
    assert!(!before.is_empty());
    let gen = before[0].model_gen;

    let bad = dir.path().join("broken.safetensors");
    std::fs::write(&bad, b"this is not a model").unwrap();
    w.load_model(bad.clone());
    let err = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::ModelError { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(err.contains("not a valid safetensors"), "{err}");
    assert!(dash.model_error.as_deref().unwrap_or("").contains("broken.safetensors"));
    let after = frames_for(&w, &mut dash, 0.5);
    assert!(after.len() > 20, "frames stopped after a bad model: {}", after.len());
    assert!(after.iter().all(|f| f.model_gen == gen));

    // A good model with another shape takes over; the dashboard follows it.
    let mut other = small_model(3);
    other.card.name = "other".into();
    other.card.architecture.layers.truncate(1);
    other.card.architecture.layers[0].units = 16;
    other.weights = spikeword::network::Weights::random(&other.card.architecture, 3);
    let good = dir.path().join("other.safetensors");
    other.save(&good).unwrap();
    w.load_model(good);
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Model { card, .. } if card.name == "other").then_some(()));
    let swapped = frames_for(&w, &mut dash, 0.5);
    let last = swapped.last().expect("frames after the swap");
    assert!(last.model_gen > gen);
    assert_eq!(last.outputs.len(), 16);
    assert_eq!(dash.layers.len(), 1);
    assert!(dash.frames_seen > 0);
}

#[test]
fn a_missing_device_is_reported_and_another_source_recovers() {
    let (w, _dir, _) = start(4, Source::Mic(Some("no-such-device-spikeword-test".into())));
    let mut dash = Dashboard::new();
    let err = wait_event(&w, &mut dash, 30.0, |e| match e {
        Event::Source(SourceState::Failed { error, .. }) => Some(error.clone()),
        _ => None,
    });
    assert!(!err.is_empty());
    assert!(matches!(dash.source, Some(SourceState::Failed { .. })));
    // The worker is still there: switch to a file and frames flow.
    w.send(Command::UseSource(yes_file()));
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Source(SourceState::File { .. })).then_some(()));
    let frames = frames_for(&w, &mut dash, 1.0);
    assert!(frames.len() > 50, "{}", frames.len());
}

#[test]
fn a_missing_file_is_reported_not_fatal() {
    let (w, _dir, _) = start(5, Source::File { path: "/nonexistent/clip.wav".into(), looped: false });
    let mut dash = Dashboard::new();
    let err = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Source(SourceState::Failed { error, .. }) => Some(error.clone()),
        _ => None,
    });
    assert!(err.contains("/nonexistent/clip.wav"), "{err}");
}

#[test]
fn file_plays_in_real_time_and_dense_switch_and_recording_work() {
    let (w, dir, _) = start(6, yes_file());
    let mut dash = Dashboard::new();
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Source(SourceState::File { .. })).then_some(()));
    let t0 = Instant::now();
    let frames = frames_for(&w, &mut dash, 2.0);
    let secs = t0.elapsed().as_secs_f64();
    // Paced by the clock: 100 frames a second, not as fast as possible.
    let rate = frames.len() as f64 / secs;
    assert!((80.0..=115.0).contains(&rate), "{rate} frames/s");
    assert!(frames.iter().all(|f| f.mode == Mode::Spiking));
    assert!(dash.window_is_spiking());
    let bits = dash.bits_per_activity(0).expect("bits per activity in spiking mode");
    assert!(bits > 0.0 && bits < 16.0, "{bits}");
    let (ops, macs) = dash.ops_per_second();
    assert!(ops > 0.0 && ops <= macs, "{ops} {macs}");
    let lat = dash.stage_latency_us();
    assert!(lat[2].0 > 0.0 && lat[2].1 >= lat[2].0, "network latency {:?}", lat[2]);
    assert!(dash.real_time_factor() > 0.0 && dash.real_time_factor() < 1.0);
    // The spectrogram has energy while the word plays, and silence in the gap.
    let energy: Vec<f32> = frames.iter().map(|f| f.features.iter().sum::<f32>() / f.features.len() as f32).collect();
    let (lo, hi) = energy.iter().fold((f32::MAX, f32::MIN), |(a, b), &e| (a.min(e), b.max(e)));
    assert!(hi - lo > 5.0, "no contrast between word and gap: {lo}..{hi}");

    w.send(Command::SetMode(Mode::Dense));
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Mode(Mode::Dense)).then_some(()));
    let dense = frames_for(&w, &mut dash, 0.5);
    assert!(!dense.is_empty() && dense.iter().all(|f| f.mode == Mode::Dense));
    assert_eq!(dash.bits_per_activity(0), None, "bits per activity is not defined for rates");

    let wav = dir.path().join("rec.wav");
    w.send(Command::Record { path: wav.clone(), seconds: 1.5 });
    let saved = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Recorded(r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(saved.expect("recording saved"), std::fs::canonicalize(&wav).unwrap());
    let a = spikeword::audio::decode_file(&wav).unwrap();
    assert_eq!(a.sample_rate, 16_000);
    assert_eq!(a.samples.len(), 24_000);
    assert!(a.samples.iter().any(|s| s.abs() > 0.05), "the recording is silent");

    // Recording somewhere unwritable fails with a message, and nothing else stops.
    w.send(Command::Record { path: "/nonexistent/dir/rec.wav".into(), seconds: 1.0 });
    let r = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Recorded(r) => Some(r.clone()),
        _ => None,
    });
    assert!(r.is_err());
    assert!(!frames_for(&w, &mut dash, 0.3).is_empty());
}

#[test]
fn a_panic_in_the_worker_is_reported_and_it_restarts_with_the_last_good_model() {
    let (w, _dir, _) = start(7, yes_file());
    let mut dash = Dashboard::new();
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Source(SourceState::File { .. })).then_some(()));
    assert!(!frames_for(&w, &mut dash, 0.5).is_empty());
    let name = dash.card.as_ref().unwrap().name.clone();

    w.send(Command::InjectPanic("injected by the supervision test".into()));
    let error = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Source(SourceState::Failed { error, .. }) => Some(error.clone()),
        _ => None,
    });
    assert!(error.contains("processing failed") && error.contains("injected by the supervision test"), "{error}");
    assert!(error.contains(&name), "names the model it restarted with: {error}");
    assert_eq!(w.counters.restarts.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(matches!(dash.source, Some(SourceState::Failed { .. })));
    assert_eq!(dash.card.as_ref().map(|c| c.name.clone()), Some(name.clone()), "the last good model runs again");

    // The restarted worker takes commands and plays a source the user picks.
    w.send(Command::UseSource(yes_file()));
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Source(SourceState::File { .. })).then_some(()));
    let frames = frames_for(&w, &mut dash, 1.0);
    assert!(frames.len() > 50, "{}", frames.len());
    w.send(Command::SetThreshold(0.5));
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Thresholds(_)).then_some(()));
}

#[test]
fn a_file_with_a_broken_header_is_reported_and_the_next_one_plays() {
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/decode/rate-0-hz.wav");
    let (w, _dir, _) = start(8, Source::File { path: bad.clone(), looped: true });
    let mut dash = Dashboard::new();
    let error = wait_event(&w, &mut dash, 10.0, |e| match e {
        Event::Source(SourceState::Failed { error, .. }) => Some(error.clone()),
        _ => None,
    });
    assert!(error.contains("rate-0-hz.wav") && error.contains("sample rate 0 Hz in the header"), "{error}");
    assert!(dash.focus_file_input, "the file field gets the keyboard for another path");
    assert_eq!(w.counters.restarts.load(std::sync::atomic::Ordering::Relaxed), 0, "an error, not a crash");
    w.send(Command::UseSource(yes_file()));
    wait_event(&w, &mut dash, 10.0, |e| matches!(e, Event::Source(SourceState::File { .. })).then_some(()));
    assert!(frames_for(&w, &mut dash, 1.0).len() > 50);
}
