//! The soak's two halves that need the library (scripts/soak.sh runs them):
//!
//! - `make-stream --seconds S --out F`: real recordings from ../shared/data (continuous
//!   speech, read sentences, noise, and a Speech Commands keyword now and then) put end to
//!   end into one 16 kHz WAV, decoded and written a file at a time. Generated on the fly,
//!   never committed.
//! - `worker --input F`: the app's processing worker, headless, playing F in real time (it
//!   paces a file by the clock, as in the window) until the file has played; one JSON line
//!   per detection and per RSS sample (every 10 s), and a summary with frame and drop counts.

use spikeword::app::worker::{self, Event, Source, SourceState};
use spikeword::audio;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let code = match args.first().map(String::as_str) {
        Some("make-stream") => {
            let seconds: f64 = get("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3600.0);
            let data = PathBuf::from(get("--data").unwrap_or_else(|| "../shared/data".into()));
            match make_stream(&data, seconds, Path::new(&get("--out").unwrap_or_else(|| "/tmp/soak.wav".into()))) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
        Some("worker") => match (get("--input"), get("--model")) {
            (Some(input), model) => run_worker(Path::new(&input), model.as_deref().map(Path::new)),
            _ => {
                eprintln!("worker needs --input FILE");
                2
            }
        },
        _ => {
            eprintln!("usage: soak make-stream [--seconds S] [--data DIR] [--out F] | soak worker --input F [--model M]");
            2
        }
    };
    std::process::exit(code);
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = audio::audio_files_in(dir).unwrap_or_default();
    // One level of sub-folders (speechocean762 has a folder per speaker).
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        subs.sort();
        for s in subs {
            v.extend(audio::audio_files_in(&s).unwrap_or_default());
        }
    }
    v
}

fn make_stream(data: &Path, seconds: f64, out: &Path) -> Result<(), String> {
    let rate = 16_000u32;
    let lists: Vec<Vec<PathBuf>> = ["speechocean762_a", "speech_to_intent_a", "speech_commands_v2_test_a/yes", "noise", "speech_commands_v2_test_a/stop"]
        .iter()
        .map(|d| files(&data.join(d)))
        .collect();
    if lists.iter().any(|l| l.is_empty()) {
        return Err(format!("missing recordings under {}", data.display()));
    }
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(out, spec).map_err(|e| e.to_string())?;
    let total = (seconds * rate as f64) as u64;
    let (mut written, mut n, mut idx) = (0u64, 0usize, vec![0usize; lists.len()]);
    let gap = vec![0.0f32; rate as usize / 2];
    while written < total {
        // Sentences and commands mostly, a keyword clip every fourth item, noise now and then.
        let which = match n % 8 {
            0 | 2 | 5 => 0,
            1 | 6 => 1,
            3 => 2,
            4 => 3,
            _ => 4,
        };
        n += 1;
        let list = &lists[which];
        let f = &list[idx[which] % list.len()];
        idx[which] += 1;
        let mut x = match audio::load_resampled(f, rate) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("skipping {}: {e}", f.display());
                continue;
            }
        };
        if which == 3 {
            // 10 s of a noise recording, at a lower level.
            let start = (idx[3] * 7 * rate as usize) % x.len().max(1);
            x = x.iter().cycle().skip(start).take(10 * rate as usize).map(|v| v * 0.3).collect();
        }
        for v in x.iter().chain(&gap) {
            w.write_sample((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).map_err(|e| e.to_string())?;
        }
        written += (x.len() + gap.len()) as u64;
    }
    w.finalize().map_err(|e| e.to_string())?;
    eprintln!("{}: {:.1} s from {n} recordings", out.display(), written as f64 / rate as f64);
    Ok(())
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn run_worker(input: &Path, model: Option<&Path>) -> i32 {
    let (path, m) = match spikeword::model::load_resolved(model) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    let Some(seconds) = audio::AudioStream::open(input).ok().and_then(|s| s.duration_hint()) else {
        eprintln!("error: {} has no stated length", input.display());
        return 1;
    };
    let w = match worker::spawn(Some((m, path)), Source::File { path: input.to_path_buf(), looped: false }) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let expected = (seconds * 100.0) as u64;
    let start = Instant::now();
    let mut next_sample = start;
    let (mut frames, mut gaps, mut last_index, mut detections) = (0u64, 0u64, None::<u64>, 0u64);
    while frames < expected {
        while let Ok(e) = w.events.try_recv() {
            if let Event::Source(SourceState::Failed { error, .. }) = e {
                eprintln!("error: {error}");
                return 1;
            }
        }
        match w.frames.recv_timeout(Duration::from_millis(50)) {
            Ok(f) => {
                frames += 1;
                if last_index.is_some_and(|i| f.index != i + 1) {
                    gaps += 1;
                }
                last_index = Some(f.index);
                if let Some(d) = f.detection {
                    detections += 1;
                    println!("{}", serde_json::json!({"event": "detection", "time": d.time, "keyword": d.keyword, "score": d.score}));
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                eprintln!("error: the worker stopped");
                return 1;
            }
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(10);
            println!("{}", serde_json::json!({"event": "rss", "wall_s": start.elapsed().as_secs_f64(), "rss_kb": rss_kb(), "frames": frames}));
        }
    }
    let c = &w.counters;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({"event": "end", "audio_s": seconds, "wall_s": start.elapsed().as_secs_f64(), "frames": frames,
            "expected_frames": expected, "index_gaps": gaps, "frames_dropped": ld(&c.frames_dropped),
            "worker_restarts": ld(&c.restarts), "detections": detections, "rss_kb": rss_kb()})
    );
    0
}
