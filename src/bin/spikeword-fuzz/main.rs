//! spikeword-fuzz: a mutational fuzzer that runs on stable Rust, in-process and without
//! coverage instrumentation (cargo-fuzz needs nightly).
//!
//! The supervisor mutates valid seed files ([`seeds`], [`mutate`]) and hands each input to a
//! child process (this binary, `child`), which runs the target ([`targets`]) under
//! `catch_unwind` with a counting allocator ([`alloc`]) and answers with the outcome. A child
//! that dies (abort, refused allocation, stack overflow, signal) or does not answer in time is
//! a crash too; the supervisor saves the input, shrinks it, and starts a new child. Inputs
//! with an outcome not seen before (a new error kind, a new rate/channel combination) join
//! the corpus: coarse feedback in place of coverage.
//!
//! ```text
//! spikeword-fuzz run --target decode --execs 1000000 --out fuzz-out
//! spikeword-fuzz replay --target decode tests/fuzz_regressions/decode
//! ```

mod alloc;
mod mutate;
mod seeds;
mod targets;

use clap::{Parser, Subcommand};
use mutate::{Kind, Rng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use targets::{Outcome, Runner, Target};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[derive(Parser)]
#[command(name = "spikeword-fuzz", about = "Mutational fuzzing of spikeword's file inputs (stable Rust, no coverage)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A campaign: mutate seeds, run them in a child process, record crashes.
    Run {
        #[arg(long, value_enum)]
        target: Target,
        /// Stop after this many executions.
        #[arg(long)]
        execs: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where crashes, caught decoder panics and the summary go.
        #[arg(long, default_value = "fuzz-out")]
        out: PathBuf,
        /// Extra seed folders (audio files).
        #[arg(long)]
        seeds: Vec<PathBuf>,
        /// Live heap per execution above which an allocation is a finding (MB).
        #[arg(long, default_value_t = 256)]
        mem_mb: usize,
        /// An execution that has not answered after this long is a hang.
        #[arg(long, default_value_t = 20.0)]
        timeout_s: f64,
    },
    /// Runs files (or every file in folders) through a target in this process and prints
    /// one JSON line each; exits with 1 if any crashed.
    Replay {
        #[arg(long, value_enum)]
        target: Target,
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 256)]
        mem_mb: usize,
    },
    /// Cuts ranges out of a file while its outcome stays the same (in this process: for
    /// outcomes that do not kill it, such as decoder panics caught at the boundary).
    Shrink {
        #[arg(long, value_enum)]
        target: Target,
        input: PathBuf,
        output: PathBuf,
    },
    /// Internal: the execution side of `run`.
    #[command(hide = true)]
    Child {
        #[arg(long, value_enum)]
        target: Target,
        #[arg(long)]
        mem_mb: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Run { target, execs, seconds, seed, out, seeds, mem_mb, timeout_s } => campaign(target, execs, seconds, seed, &out, &seeds, mem_mb, timeout_s),
        Cmd::Replay { target, files, mem_mb } => replay(target, &files, mem_mb),
        Cmd::Shrink { target, input, output } => shrink(target, &input, &output),
        Cmd::Child { target, mem_mb } => child(target, mem_mb),
    };
    std::process::exit(code);
}

// ---------------------------------------------------------------- execution side

/// The last panic's location and message (escaped panics; the decode boundary keeps its own
/// quiet and reports them as errors).
static LAST_PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

fn quiet_recording_hook() {
    std::panic::set_hook(Box::new(|info| {
        let loc = info.location().map_or("?".into(), |l| format!("{}:{}", l.file(), l.line()));
        let msg = info.payload().downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| info.payload().downcast_ref::<String>().cloned()).unwrap_or_default();
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some((loc, msg));
        }
    }));
}

fn decode_model() -> spikeword::model::Model {
    seeds::shipped_model().unwrap_or_else(|| seeds::small_model(&[32, 24], 7))
}

