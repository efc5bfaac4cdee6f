//! Streaming training on sequences composed from real clips: the composed labels mean what
//! they say, the loss goes down, the exported file loaded by the inference engine
//! reproduces the trained network's outputs, and a run resumes from its checkpoint.

mod common;

use common::asset;
use rand::SeedableRng;
use spikeword::audio::load_resampled;
use spikeword::dataset::{label_index, SILENCE, UNKNOWN};
use spikeword::features::FrontEnd;
use spikeword::model::Model;
use spikeword::network::{LayerSpec, Mode};
use spikeword::train::compose::{compose, speech_span, ComposeConfig, HardOrigin, Pool, Said, Utterance};
use spikeword::train::loss::Target;
use spikeword::train::{make_examples, train, TrainConfig};

fn load(name: &str) -> Vec<f32> {
    load_resampled(&asset(name), 16_000).unwrap()
}

fn pool() -> Pool {
    let mut p = Pool::default();
    for (file, word) in [("yes_0cb74144.flac", "yes"), ("no_0cb74144.flac", "no"), ("stop_0fa1e7a9.flac", "stop"), ("go_0487ba9b.flac", "go")] {
        p.keywords_real.push(Utterance::keyword(load(file), label_index(word).unwrap()));
    }
    p.words.push(Utterance::new(load("unknown_backward_0cb74144.flac"), Vec::new()));
    p.noise.push(load("noise_pink_3s.flac"));
    p
}

