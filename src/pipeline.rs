//! The streaming path shared by the CLI, the evaluator and the app: 16 kHz samples in,
//! one front-end frame, one network step and one detector update per 10 ms.

use crate::detect::{Detection, Detector};
use crate::features::FrontEnd;
use crate::model::Model;
use crate::network::Network;
use std::time::Instant;

/// Nanoseconds each stage spent on one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameTiming {
    pub frontend_ns: u64,
    pub network_ns: u64,
    pub detect_ns: u64,
}

impl FrameTiming {
    pub fn total_ns(&self) -> u64 {
        self.frontend_ns + self.network_ns + self.detect_ns
    }
}

/// What one frame produced.
pub struct FrameReport<'a> {
    /// Frame index since the stream started (or was reset).
    pub index: u64,
    /// Seconds of audio up to the end of this frame.
    pub time: f64,
    pub features: &'a [f32],
    /// Smoothed class probabilities.
    pub probs: &'a [f32],
    /// The network after this frame's step: its logits, stats and every layer's output.
    pub network: &'a Network,
    pub detection: Option<Detection>,
    pub timing: FrameTiming,
}

pub struct Pipeline {
    pub frontend: FrontEnd,
    pub network: Network,
    pub detector: Detector,
    frame: Vec<f32>,
    frames: u64,
    frame_seconds: f64,
}

impl Pipeline {
    pub fn new(model: &Model) -> Self {
        let frontend = model.frontend();
        let frame_seconds = frontend.config().frame_seconds();
        Self { frame: vec![0.0; frontend.n_mels()], frontend, network: model.network(), detector: model.detector(), frames: 0, frame_seconds }
    }

    pub fn sample_rate(&self) -> u32 {
        self.frontend.config().sample_rate
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn reset(&mut self) {
        self.frontend.reset();
        self.network.reset();
        self.detector.reset();
        self.frames = 0;
    }

    /// Feeds samples at the model's rate; `on_frame` sees every completed frame.
    pub fn push(&mut self, samples: &[f32], mut on_frame: impl FnMut(FrameReport<'_>)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = self.frontend.samples_to_next_frame().min(rest.len());
            let t0 = Instant::now();
            let mut got = false;
            let frame = &mut self.frame;
            self.frontend.push(&rest[..take], |f| {
                frame.copy_from_slice(f);
                got = true;
            });
            rest = &rest[take..];
            if !got {
                continue;
            }
            let t1 = Instant::now();
            self.network.step(&self.frame);
            let t2 = Instant::now();
            let detection = self.detector.push(self.network.logits());
            if self.detector.config().reseed_level > 0.0 && self.detector.refractory_ends_next() {
                self.frontend.restart_smoothing();
            }
            let t3 = Instant::now();
            self.frames += 1;
            on_frame(FrameReport {
                index: self.frames - 1,
                time: self.frames as f64 * self.frame_seconds,
                features: &self.frame,
                probs: self.detector.probabilities(),
                network: &self.network,
                detection,
                timing: FrameTiming {
                    frontend_ns: (t1 - t0).as_nanos() as u64,
                    network_ns: (t2 - t1).as_nanos() as u64,
                    detect_ns: (t3 - t2).as_nanos() as u64,
                },
            });
        }
    }

    /// Runs a whole buffer and returns its detections.
    pub fn detections(&mut self, samples: &[f32]) -> Vec<Detection> {
        let mut out = Vec::new();
        self.push(samples, |r| out.extend(r.detection));
        out
    }
}

/// Median and 99th percentile of `values` (sorted in place).
pub fn median_p99(values: &mut [f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Median and 99th percentile of durations in nanoseconds, in microseconds.
pub fn median_p99_us(ns: &[u64]) -> (f64, f64) {
    let mut us: Vec<f64> = ns.iter().map(|&v| v as f64 / 1000.0).collect();
    median_p99(&mut us)
}