/// One execution: (status, signature, message). Status: ok, error, caught, violation, panic,
/// overalloc.
fn execute(runner: &mut Option<Runner>, target: Target, input: &[u8], ext: &str) -> (String, String, String) {
    alloc::reset();
    let r = match runner.as_mut() {
        Some(r) => r,
        None => match Runner::new(decode_model()) {
            Ok(r) => runner.insert(r),
            Err(e) => return ("violation".into(), "runner".into(), e.to_string()),
        },
    };
    let result = catch_unwind(AssertUnwindSafe(|| r.run(target, input, ext)));
    let over = alloc::over();
    let (status, sig, msg) = match result {
        Err(_) => {
            // The runner's state may be half-updated: start a fresh one next time.
            *runner = None;
            let (loc, msg) = LAST_PANIC.lock().ok().and_then(|mut p| p.take()).unwrap_or_default();
            ("panic", format!("panic at {loc}"), msg)
        }
        Ok(Outcome::Violation(v)) => ("violation", targets::error_kind(&v), v),
        Ok(Outcome::CaughtPanic(m)) => ("caught", targets::error_kind(&m), m),
        Ok(Outcome::Error { kind, message }) => ("error", kind, message),
        Ok(Outcome::Ok(what)) => ("ok", what.clone(), what),
    };
    if let Some(n) = over {
        return (
            "overalloc".into(),
            format!("over-allocation in {}", alloc::take_trace().and_then(|t| t.lines().find_map(overalloc_site)).unwrap_or_default()),
            format!("{n} bytes requested; outcome: {status} {msg}"),
        );
    }
    (status.into(), sig, msg)
}

fn child(target: Target, mem_mb: usize) -> i32 {
    quiet_recording_hook();
    let soft = mem_mb << 20;
    alloc::set_limits(soft, soft.saturating_mul(8).max(2 << 30));
    let mut runner = None;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let mut head = [0u8; 5];
        if input.read_exact(&mut head).is_err() {
            return 0;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let ext = ["wav", "flac", "ogg", "mp3", "safetensors", "bin"][(head[4] as usize).min(5)];
        let mut buf = vec![0u8; len];
        if input.read_exact(&mut buf).is_err() {
            return 0;
        }
        let (status, sig, msg) = execute(&mut runner, target, &buf, ext);
        drop(buf);
        let line = json!({"status": status, "sig": sig, "msg": msg, "peak": alloc::peak()});
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return 0;
        }
    }
}

fn replay(target: Target, files: &[PathBuf], mem_mb: usize) -> i32 {
    quiet_recording_hook();
    alloc::set_limits(mem_mb << 20, usize::MAX);
    let mut runner = None;
    let mut crashed = 0;
    let mut all = Vec::new();
    for f in files {
        if f.is_dir() {
            all.extend(seeds::files_in(f));
        } else {
            all.push(f.clone());
        }
    }
    for f in all.iter().filter(|f| f.extension().is_none_or(|e| e != "txt")) {
        let Ok(bytes) = std::fs::read(f) else {
            eprintln!("cannot read {}", f.display());
            return 2;
        };
        let ext = Kind::of(&bytes).ext();
        let (status, sig, msg) = execute(&mut runner, target, &bytes, ext);
        let crash = matches!(status.as_str(), "panic" | "violation" | "overalloc");
        crashed += crash as usize;
        println!("{}", json!({"file": f.display().to_string(), "status": status, "sig": sig, "msg": msg, "peak_bytes": alloc::peak()}));
    }
    i32::from(crashed > 0)
}

fn shrink(target: Target, input: &Path, output: &Path) -> i32 {
    quiet_recording_hook();
    let Ok(mut best) = std::fs::read(input) else {
        eprintln!("cannot read {}", input.display());
        return 2;
    };
    let kind = Kind::of(&best);
    let mut runner = None;
    let (status, sig, _) = execute(&mut runner, target, &best, kind.ext());
    let mut chunk = best.len() / 2;
    while chunk >= 1 {
        let mut i = 0;
        while i < best.len() {
            let mut cand = best[..i].to_vec();
            cand.extend_from_slice(&best[(i + chunk).min(best.len())..]);
            if kind == Kind::Ogg {
                // Keep the pages' checksums right, or the cut only tests the checksum.
                mutate::fix_ogg_crcs(&mut cand);
            }
            let (st, sg, _) = execute(&mut runner, target, &cand, kind.ext());
            if st == status && sg == sig {
                best = cand;
            } else {
                i += chunk;
            }
        }
        chunk /= 2;
    }
    eprintln!("{status}: {sig}: {} bytes", best.len());
    i32::from(std::fs::write(output, &best).is_err())
}

// ---------------------------------------------------------------- supervisor side