#[test]
fn composed_sequences_label_the_window_after_the_keyword() {
    let pool = pool();
    let cfg = ComposeConfig { p_keyword: 1.0, p_speed: 0.0, snr_db: (10.0, 30.0), ..Default::default() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut with_window = 0;
    for _ in 0..20 {
        let s = compose(&pool, &cfg, 300, 160, &mut rng);
        assert_eq!(s.audio.len(), 300 * 160);
        assert_eq!(s.labels.targets.len(), 300);
        for &(a, b, label) in &s.labels.windows {
            with_window += 1;
            assert!(label < UNKNOWN, "windows are for keywords");
            assert_eq!(b - a, (cfg.window_end - cfg.window_start) as usize);
            assert!(s.labels.targets[a..=b].iter().all(|t| *t == Target::Keyword(label)));
            // Just before the window the word is still being said: no target.
            assert_eq!(s.labels.targets[a - 1], Target::Ignore);
            // Just after it the smoothed scores still hold the window's (and the detector
            // is in its refractory time): no target either, then background again.
            let tail_end = (b + 1 + cfg.window_tail).min(300);
            assert!(s.labels.targets[b + 1..tail_end].iter().all(|t| *t == Target::Ignore), "tail after the window is ignored");
            if tail_end < 300 {
                assert!(matches!(s.labels.targets[tail_end], Target::Background(_)), "background resumes after the tail");
            }
            // The word's audio is there: the frames before the window are louder than the
            // sequence's quietest stretch.
            let e = |f: usize| s.audio[f * 160..(f + 1) * 160].iter().map(|v| v * v).sum::<f32>();
            let word: f32 = (a.saturating_sub(20)..a).map(e).sum();
            let quiet = (0..300 - 20).map(|f0| (f0..f0 + 20).map(e).sum::<f32>()).fold(f32::MAX, f32::min);
            assert!(word > 4.0 * quiet, "word energy {word} vs quietest {quiet}");
        }
        // Every other frame is a background class or ignored.
        assert!(s.labels.targets.iter().all(|t| matches!(t, Target::Ignore | Target::Keyword(_) | Target::Background(UNKNOWN) | Target::Background(SILENCE))));
    }
    assert!(with_window >= 18, "{with_window} of 20 sequences got a keyword window");
    // Without keywords, no windows and no keyword targets.
    let cfg = ComposeConfig { p_keyword: 0.0, p_speech: 0.0, p_words: 1.0, ..Default::default() };
    for _ in 0..10 {
        let s = compose(&pool, &cfg, 300, 160, &mut rng);
        assert!(s.labels.windows.is_empty());
        assert!(s.labels.targets.contains(&Target::Background(UNKNOWN)), "words are labelled as speech");
    }
}

#[test]
fn sequences_can_start_with_a_warm_front_end() {
    let pool = pool();
    let cfg = ComposeConfig { p_warm: 1.0, warm_seconds: (0.5, 1.5), ..Default::default() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut heard = 0;
    for _ in 0..20 {
        let s = compose(&pool, &cfg, 300, 160, &mut rng);
        // Whole hops, so the labelled frames stay aligned with the audio after it.
        assert_eq!(s.warm_up.len() % 160, 0);
        let hops = s.warm_up.len() / 160;
        assert!((50..=150).contains(&hops), "{hops} hops of warm-up for 0.5-1.5 s");
        assert_eq!(s.audio.len(), 300 * 160);
        assert_eq!(s.labels.targets.len(), 300);
        heard += usize::from(s.warm_up.iter().any(|v| v.abs() > 1e-4));
    }
    assert!(heard >= 15, "only {heard} of 20 warm-ups have sound in them");
    let cold = ComposeConfig { p_warm: 0.0, ..Default::default() };
    for _ in 0..5 {
        assert!(compose(&pool, &cold, 300, 160, &mut rng).warm_up.is_empty());
    }
}

fn tiny_config(out: &std::path::Path) -> TrainConfig {
    TrainConfig {
        out: out.to_path_buf(),
        epochs: 6,
        batch: 8,
        lr: 5e-3,
        sequences_per_epoch: 32,
        layers: vec![
            LayerSpec { memory_d: 8, order: 6, theta: 50.0, units: 32, memory_delta: 0.0 },
            LayerSpec { memory_d: 4, order: 4, theta: 20.0, units: 24, memory_delta: 0.0 },
        ],
        dense_epochs: 2,
        start_dt: 8.0,
        target_dt: 2.0,
        anneal_epochs: 2,
        freq_masks: 0,
        time_masks: 0,
        mine_every: 2,
        eval_every: 0,
        compose: ComposeConfig { seconds: 2.0, ..Default::default() },
        ..Default::default()
    }
}

#[test]
fn training_lowers_the_loss_and_the_export_matches_inference() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let model = train(&cfg, false, Some(pool())).unwrap();
    let log = model.card.metrics["epochs"].as_array().unwrap();
    let first = log.first().unwrap()["loss"].as_f64().unwrap();
    let last = log.last().unwrap()["loss"].as_f64().unwrap();
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    assert_eq!(model.card.architecture.dt, 2.0);

    // The file written by training, loaded by the engine, streams the same scores as the
    // whole-sequence computation training optimised.
    let loaded = Model::load(&dir.path().join("model.safetensors")).unwrap();
    assert_eq!(loaded.weights, model.weights);
    let examples = make_examples(&pool(), &cfg, 4, 99, "test");
    for ex in &examples {
        let mut net = loaded.network();
        let streamed: Vec<Vec<f32>> = ex.features.chunks(40).map(|f| net.step(f).to_vec()).collect();
        let seq = model.network().forward_sequence(&ex.features, Mode::Spiking, None).logits;
        let matching =
            streamed.iter().enumerate().filter(|(t, row)| row.iter().enumerate().all(|(c, &z)| (z - seq[[*t, c]]).abs() <= 1e-3 * (1.0 + z.abs()))).count();
        assert!(matching * 100 >= 95 * streamed.len(), "{matching}/{} frames match", streamed.len());
    }
    // Features of a composed sequence are what the front end computes of its audio.
    assert_eq!(examples[0].features.len(), cfg.frames() * 40);
    let _ = FrontEnd::new(cfg.frontend.clone()).unwrap();

    // The weight average runs over the epochs after dt reached its target (4, 5, 6): it is
    // neither the last epoch's weights nor left at zero.
    let averaged = |d: &std::path::Path| -> u64 {
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("checkpoint.json")).unwrap()).unwrap();
        state["averaged"].as_u64().unwrap()
    };
    assert_eq!(averaged(dir.path()), 3);
    let average = Model::load(&dir.path().join("average.safetensors")).unwrap();
    let last_weights = Model::load(&dir.path().join("checkpoint.safetensors")).unwrap().weights;
    assert_ne!(average.weights, last_weights);
    let w_last = last_weights.tensors();
    let w_avg = average.weights.tensors();
    let (_, out_last) = w_last.last().unwrap();
    let (_, out_avg) = w_avg.last().unwrap();
    let dist = out_last.iter().zip(out_avg.iter()).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
    let norm = out_last.iter().map(|a| a * a).sum::<f32>().sqrt();
    assert!(dist > 0.0 && dist < 0.5 * norm, "average is {dist} from the last weights (norm {norm})");

    // Resuming from the checkpoint continues, rather than restarting; so does the average.
    let more = TrainConfig { epochs: 7, ..cfg };
    let resumed = train(&more, true, Some(pool())).unwrap();
    assert_eq!(resumed.card.metrics["epochs"].as_array().unwrap().len(), 7);
    assert_eq!(averaged(dir.path()), 4);
}

