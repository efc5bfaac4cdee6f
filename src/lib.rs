//! spikeword: a real-time keyword spotter whose network is a hybrid spiking Legendre
//! Memory Unit (Voelker, Rasmussen, Eliasmith 2020).
//!
//! Audio -> [`features`] (log-mel) -> [`network`] (LMU memories + spiking layers) ->
//! [`detect`] (smoothing, thresholds) -> keyword events, one 10 ms frame at a time.

pub mod app;
pub mod audio;
pub mod augment;
pub mod capture;
pub mod corpus;
pub mod dataset;
pub mod detect;
pub mod energy;
pub mod eval;
pub mod features;
pub mod kernels;
pub mod lmu;
pub mod model;
pub mod network;
pub mod pipeline;
pub mod progress;
pub mod synth;
pub mod train;