struct ChildProc {
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl ChildProc {
    fn start(target: Target, mem_mb: usize) -> std::io::Result<ChildProc> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["child", "--target", target.name(), "--mem-mb", &mem_mb.to_string()])
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut err = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr"))?;
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or(Value::Null);
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let keep = stderr.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = err.read(&mut b) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = keep.lock() {
                    s.extend_from_slice(&b[..n]);
                    let len = s.len();
                    if len > 64 << 10 {
                        s.drain(..len - (64 << 10));
                    }
                }
            }
        });
        Ok(ChildProc { child, stdin, replies, stderr })
    }

    /// Runs one input; Err is a crash signature and details (the child is then gone).
    fn exec(&mut self, input: &[u8], ext: u8, timeout: Duration) -> Result<Value, (String, String)> {
        let mut msg = (input.len() as u32).to_le_bytes().to_vec();
        msg.push(ext);
        msg.extend_from_slice(input);
        let sent = self.stdin.write_all(&msg).and_then(|_| self.stdin.flush());
        let reply = if sent.is_ok() { self.replies.recv_timeout(timeout).ok() } else { None };
        match reply {
            Some(v) if !v.is_null() => Ok(v),
            _ => {
                let hung = self.child.try_wait().ok().flatten().is_none();
                let _ = self.child.kill();
                let status = self.child.wait().ok();
                std::thread::sleep(Duration::from_millis(50));
                let err = self.stderr.lock().map(|s| String::from_utf8_lossy(&s).to_string()).unwrap_or_default();
                let sig = if hung {
                    "hang".to_string()
                } else if let Some(site) = err.lines().find_map(overalloc_site) {
                    format!("over-allocation in {site} (refused)")
                } else if err.contains("memory allocation of") {
                    "refused allocation".to_string()
                } else if err.contains("stack overflow") {
                    "stack overflow".to_string()
                } else {
                    format!("child died: {}", status.map_or("?".into(), |s| s.to_string()))
                };
                let tail: String = err.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                Err((sig, tail))
            }
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first frame of an over-allocation backtrace that is not the allocator's own.
fn overalloc_site(line: &str) -> Option<String> {
    let l = line.trim();
    let name = l.split_once(": ").map(|(_, n)| n)?;
    let ours = name.starts_with("spikeword_fuzz::alloc") || name.contains("backtrace") || name.starts_with("__rust");
    let library = name.starts_with("alloc::") || name.starts_with("std::") || name.starts_with("core::") || name.starts_with("<alloc::");
    (!ours && !library && (name.contains("symphonia") || name.contains("spikeword") || name.contains("rubato") || name.contains("safetensors")))
        .then(|| name.split("::h").next().unwrap_or(name).to_string())
}

struct Crash {
    count: u64,
    file: PathBuf,
    minimised: Option<PathBuf>,
    detail: String,
}

#[allow(clippy::too_many_arguments)]
fn campaign(target: Target, execs: Option<u64>, seconds: Option<f64>, seed: u64, out: &Path, extra: &[PathBuf], mem_mb: usize, timeout_s: f64) -> i32 {
    let seeds = match target {
        Target::Decode => seeds::audio_seeds(extra),
        Target::Model => seeds::model_seeds(),
    };
    if seeds.is_empty() {
        eprintln!("no seeds");
        return 2;
    }
    let crash_dir = out.join(format!("crashes-{}", target.name()));
    let caught_dir = out.join(format!("caught-{}", target.name()));
    for d in [&crash_dir, &caught_dir] {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("cannot create {}: {e}", d.display());
            return 2;
        }
    }
    let timeout = Duration::from_secs_f64(timeout_s);
    let mut rng = Rng::new(seed);
    let mut corpus: Vec<Vec<u8>> = seeds.clone();
    let mut seen = HashSet::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut crashes: BTreeMap<String, Crash> = BTreeMap::new();
    let mut caught: BTreeMap<String, u64> = BTreeMap::new();
    let mut child = match ChildProc::start(target, mem_mb) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start the child: {e}");
            return 2;
        }
    };
    let (mut n, mut max_peak, mut restarts, mut mutator_panics) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut last_report = start;
    eprintln!("fuzzing target {} with {} seeds (seed {seed}), crashes to {}", target.name(), seeds.len(), crash_dir.display());
    loop {
        if execs.is_some_and(|e| n >= e) || seconds.is_some_and(|s| start.elapsed().as_secs_f64() >= s) {
            break;
        }
        // Half the time a pristine seed: stacked damage on damage mostly tests the first check.
        let a = if rng.chance(0.5) { rng.below(seeds.len()) } else { rng.below(corpus.len()) };
        let b = rng.below(corpus.len());
        let kind = Kind::of(&corpus[a]);
        // A bug in a mutator must not end a long campaign: skip that input, count it.
        let Ok(input) = catch_unwind(AssertUnwindSafe(|| mutate::mutate(&mut rng, &corpus[a], &corpus[b]))) else {
            mutator_panics += 1;
            continue;
        };
        let ext = kind as u8;
        n += 1;
        let (status, sig, detail) = match child.exec(&input, ext, timeout) {
            Ok(v) => {
                let peak = v["peak"].as_u64().unwrap_or(0);
                if peak > max_peak {
                    // The input that needed the most memory, for the record.
                    max_peak = peak;
                    let _ = std::fs::write(out.join(format!("max-peak-{}.{}", target.name(), kind.ext())), &input);
                }
                let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                (s("status"), s("sig"), s("msg"))
            }
            Err((sig, tail)) => {
                restarts += 1;
                child = match ChildProc::start(target, mem_mb) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("cannot restart the child: {e}");
                        return 2;
                    }
                };
                ("died".into(), sig, tail)
            }
        };
        *outcomes.entry(status.clone()).or_default() += 1;
        match status.as_str() {
            "ok" | "error" => {
                if seen.insert(format!("{status}|{sig}")) && corpus.len() < 4000 {
                    corpus.push(input);
                }
            }
            "caught" => {
                let c = caught.entry(sig.clone()).or_default();
                if *c == 0 {
                    let _ = std::fs::write(caught_dir.join(format!("{:03}.{}", caught.len(), kind.ext())), &input);
                    corpus.push(input);
                }
                *caught.get_mut(&sig).expect("inserted") += 1;
            }
            _ => {
                let unique = crashes.len() + 1;
                let entry = crashes.entry(sig.clone()).or_insert_with(|| {
                    let file = crash_dir.join(format!("{:03}.{}", n % 1000, kind.ext()));
                    Crash { count: 0, file, minimised: None, detail: detail.clone() }
                });
                entry.count += 1;
                if entry.count == 1 {
                    let _ = std::fs::write(&entry.file, &input);
                    let _ = std::fs::write(entry.file.with_extension("txt"), format!("{status}: {sig}\n{detail}\n"));
                    eprintln!("CRASH #{unique} after {n} executions: {status}: {sig}");
                    let (small, c) = minimise(child, &input, ext, &sig, target, mem_mb, timeout);
                    child = c;
                    if small.len() < input.len() {
                        let p = entry.file.with_extension(format!("min.{}", kind.ext()));
                        let _ = std::fs::write(&p, &small);
                        entry.minimised = Some(p);
                    }
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let t = start.elapsed().as_secs_f64();
            eprintln!(
                "{n} execs, {:.0}/s, {:.0} s, corpus {}, crashes {} ({} unique), decoder panics caught {} ({} kinds), outcomes {:?}",
                n as f64 / t,
                t,
                corpus.len(),
                crashes.values().map(|c| c.count).sum::<u64>(),
                crashes.len(),
                caught.values().sum::<u64>(),
                caught.len(),
                outcomes
            );
        }
    }
    let t = start.elapsed().as_secs_f64();
    let summary = json!({
        "target": target.name(),
        "executions": n,
        "seconds": t,
        "executions_per_second": n as f64 / t,
        "seed": seed,
        "seeds": seeds.len(),
        "corpus": corpus.len(),
        "child_restarts": restarts,
        "mutator_panics": mutator_panics,
        "max_heap_peak_bytes": max_peak,
        "outcomes": outcomes,
        "crashes": crashes.iter().map(|(s, c)| json!({
            "signature": s, "count": c.count, "file": c.file.display().to_string(),
            "minimised": c.minimised.as_ref().map(|p| p.display().to_string()), "detail": c.detail,
        })).collect::<Vec<_>>(),
        "caught_decoder_panics": caught,
    });
    let path = out.join(format!("summary-{}.json", target.name()));
    let _ = std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap_or_default());
    println!("{summary}");
    i32::from(!crashes.is_empty())
}

/// Cuts ranges out of a crashing input while it still crashes the same way (bounded tries).
fn minimise(mut child: ChildProc, input: &[u8], ext: u8, sig: &str, target: Target, mem_mb: usize, timeout: Duration) -> (Vec<u8>, ChildProc) {
    let mut best = input.to_vec();
    let mut tries = 0;
    let mut chunk = best.len() / 2;
    while chunk >= 1 && tries < 400 {
        let mut i = 0;
        while i < best.len() && tries < 400 {
            let mut cand = best[..i].to_vec();
            cand.extend_from_slice(&best[(i + chunk).min(best.len())..]);
            tries += 1;
            let same = match child.exec(&cand, ext, timeout) {
                Ok(v) => v["sig"].as_str() == Some(sig) && !matches!(v["status"].as_str(), Some("ok" | "error" | "caught")),
                Err((s, _)) => {
                    match ChildProc::start(target, mem_mb) {
                        Ok(c) => child = c,
                        Err(_) => return (best, child),
                    }
                    s == sig
                }
            };
            if same {
                best = cand;
            } else {
                i += chunk;
            }
        }
        chunk /= 2;
    }
    (best, child)
}