#[test]
fn a_run_is_reproducible_from_its_configuration() {
    // Dense epochs, one mining pass and spiking epochs: two runs of one configuration give
    // the same weights bit for bit, whatever the thread pool made of each batch.
    let cfg = |d: &std::path::Path| TrainConfig { epochs: 3, anneal_epochs: 1, ..tiny_config(d) };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = train(&cfg(a.path()), false, Some(pool())).unwrap();
    let second = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| train(&cfg(b.path()), false, Some(pool())).unwrap());
    assert_eq!(first.weights, second.weights);
    // A different seed is a different run (so the check above could fail).
    let c = tempfile::tempdir().unwrap();
    let third = train(&TrainConfig { seed: 7, ..cfg(c.path()) }, false, Some(pool())).unwrap();
    assert_ne!(first.weights, third.weights);
}

#[test]
fn a_stopped_run_resumes_to_the_weights_of_an_unbroken_one() {
    // A sentence that says a keyword, so the hard negatives carry frames left out of the
    // loss; mining at every firing (threshold 0), so there are hard negatives to carry over
    // the stop (mining runs before epochs 3 and 5; the stop is after epoch 3).
    let p = || {
        let mut p = pool();
        let (word, yes) = (load("unknown_backward_0cb74144.flac"), load("yes_0cb74144.flac"));
        let (a, b) = speech_span(&yes);
        let said = Said { label: label_index("yes").unwrap(), start: word.len() + a, end: word.len() + b };
        p.speech.push(Utterance::new([word.as_slice(), yes.as_slice()].concat(), vec![said]));
        p
    };
    let cfg = |d: &std::path::Path| TrainConfig {
        epochs: 5,
        mine_threshold: 0.0,
        mine_fraction: 1.0,
        compose: ComposeConfig { seconds: 2.0, p_hard: 0.5, ..Default::default() },
        ..tiny_config(d)
    };
    let unbroken_dir = tempfile::tempdir().unwrap();
    let unbroken = train(&cfg(unbroken_dir.path()), false, Some(p())).unwrap();

    let stopped = |d: &std::path::Path| {
        let first = train(&TrainConfig { stop_after: Some(3), ..cfg(d) }, false, Some(p())).unwrap();
        assert_eq!(first.card.metrics["epochs"].as_array().unwrap().len(), 3);
        let listed: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(d.join("hard_negatives.json")).unwrap()).unwrap();
        assert!(!listed.is_empty(), "no hard negatives to carry over");
    };
    let resumed_dir = tempfile::tempdir().unwrap();
    stopped(resumed_dir.path());
    // A run started under another train/dev split is not continued on this one's audio, and
    // the refusal leaves the run's saved settings as they were.
    let dev = spikeword::corpus::Split::default().dev_percent;
    let other = TrainConfig { split: spikeword::corpus::Split { dev_percent: dev + 1 }, ..cfg(resumed_dir.path()) };
    let saved = std::fs::read_to_string(resumed_dir.path().join("config.json")).unwrap();
    let err = train(&other, true, Some(p())).unwrap_err().to_string();
    assert!(err.contains("checkpoint.safetensors") && err.contains(&format!("{dev}%")) && err.contains(&format!("{}%", dev + 1)), "{err}");
    assert_eq!(std::fs::read_to_string(resumed_dir.path().join("config.json")).unwrap(), saved);
    let resumed = train(&cfg(resumed_dir.path()), true, Some(p())).unwrap();
    assert_eq!(resumed.card.metrics["epochs"].as_array().unwrap().len(), 5);
    assert_eq!(resumed.weights, unbroken.weights);

    // A run killed while saving an epoch resumes from one whole epoch. The files an epoch
    // leaves, taken from a run stopped one epoch later:
    let files = ["adam_m.safetensors", "adam_v.safetensors", "average.safetensors", "hard_negatives.json", "checkpoint.safetensors"];
    let later = tempfile::tempdir().unwrap();
    train(&TrainConfig { stop_after: Some(4), ..cfg(later.path()) }, false, Some(p())).unwrap();
    let copy_pending = |to: &std::path::Path, moved: &[&str]| {
        for f in files.iter().filter(|f| later.path().join(f).is_file()) {
            let dest = if moved.contains(f) { to.join(f) } else { to.join(format!("pending-{f}")) };
            std::fs::copy(later.path().join(f), dest).unwrap();
        }
    };
    // No file a save leaves behind only while it is unfinished.
    let no_pending = |d: &std::path::Path| {
        let names = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
        let left: Vec<String> = names.filter(|n| n.starts_with("pending-") || n.ends_with(".tmp")).collect();
        assert!(left.is_empty(), "{left:?}");
    };
    // Killed before the commit (checkpoint.json still says 3 epochs): epoch 4's files are dropped.
    let uncommitted = tempfile::tempdir().unwrap();
    stopped(uncommitted.path());
    copy_pending(uncommitted.path(), &[]);
    assert_eq!(train(&cfg(uncommitted.path()), true, Some(p())).unwrap().weights, unbroken.weights);
    no_pending(uncommitted.path());
    // Killed after the commit, with one file already moved into place: the others follow it.
    let committed = tempfile::tempdir().unwrap();
    stopped(committed.path());
    copy_pending(committed.path(), &["adam_m.safetensors"]);
    std::fs::copy(later.path().join("checkpoint.json"), committed.path().join("checkpoint.json")).unwrap();
    assert_eq!(train(&cfg(committed.path()), true, Some(p())).unwrap().weights, unbroken.weights);
    no_pending(committed.path());

    // A new run in an earlier run's folder owes it nothing: over all that run left, a best
    // checkpoint included (this run scores no dev epoch, so it never writes its own), it
    // returns what it trained.
    let reused = tempfile::tempdir().unwrap();
    for f in files.iter().chain(&["checkpoint.json"]).filter(|f| later.path().join(f).is_file()) {
        std::fs::copy(later.path().join(f), reused.path().join(f)).unwrap();
    }
    std::fs::copy(later.path().join("checkpoint.safetensors"), reused.path().join("best.safetensors")).unwrap();
    assert_eq!(train(&cfg(reused.path()), false, Some(p())).unwrap().weights, unbroken.weights);

    // Without the list, the resumed run trains on other sequences and ends elsewhere: the
    // check above could fail.
    let lost_dir = tempfile::tempdir().unwrap();
    stopped(lost_dir.path());
    std::fs::remove_file(lost_dir.path().join("hard_negatives.json")).unwrap();
    let lost = train(&cfg(lost_dir.path()), true, Some(p())).unwrap();
    assert_ne!(lost.weights, unbroken.weights);

    // A checkpoint cut short (a run killed while writing it, before writes were atomic) is
    // refused by name, with what to do, and nothing of the run is touched.
    let cut_dir = tempfile::tempdir().unwrap();
    stopped(cut_dir.path());
    let state = cut_dir.path().join("checkpoint.json");
    let whole = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, &whole[..whole.len() / 2]).unwrap();
    let weights = std::fs::read(cut_dir.path().join("checkpoint.safetensors")).unwrap();
    let err = format!("{:#}", train(&cfg(cut_dir.path()), true, Some(p())).unwrap_err());
    assert!(err.contains("checkpoint.json") && err.contains("without --resume"), "{err}");
    assert_eq!(std::fs::read(cut_dir.path().join("checkpoint.safetensors")).unwrap(), weights);
    // The writes leave no temporary or pending files behind.
    no_pending(cut_dir.path());

    // A list that names audio the data no longer has is refused, not cut short.
    let gone = [HardOrigin { utterances: vec![0, 9], start: 0, end: 160 }];
    let err = spikeword::train::mine::rebuild(&p(), &gone, 160, 16_000).unwrap_err();
    assert!(err.contains("utterance 9"), "{err}");
    let past_end = [HardOrigin { utterances: vec![0], start: 0, end: 10_000_000 }];
    assert!(spikeword::train::mine::rebuild(&p(), &past_end, 160, 16_000).is_err());
}

