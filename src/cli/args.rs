//! Command-line flags: every subcommand and its options (clap), apart from the code they drive.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "spikeword",
    version,
    about = "Keyword spotting with a hybrid spiking Legendre Memory Unit",
    long_about = "Keyword spotting with a hybrid spiking Legendre Memory Unit.\n\n\
        Audio is turned into log-mel frames every 10 ms; each frame advances a network whose\n\
        memories are linear Legendre Memory Units and whose hidden neurons emit spikes.\n\
        Without --model, the shipped model in models/ is used.\n\n\
        With no subcommand, opens the live dashboard on the default microphone."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// App: model file (.safetensors); default: the shipped model.
    #[arg(short, long)]
    pub model: Option<PathBuf>,
    /// App: play this audio file in real time (looping) instead of listening to a microphone.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// App: input device (name, id, or part of either); default: the system's default input.
    #[arg(short, long)]
    pub device: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Spot keywords in an audio file, or live from a microphone with --mic; prints one JSON
    /// line per detection: {"time","keyword","score"} (with --mic also "wall", Unix seconds).
    Listen {
        /// Audio file (wav, flac, ogg, mp3; any rate and channel count).
        #[arg(short, long, required_unless_present = "mic", conflicts_with = "mic")]
        input: Option<PathBuf>,
        /// Listen to a microphone through the app's capture pipeline, headless. Status lines
        /// carry an "event" key (listening, first_audio, stalled, error, end).
        #[arg(long)]
        mic: bool,
        /// With --mic: input device (name, id, or part of either); default: the system's.
        #[arg(short, long, requires = "mic")]
        device: Option<String>,
        /// With --mic: stop after this many seconds (default: run until interrupted).
        #[arg(long, requires = "mic")]
        seconds: Option<f64>,
        /// With --mic: also print a line per 10 ms frame: {"frame","time","energy","top","p","wall"}
        /// (top: the most probable keyword, p: its smoothed probability)
        /// (energy: mean log-mel).
        #[arg(long, requires = "mic")]
        frames: bool,
        /// Model file (.safetensors); default: the shipped model.
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// Probability a keyword must reach to fire, for every keyword (default: the model's).
        #[arg(short, long)]
        threshold: Option<f32>,
        /// Restart the front end's smoothed energy a refractory time after a keyword's
        /// probability reaches this level (0: never; default: the model's).
        #[arg(long)]
        reseed_level: Option<f32>,
        /// Run the non-spiking twin (ReLU rates instead of spikes) with the same weights.
        #[arg(long)]
        dense: bool,
    },
    /// Print the model card: labels, architecture, detection defaults, measured metrics.
    Info {
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// The whole card as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train a model (spikes forward, rate gradients backward, dt annealed to the target).
    Train(TrainArgs),
    /// Clip accuracy on a folder laid out like Speech Commands (one sub-folder per class),
    /// spiking model and its non-spiking twin side by side, with energy figures.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// Include clips of speakers the shipped model was trained on (by default they are
        /// left out, so the accuracy is on unseen speakers).
        #[arg(long)]
        all_speakers: bool,
        /// Print the whole report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Two eval-stream reports of the same clips (the .json beside each --plot), paired clip
    /// by clip: each model's recall, clean and at every SNR both measured, and A's lead over B
    /// with a 95% interval that resamples speakers, so that a difference smaller than the
    /// speakers' own spread is not read as a better model.
    Compare {
        /// Report A (e.g. the candidate).
        a: PathBuf,
        /// Report B (e.g. the shipped model), measured on the same part and data.
        b: PathBuf,
        /// Compare the non-spiking twins instead of the spiking networks.
        #[arg(long, conflicts_with = "b_twin")]
        twin: bool,
        /// A's spiking network against B's twin: with one report as both A and B, how far the
        /// spiking network is from its twin.
        #[arg(long)]
        b_twin: bool,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The streaming benchmark on held-out data: recall of clean keyword clips (each streamed
    /// with silence around it), recall in noise, false alarms per hour over every held-out
    /// negative source (continuous speech and isolated words), recall at 0.5/1/2 false alarms
    /// per hour, and the detection-error trade-off plot; spiking network and its twin.
    EvalStream {
        /// The shared data folder (see ../shared/data/README.md).
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// Which part of every source: `test` (never trained or tuned on), `dev` (chooses
        /// checkpoints), or `train` (how well the model fits what it learnt from).
        #[arg(long, value_enum, default_value = "test")]
        part: spikeword::corpus::Part,
        /// SNRs (dB) at which keyword clips are also mixed into held-out noise.
        #[arg(long, num_args = 0.., default_values_t = [10.0f32])]
        snr: Vec<f32>,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// One threshold for every keyword instead of the model's calibrated ones.
        #[arg(short, long)]
        threshold: Option<f32>,
        /// Skip the non-spiking twin.
        #[arg(long)]
        no_twin: bool,
        /// At most this many clips or files per source (a quick look).
        #[arg(long)]
        limit: Option<usize>,
        /// Play every recording this many dB louder or quieter (level robustness).
        #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
        gain_db: f32,
        /// What the back-to-back stream resets before each clip: none (as in use), front-end,
        /// network or all (each clip as a fresh trial). Tells whose state costs recall there.
        #[arg(long, value_enum, default_value_t = spikeword::eval::stream::BackToBackReset::None)]
        back_to_back_reset: spikeword::eval::stream::BackToBackReset,
        /// Restart the front end's smoothed energy a refractory time after a keyword's
        /// probability reaches this level (0: never), instead of the model file's level.
        #[arg(long)]
        reseed_level: Option<f32>,
        /// With `--part dev`: a smaller dev part than the model's own (percent of the non-test
        /// ids), to compare models trained on different splits on the dev they share. A
        /// larger dev holds every smaller one, and so does its calibration part, so the
        /// model never trained on it either; a larger value than the model's is refused.
        #[arg(long)]
        dev_percent: Option<u64>,
        /// Where to write the DET plot (PNG) and the whole report (same name, .json).
        #[arg(long, default_value = "det.png")]
        plot: PathBuf,
        /// Print the whole report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Choose per-keyword thresholds on non-test audio (by default the calibration and dev
    /// parts of every negative source, which training never sees) and write them into a copy
    /// of the model file.
    Calibrate {
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// Parts whose negatives set the thresholds (never `test`).
        #[arg(long, value_enum, num_args = 1.., default_values_t = [spikeword::corpus::Part::Calib, spikeword::corpus::Part::Dev])]
        parts: Vec<spikeword::corpus::Part>,
        /// False alarms per hour each keyword may raise on those negatives.
        #[arg(long, default_value_t = 0.1)]
        per_keyword_per_hour: f64,
        /// global: one threshold for all keywords from their pooled false alarms (steadier
        /// on little audio); per-keyword: each keyword's own.
        #[arg(long, value_enum, default_value_t = spikeword::eval::calibrate::Method::Global)]
        method: spikeword::eval::calibrate::Method,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// The calibrated model file to write.
        #[arg(long)]
        out: PathBuf,
        /// Also set the level at which a keyword restarts the front end's smoothed energy a
        /// refractory time later (0: never; default: keep the model's). Thresholds are
        /// chosen on streams that restart at it.
        #[arg(long)]
        reseed_level: Option<f32>,
    },
    /// Make training data: `spikeword data synth` renders the keywords and many other words
    /// with every installed offline text-to-speech voice (install them with scripts/install-tts.sh).
    Data {
        #[command(subcommand)]
        action: DataCommand,
    },
    /// Choose the delta-coding steps of a model (layer 0's input, each memory read-out): the
    /// largest that keep clip accuracy within --tolerance points of the exact spiking network,
    /// on clips of speakers outside the test part; writes them into a copy of the model.
    CalibrateDelta {
        /// A folder laid out like Speech Commands (class sub-folders).
        #[arg(long, default_value = "../shared/data/speech_commands_v2_test_a")]
        data: PathBuf,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// The model file to write (omit to only report).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Accuracy (points) the coded network may lose against the exact one.
        #[arg(long, default_value_t = 0.5)]
        tolerance: f64,
        /// Only the dev speakers (default: every speaker outside the test part).
        #[arg(long)]
        dev_only: bool,
        /// Skip the search: measure (and write) these steps, e.g. `--set 0.1,0.2,0.3`.
        #[arg(long, value_delimiter = ',')]
        set: Option<Vec<f32>>,
        /// Use at most this many clips.
        #[arg(long)]
        limit: Option<usize>,
        /// Sub-frame offsets at which every clip is streamed (averages out the decision
        /// noise of a spiking network).
        #[arg(long, default_value_t = 4)]
        offsets: usize,
        /// Print the whole report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Per-frame latency of each stage (median and p99, microseconds), the whole per-frame
    /// path, the spiking step against its dense twin in the same run, the real-time factor
    /// and the arithmetic per frame.
    Bench {
        /// Audio to run (default: the speech and noise clips in assets/, or a built-in test
        /// signal when they are not there).
        #[arg(short, long)]
        input: Option<PathBuf>,
        #[arg(short, long)]
        model: Option<PathBuf>,
        /// Repeat the audio this many times.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Override the model's delta-coding steps: layer 0's input, then each layer's
        /// memory read-out (0 switches a coding off), e.g. `--deltas 0.1,0.1,0.3`.
        #[arg(long, value_delimiter = ',')]
        deltas: Option<Vec<f32>>,
        /// Use the portable kernels even where AVX2/FMA are available.
        #[arg(long)]
        portable: bool,
        /// Print the whole report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Render synthetic keyword speech, one folder per class, 1 s 16 kHz WAV clips.
    Synth {
        #[arg(long, default_value = "data/synth")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Renders of each keyword per voice (each with its own speed and pitch).
        #[arg(long, default_value_t = 4)]
        variants: usize,
        /// Voices (drawn at random) that say each non-keyword word.
        #[arg(long, default_value_t = 12)]
        unknown_voices: usize,
        /// Parallel renders.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
}

/// `spikeword train`: the defaults are the shipped model's settings.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Folder with the real recordings (see ../shared/data/README.md).
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Folder of synthetic keyword speech made by `spikeword data synth` (skipped if absent).
    #[arg(long, default_value = "data/synth")]
    pub synth: PathBuf,
    /// Run folder: checkpoints, logs and the final model.safetensors.
    #[arg(long, default_value = "runs/kws12")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training sequences composed afresh for every epoch.
    #[arg(long)]
    pub sequences_per_epoch: Option<usize>,
    /// Seconds per training sequence.
    #[arg(long)]
    pub seconds: Option<f32>,
    /// Use at most this many files per source (a quick run).
    #[arg(long)]
    pub limit_files: Option<usize>,
    /// Front-end compression: pcen (per-channel energy normalisation, level-independent; won
    /// on the dev part) or log (plain log-mel).
    #[arg(long, default_value = "pcen")]
    pub frontend: String,
    /// Any other setting of the run's configuration (see config.json in a run folder), as
    /// dotted.path=JSON value, e.g. `--set compose.p_second_keyword=0.5 --set lr=0.001`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Memory channels of each layer (comma-separated, e.g. 32,16).
    #[arg(long, value_delimiter = ',')]
    pub memory_d: Option<Vec<usize>>,
    /// Spiking time step the schedule ends at.
    #[arg(long)]
    pub target_dt: Option<f32>,
    /// Epochs of the non-spiking network before spiking starts.
    #[arg(long)]
    pub dense_epochs: Option<usize>,
    /// Epochs over which dt decays geometrically from its start value to --target-dt.
    #[arg(long)]
    pub anneal_epochs: Option<usize>,
    /// Spiking units in every hidden layer.
    #[arg(long)]
    pub units: Option<usize>,
    /// Firing-rate regulariser weight.
    #[arg(long)]
    pub rate_reg: Option<f32>,
    /// Continue from the run folder's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this epoch (checkpointed), to go on later with --resume; a resumed run
    /// ends with the same weights as one never stopped.
    #[arg(long, value_name = "EPOCH")]
    pub stop_after: Option<usize>,
    /// Also copy the final model here (e.g. models/spikeword-kws12.safetensors).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Skip choosing thresholds on the train and dev negatives at the end.
    #[arg(long)]
    pub no_calibrate: bool,
}
