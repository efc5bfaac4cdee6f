//! Human-readable reports: class accuracy, energy, the model card.

use spikeword::model::Model;
use std::path::Path;

pub fn print_class_report(r: &spikeword::eval::ClassReport) {
    println!(
        "{} clips ({} of trained-on speakers left out): accuracy {:.2}% spiking, {:.2}% non-spiking twin",
        r.clips,
        r.excluded_trained_speakers,
        100.0 * r.accuracy,
        100.0 * r.accuracy_dense
    );
    for p in &r.by_part {
        println!(
            "  {:<6} speakers: {:>5} clips, accuracy {:.2}% spiking, {:.2}% twin",
            format!("{:?}", p.part).to_lowercase(),
            p.clips,
            100.0 * p.accuracy,
            100.0 * p.accuracy_dense
        );
    }
    println!(
        "  (class at the clip's last frame instead of the streaming decision: {:.2}% spiking, {:.2}% twin)",
        100.0 * r.accuracy_end_of_clip,
        100.0 * r.accuracy_end_of_clip_dense
    );
    println!("{:<11}{:>10}{:>10}{:>12}{:>12}", "class", "precision", "recall", "prec.dense", "rec.dense");
    for (i, c) in r.classes.iter().enumerate() {
        println!("{c:<11}{:>10.3}{:>10.3}{:>12.3}{:>12.3}", r.precision[i], r.recall[i], r.precision_dense[i], r.recall_dense[i]);
    }
    println!("confusion (rows: true, columns: predicted, spiking):");
    print!("{:<11}", "");
    for c in &r.classes {
        print!("{:>6}", &c[..c.len().min(5)]);
    }
    println!();
    for (i, row) in r.confusion.iter().enumerate() {
        print!("{:<11}", r.classes[i]);
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
    print_energy(&r.energy);
    println!(
        "non-spiking twin: {:.3} uJ per second of audio (spike-driven connections {:.3} uJ/s)",
        r.energy_dense.total_energy_uj_per_second, r.energy_dense.event_energy_dense_uj_per_second
    );
}

pub fn print_energy(e: &spikeword::energy::EnergyReport) {
    println!(
        "spikes per frame per layer: {}; active fraction: {}",
        e.spikes_per_frame.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", "),
        e.active_fraction.iter().map(|s| format!("{:.1}%", 100.0 * s)).collect::<Vec<_>>().join(", ")
    );
    println!("bits per activity {:.2}; significant bits per weight multiply {:.2}", e.bits_per_activity, e.significant_bits_per_multiply);
    println!(
        "memory events per frame per layer: {} ({}); input events per frame: {:.1}",
        e.memory_events_per_frame.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", "),
        e.memory_event_fraction.iter().map(|s| format!("{:.1}%", 100.0 * s)).collect::<Vec<_>>().join(", "),
        e.input_events_per_frame
    );
    println!(
        "synaptic ops {:.0}/s vs dense MACs {:.0}/s on the spike-driven connections ({:.1}%)",
        e.synaptic_ops_per_second,
        e.dense_macs_per_second,
        100.0 * e.synaptic_ops_over_dense_macs
    );
    println!("{:<28}{:>10}{:>12}{:>12}{:>9}", "ops per frame", "adds", "multiplies", "dense MACs", "ratio");
    for (name, o) in [
        ("input (features in)", &e.ops_input),
        ("memory update", &e.ops_memory_update),
        ("memory read-out", &e.ops_memory_read),
        ("spike-fed (layers, readout)", &e.ops_spike_fed),
        ("whole network", &e.ops_total),
    ] {
        println!("{name:<28}{:>10.0}{:>12.0}{:>12.0}{:>9.3}", o.adds, o.multiplies, o.dense_macs, o.ops_over_dense);
    }
    println!(
        "energy ({} pJ/MAC, {} pJ/add, 45 nm): spike-driven {:.3} vs {:.3} uJ/s dense; whole network {:.3} vs {:.3} uJ/s",
        e.pj_per_mac,
        e.pj_per_add,
        e.event_energy_uj_per_second,
        e.event_energy_dense_uj_per_second,
        e.total_energy_uj_per_second,
        e.total_energy_dense_uj_per_second
    );
}