#[test]
fn noise_is_mixed_at_the_drawn_snr_against_the_word_itself() {
    // eval-stream measures SNR against the word's speech span; training must mean the same
    // thing, or "10 dB" in training is several dB easier than "10 dB" in the benchmark.
    let mut pool = pool();
    pool.keywords_real.truncate(1);
    pool.words.clear();
    let word = pool.keywords_real[0].active;
    let len = word.1 - word.0;
    let cfg = ComposeConfig { p_keyword: 1.0, p_speed: 0.0, p_reverb: 0.0, p_noise: 1.0, snr_db: (10.0, 10.001), ..Default::default() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let power = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let mut snrs = Vec::new();
    for _ in 0..15 {
        let s = compose(&pool, &cfg, 300, 160, &mut rng);
        let &(a, _, _) = s.labels.windows.first().expect("a keyword window");
        // The word ends where its window starts (window_start frames earlier).
        let end = ((a as i32 - cfg.window_start) * 160) as usize;
        let span = &s.audio[end - len..end];
        // The first quarter second is before any word: noise alone.
        let noise = power(&s.audio[..4000]);
        snrs.push(10.0 * ((power(span) - noise) / noise).log10());
    }
    snrs.sort_by(|a, b| a.total_cmp(b));
    let median = snrs[snrs.len() / 2];
    assert!((median - 10.0).abs() < 2.0, "speech-span SNR {median:.1} dB, asked for 10 dB ({snrs:?})");
}
