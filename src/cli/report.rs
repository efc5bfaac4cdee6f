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
    println!("{:<11}{:>10}{:>10}{:>12}{:>12}", "class", "precision", "recall", "prec.dense", "rec.dense");
    for (i, c) in r.classes.iter().enumerate() {
        println!(
            "{c:<11}{:>10.3}{:>10.3}{:>12.3}{:>12.3}",
            r.precision[i], r.recall[i], r.precision_dense[i], r.recall_dense[i]
        );
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
    println!(
        "bits per activity {:.2}; significant bits per weight multiply {:.2}",
        e.bits_per_activity, e.significant_bits_per_multiply
    );
    println!(
        "synaptic ops {:.0}/s vs dense MACs {:.0}/s on the spike-driven connections ({:.1}%); fixed dense MACs {:.0}/s",
        e.synaptic_ops_per_second,
        e.dense_macs_per_second,
        100.0 * e.synaptic_ops_over_dense_macs,
        e.fixed_macs_per_second
    );
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
    println!(
        "front end  {} Hz, {} mel bands, {} ms window, {} ms hop",
        c.frontend.sample_rate,
        c.frontend.n_mels,
        c.frontend.win_length * 1000 / c.frontend.sample_rate as usize,
        c.frontend.hop_length * 1000 / c.frontend.sample_rate as usize
    );
    for (i, l) in a.layers.iter().enumerate() {
        println!(
            "layer {i}    LMU memory {} x order {} over {} frames -> {} spiking units",
            l.memory_d, l.order, l.theta, l.units
        );
    }
    println!("readout    {} classes; dt = {}; {} parameters", a.classes, a.dt, a.parameter_count());
    println!(
        "detection  threshold {} (overrides: {:?}), smoothing {} frames, refractory {} s",
        c.detection.default_threshold, c.detection.thresholds, c.detection.smoothing_frames, c.detection.refractory_s
    );
    if !c.metrics.is_null() {
        println!("metrics    {}", serde_json::to_string_pretty(&c.metrics).unwrap_or_default());
    }
    if !c.provenance.is_null() {
        println!("provenance {}", serde_json::to_string_pretty(&c.provenance).unwrap_or_default());
    }
}