pub fn print_card(path: &Path, m: &Model) {
    let c = &m.card;
    let a = &c.architecture;
    println!("model      {} ({})", c.name, path.display());
    println!("labels     {}", c.labels.join(" "));
    let compression = c.frontend.compression.describe(c.frontend.frame_seconds());
    println!(
        "front end  {} Hz, {} mel bands ({compression}), {} ms window, {} ms hop",
        c.frontend.sample_rate,
        c.frontend.n_mels,
        c.frontend.win_length * 1000 / c.frontend.sample_rate as usize,
        c.frontend.hop_length * 1000 / c.frontend.sample_rate as usize
    );
    for (i, l) in a.layers.iter().enumerate() {
        println!(
            "layer {i}    LMU memory {} x order {} over {} frames -> {} spiking units{}",
            l.memory_d,
            l.order,
            l.theta,
            l.units,
            if l.memory_delta > 0.0 { format!("; memory read-out delta-coded, step {}", l.memory_delta) } else { String::new() }
        );
    }
    println!("readout    {} classes; dt = {}; {} parameters", a.classes, a.dt, a.parameter_count());
    if a.input_delta > 0.0 {
        println!("input      delta-coded in spiking mode, step {} (normalised {compression} mel)", a.input_delta);
    }
    let overrides = if c.detection.thresholds.is_empty() { " for every keyword".to_string() } else { format!(" (overrides: {:?})", c.detection.thresholds) };
    let reseed = match c.detection.reseed_level {
        l if l > 0.0 => format!(", front end's smoothed energy restarted a refractory time after a keyword reaches {l}"),
        _ => String::new(),
    };
    println!(
        "detection  threshold {}{overrides}, smoothing {} frames, refractory {} s{reseed}",
        c.detection.default_threshold, c.detection.smoothing_frames, c.detection.refractory_s
    );
    if !c.metrics.is_null() {
        println!("metrics    {}", serde_json::to_string_pretty(&c.metrics).unwrap_or_default());
    }
    if !c.provenance.is_null() {
        println!("provenance {}", serde_json::to_string_pretty(&c.provenance).unwrap_or_default());
    }
}

