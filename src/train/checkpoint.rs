//! The files a run keeps for `--resume`, and how they are saved so that a run killed at any
//! moment goes on from one whole epoch.

use super::compose::{HardOrigin, Pool};
use super::{mine, Adam, EpochLog, TrainConfig};
use crate::model::Model;
use crate::network::Weights;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The file whose (atomic) write commits an epoch; `--resume` goes on from the epoch it records.
pub(super) const CHECKPOINT_STATE: &str = "checkpoint.json";

/// What `checkpoint.json` records; writing it commits an epoch.
#[derive(Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub next_epoch: usize,
    pub adam_t: i32,
    pub log: Vec<EpochLog>,
    pub best_score: Option<f64>,
    /// Epochs summed into `average.safetensors` so far.
    #[serde(default)]
    pub averaged: usize,
}

/// The files an epoch leaves for `--resume`. Each epoch writes them as `pending-<name>`,
/// commits by writing `checkpoint.json`, then moves them into place, `checkpoint.safetensors`
/// last; `settle` finishes or undoes what a kill cut short, so a resumed run always starts
/// from one whole epoch and ends where an unbroken run would.
const EPOCH_FILES: [&str; 5] = ["adam_m.safetensors", "adam_v.safetensors", "average.safetensors", "hard_negatives.json", "checkpoint.safetensors"];

pub(super) fn pending(out: &std::path::Path, name: &str) -> std::path::PathBuf {
    out.join(format!("pending-{name}"))
}

/// Moves an epoch's pending files into place.
pub(super) fn move_pending(out: &std::path::Path) -> Result<()> {
    for name in EPOCH_FILES {
        let p = pending(out, name);
        if p.is_file() {
            std::fs::rename(&p, out.join(name)).with_context(|| format!("moving {} into place", p.display()))?;
        }
    }
    Ok(())
}

/// Before a resume: pending files of the epoch `checkpoint.json` records were committed and
/// go into place; those of an epoch never committed are removed. The pending checkpoint,
/// moved last, carries its epoch in its log.
fn settle(out: &std::path::Path, next_epoch: usize) -> Result<()> {
    let epochs = Model::load(&pending(out, "checkpoint.safetensors")).ok().and_then(|m| m.card.metrics["epochs"].as_array().map(Vec::len));
    if epochs == Some(next_epoch) {
        move_pending(out)
    } else {
        drop_pending(out)
    }
}

/// Removes pending files of an epoch never committed (the checkpoint goes last, so a removal
/// cut short is finished by the next).
fn drop_pending(out: &std::path::Path) -> Result<()> {
    for name in EPOCH_FILES {
        let p = pending(out, name);
        if p.is_file() {
            std::fs::remove_file(&p).with_context(|| format!("removing {} (an epoch the run never finished saving)", p.display()))?;
        }
    }
    Ok(())
}

/// A new run in an earlier run's folder: removes what that run left that this one could
/// later read as its own. Its `checkpoint.json` goes first: with it there, a kill before this
/// run's first commit followed by `--resume` would take this run's pending epoch under that
/// run's record. Its `best.safetensors` is never read by this run (the best epoch is taken by
/// the run's own record), but beside this run's model a user would take it for this run's.
/// Its other resume files are only read through a `checkpoint.json`.
pub(super) fn clear_earlier_run(out: &std::path::Path) -> Result<()> {
    let left: Vec<_> = [CHECKPOINT_STATE, "best.safetensors"].into_iter().map(|n| out.join(n)).filter(|p| p.is_file()).collect();
    if !left.is_empty() {
        eprintln!("{} holds an earlier run: starting a new one over it (--resume continues a run instead)", out.display());
    }
    for p in left {
        std::fs::remove_file(&p).with_context(|| format!("removing {} (left by an earlier run)", p.display()))?;
    }
    drop_pending(out)
}

/// Where a run goes on from: its first epoch, or the one after the last its folder committed.
pub(super) struct RunState {
    pub weights: Weights,
    pub adam: Adam,
    pub next_epoch: usize,
    pub log: Vec<EpochLog>,
    pub best_score: Option<f64>,
    pub averaged: usize,
    /// The running mean of the last epochs' weights, once averaging has started.
    pub average: Option<Weights>,
}

/// Reads back the run `cfg.out` holds (its last committed epoch, after [`settle`]), and puts
/// the hard negatives it had mined back into `pool`.
pub(super) fn resume(cfg: &TrainConfig, pool: &mut Pool) -> Result<RunState> {
    let out = &cfg.out;
    let state = out.join(CHECKPOINT_STATE);
    let c: Checkpoint = std::fs::read_to_string(&state)
        .map_err(anyhow::Error::from)
        .and_then(|t| Ok(serde_json::from_str(&t)?))
        .with_context(|| format!("{} is not a readable training checkpoint: start the run again without --resume", state.display()))?;
    settle(out, c.next_epoch)?;
    // The checkpoint's card records the split the run started with: resuming under another
    // would train on audio the run had kept out, and vice versa.
    let model_path = out.join("checkpoint.safetensors");
    let checkpoint = Model::load(&model_path)?;
    let started = crate::corpus::Split::of(&checkpoint.card.provenance);
    if started != cfg.split {
        bail!(
            "{} was trained with dev {}% of the non-test ids, but the run's configuration says {}%: it cannot go on on other audio (set split.dev_percent in {} back to {}, or start a new run)",
            model_path.display(),
            started.dev_percent,
            cfg.split.dev_percent,
            out.join("config.json").display(),
            started.dev_percent
        );
    }
    let adam = Adam { m: Model::load(&out.join("adam_m.safetensors"))?.weights, v: Model::load(&out.join("adam_v.safetensors"))?.weights, t: c.adam_t };
    let average = if c.averaged > 0 { Some(Model::load(&out.join("average.safetensors"))?.weights) } else { None };
    let hard_path = out.join("hard_negatives.json");
    if hard_path.is_file() {
        let origins: Vec<HardOrigin> =
            serde_json::from_str(&std::fs::read_to_string(&hard_path)?).with_context(|| format!("{} is not a list of hard negatives", hard_path.display()))?;
        pool.hard = mine::rebuild(pool, &origins, cfg.frontend.hop_length, cfg.frontend.sample_rate as usize)
            .map_err(|e| anyhow::anyhow!("{}: {e}", hard_path.display()))?;
    } else if c.next_epoch > cfg.dense_epochs && cfg.mine_every > 0 {
        eprintln!("{} is missing: this run goes on without its hard negatives until the next mining pass", hard_path.display());
    }
    eprintln!("resuming at epoch {} with {} hard negatives", c.next_epoch + 1, pool.hard.len());
    Ok(RunState { weights: checkpoint.weights, adam, next_epoch: c.next_epoch, log: c.log, best_score: c.best_score, averaged: c.averaged, average })
}
