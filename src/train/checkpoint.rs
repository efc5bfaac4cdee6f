//! The files a run keeps for `--resume`, and how they are saved so that a run killed at any
//! moment goes on from one whole epoch.

use super::EpochLog;
use crate::model::Model;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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

/// Writes through a temporary file and a rename, so a run killed mid-write (a closed
/// session, Ctrl-C) leaves the previous file whole and `--resume` can read it. Only
/// `checkpoint.json`, the commit of each epoch, needs it.
pub(super) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
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
pub(super) fn settle(out: &std::path::Path, next_epoch: usize) -> Result<()> {
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
    let left: Vec<_> = ["checkpoint.json", "best.safetensors"].into_iter().map(|n| out.join(n)).filter(|p| p.is_file()).collect();
    if !left.is_empty() {
        eprintln!("{} holds an earlier run: starting a new one over it (--resume continues a run instead)", out.display());
    }
    for p in left {
        std::fs::remove_file(&p).with_context(|| format!("removing {} (left by an earlier run)", p.display()))?;
    }
    drop_pending(out)
}