pub fn print_benchmark(r: &spikeword::eval::stream::BenchmarkReport) {
    println!("{:?} part; thresholds: {}", r.part, r.thresholds.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    if r.reseed_level > 0.0 {
        println!("(the front end's smoothed energy restarts a refractory time after a keyword reaches {})", r.reseed_level);
    }
    if r.part == spikeword::corpus::Part::Dev {
        println!(
            "(dev: {}% of the non-test ids, the split the model was trained on; its keyword clips, and the negatives of the dev and calibration parts, none of them trained on)",
            r.split.dev_percent
        );
    }
    const MAX_LISTED_FALSE_ALARMS: usize = 10;
    for m in &r.results {
        println!("== {:?} ==", m.mode);
        println!(
            "clean keyword clips ({}): recall {:.1}% ({} of {}{}), {} wrong-keyword detections",
            r.positive_source,
            100.0 * m.clean.recall,
            m.clean.caught,
            m.clean.clips,
            interval_text(&m.clean),
            m.clean.wrong_keyword
        );
        println!(
            "  per keyword: {}",
            m.clean.per_keyword.iter().map(|(k, (n, c))| format!("{k} {:.0}%", 100.0 * *c as f64 / (*n).max(1) as f64)).collect::<Vec<_>>().join(", ")
        );
        print_misses(&m.clips);
        if let Some(reset) = r.back_to_back_reset.filter(|_| m.back_to_back.clips > 0) {
            let reset = reset.describe();
            println!(
                "  the same clips back to back in one stream, {reset}: recall {:.1}% ({} of {})",
                100.0 * m.back_to_back.recall,
                m.back_to_back.caught,
                m.back_to_back.clips
            );
        }
        for (k, (snr, rec)) in m.noisy.iter().enumerate() {
            println!("in noise at {snr} dB SNR: recall {:.1}% ({} of {}{})", 100.0 * rec.recall, rec.caught, rec.clips, interval_text(rec));
            if let (Some((_, b)), Some(reset)) = (m.back_to_back_noisy.get(k), r.back_to_back_reset) {
                let reset = reset.describe();
                println!("  the same noisy clips back to back in one stream, {reset}: recall {:.1}% ({} of {})", 100.0 * b.recall, b.caught, b.clips);
            }
        }
        println!("false alarms: {} in {:.2} h = {:.2} per hour", m.false_alarms, m.negative_hours, m.false_alarms_per_hour);
        for n in &m.negatives {
            println!(
                "  {:<20} {:<15} {:>5} files {:>6.2} h {:>5} false alarms ({:.1}/h){}",
                n.source,
                format!("{:?}", n.kind),
                n.files,
                n.hours,
                n.false_alarms,
                n.false_alarms_per_hour,
                if n.excused > 0 { format!(", {} detections of keywords the sentences say", n.excused) } else { String::new() }
            );
        }
        // Where they were, so they can be listened to (the first few; all are in the JSON).
        let events: Vec<_> = m.negatives.iter().flat_map(|n| &n.events).collect();
        for e in events.iter().take(MAX_LISTED_FALSE_ALARMS) {
            println!("    {:<6} at {:>5.2} s in {}", e.keyword, e.at_s, e.file.display());
        }
        if events.len() > MAX_LISTED_FALSE_ALARMS {
            println!("    ... and {} more (all in the JSON report)", events.len() - MAX_LISTED_FALSE_ALARMS);
        }
        if m.in_sentence.clips > 0 {
            println!(
                "keywords said inside held-out sentences detected: {:.1}% ({} of {})",
                100.0 * m.in_sentence.recall,
                m.in_sentence.caught,
                m.in_sentence.clips
            );
        }
        for a in &m.recall_at {
            match a.threshold {
                Some(t) => println!(
                    "recall at <= {} false alarms/h (global threshold {t}): clean {:.1}%{}",
                    a.false_alarms_per_hour,
                    100.0 * a.recall_clean,
                    r.snr_db.iter().zip(&a.recall_noisy).map(|(s, v)| format!(", {s} dB {:.1}%", 100.0 * v)).collect::<String>()
                ),
                None => println!("recall at <= {} false alarms/h: no threshold reaches that rate", a.false_alarms_per_hour),
            }
        }
        if let Some(c) = m.ceiling() {
            println!(
                "most clean clips caught at any threshold: {:.1}% (at {}, {:.1} false alarms/h); no threshold catches the other {:.1}%",
                100.0 * c.recall_clean,
                c.threshold,
                c.false_alarms_per_hour,
                100.0 * (1.0 - c.recall_clean)
            );
        }
        if m.mode == spikeword::network::Mode::Spiking {
            print_energy(&m.energy);
        }
    }
}

/// Why clean clips were missed: another keyword peaked above theirs (heard as what), their own
/// keyword reached its threshold but another's detection came first and its refractory time
/// hid it, or their own keyword led and stayed under its threshold; and whether missed clips
/// are quieter.
fn print_misses(clips: &[spikeword::eval::score::ClipOutcome]) {
    let missed: Vec<_> = clips.iter().filter(|c| !c.caught).collect();
    if missed.is_empty() {
        return;
    }
    let mut heard_as: std::collections::BTreeMap<&str, usize> = Default::default();
    let (mut hidden, mut under) = (0, 0);
    for c in &missed {
        match &c.rival {
            Some((k, p)) if *p > c.peak => *heard_as.entry(k.as_str()).or_default() += 1,
            _ if c.peak >= c.threshold => hidden += 1,
            _ => under += 1,
        }
    }
    let led_by_another: usize = heard_as.values().sum();
    let mut heard: Vec<_> = heard_as.into_iter().collect();
    heard.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    // Median level of the missed and the caught clips (None when a group is empty).
    let level = |caught: bool| {
        let mut v: Vec<f32> = clips.iter().filter(|c| c.caught == caught).map(|c| c.level_dbfs).collect();
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let levels = match (level(false), level(true)) {
        (Some(m), Some(c)) => format!("; median level {m:.1} dBFS missed, {c:.1} caught"),
        _ => String::new(),
    };
    println!(
        "  missed {}: another keyword peaked higher in {led_by_another} ({}); its own reached its threshold after another's detection in {hidden}; its own led but stayed under its threshold in {under}{levels} (each clip in the JSON)",
        missed.len(),
        heard.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
    );
}

/// "; 95% 61.6-72.8% by speaker" where the recall has an interval.
fn interval_text(r: &spikeword::eval::score::Recall) -> String {
    r.interval.map_or(String::new(), |i| format!("; 95% {:.1}-{:.1}% by speaker", 100.0 * i.low, 100.0 * i.high))
}

pub fn print_comparison(
    a: &Path,
    b: &Path,
    part: spikeword::corpus::Part,
    (mode_a, mode_b): (spikeword::network::Mode, spikeword::network::Mode),
    diffs: &[spikeword::eval::compare::Difference],
) {
    let clips = diffs.first().map_or(0, |d| d.clips);
    let speakers = diffs.first().map_or(0, |d| d.speakers);
    println!("A {} ({mode_a:?}) against B {} ({mode_b:?}); {part:?} part, {clips} clips of {speakers} speakers, paired clip by clip", a.display(), b.display());
    for d in diffs {
        let interval = d.interval.map_or("no interval: one speaker".to_string(), |i| {
            let verdict = if i.low > 0.0 {
                "A ahead"
            } else if i.high < 0.0 {
                "B ahead"
            } else {
                "not told apart"
            };
            format!("95% {:+.1} to {:+.1} by speaker: {verdict}", 100.0 * i.low, 100.0 * i.high)
        });
        println!(
            "{:<8} A {:.1}%  B {:.1}%  A - B {:+.1} points ({interval}); caught by A only {}, by B only {}",
            d.condition,
            100.0 * d.recall_a,
            100.0 * d.recall_b,
            100.0 * d.difference,
            d.only_a,
            d.only_b
        );
    }
}
