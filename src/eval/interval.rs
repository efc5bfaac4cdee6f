//! How far a recall measured on a few dozen held-out speakers can be trusted, and whether
//! one model really beats another on the same clips.
//!
//! The unit that varies is the speaker, not the clip: one speaker's clips are caught or
//! missed largely together (between 7% and 92% of a test speaker's clips are missed), so a
//! binomial interval over clips would claim far more certainty than 20 or 40 speakers give.
//! The bootstrap here resamples whole speakers with replacement and reads the 2.5th and
//! 97.5th percentiles of the pooled figure. For two models on the same clips it resamples
//! the per-clip differences the same way, which cancels what the clips share (a hard
//! speaker is hard for both) and is far tighter than two separate intervals.

use crate::dataset::split_id;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Resamples per interval: enough that the percentiles move by well under a point.
pub const RESAMPLES: usize = 2000;
/// Fixed, so that a report is reproducible run to run.
pub const SEED: u64 = 0x5eed;

/// A 95% interval (fractions, like the recall it brackets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// One speaker's clips: the sum of their per-clip values (1 caught / 0 missed, or a paired
/// difference) and how many clips.
pub type SpeakerSum = (f64, usize);

/// Per-clip values grouped by speaker (the id training splits on), in a fixed order.
pub fn by_speaker<'a>(values: impl IntoIterator<Item = (&'a Path, f64)>) -> Vec<SpeakerSum> {
    let mut groups: BTreeMap<String, SpeakerSum> = BTreeMap::new();
    for (path, v) in values {
        let g = groups.entry(split_id(path)).or_default();
        g.0 += v;
        g.1 += 1;
    }
    groups.into_values().collect()
}

/// The 95% percentile-bootstrap interval of `sum of values / clips` over speakers drawn with
/// replacement. None with fewer than two speakers (nothing to resample).
pub fn speaker_bootstrap(groups: &[SpeakerSum], resamples: usize, seed: u64) -> Option<Interval> {
    if groups.len() < 2 || groups.iter().all(|g| g.1 == 0) || resamples == 0 {
        return None;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let (mut sum, mut clips) = (0.0, 0usize);
            for _ in 0..groups.len() {
                let g = groups[rng.gen_range(0..groups.len())];
                sum += g.0;
                clips += g.1;
            }
            (clips > 0).then(|| sum / clips as f64)
        })
        .collect();
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((q * stats.len() as f64) as usize).min(stats.len() - 1)];
    Some(Interval { low: at(0.025), high: at(0.975) })
}

/// The interval of a recall from each clip's file and outcome.
pub fn recall_interval<'a>(outcomes: impl IntoIterator<Item = (&'a Path, bool)>) -> Option<Interval> {
    speaker_bootstrap(&by_speaker(outcomes.into_iter().map(|(p, hit)| (p, hit as u8 as f64))), RESAMPLES, SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speakers_who_all_score_alike_leave_no_doubt() {
        let groups = vec![(3.0, 4); 10];
        let i = speaker_bootstrap(&groups, 500, 1).unwrap();
        assert_eq!((i.low, i.high), (0.75, 0.75));
    }

    #[test]
    fn the_interval_brackets_the_figure_and_narrows_with_more_speakers() {
        // Half the speakers catch everything, half nothing: 50% overall.
        let few: Vec<SpeakerSum> = (0..6).map(|k| (if k % 2 == 0 { 5.0 } else { 0.0 }, 5)).collect();
        let many: Vec<SpeakerSum> = (0..60).map(|k| (if k % 2 == 0 { 5.0 } else { 0.0 }, 5)).collect();
        let a = speaker_bootstrap(&few, RESAMPLES, SEED).unwrap();
        let b = speaker_bootstrap(&many, RESAMPLES, SEED).unwrap();
        for i in [a, b] {
            assert!(i.low <= 0.5 && 0.5 <= i.high, "{i:?}");
            assert!(i.low >= 0.0 && i.high <= 1.0);
        }
        assert!(b.high - b.low < 0.6 * (a.high - a.low), "60 speakers {b:?} against 6 {a:?}");
    }

    #[test]
    fn one_speaker_gives_no_interval_and_a_seed_gives_the_same_one() {
        assert_eq!(speaker_bootstrap(&[(2.0, 3)], RESAMPLES, SEED), None);
        assert_eq!(speaker_bootstrap(&[], RESAMPLES, SEED), None);
        let g = [(1.0, 2), (2.0, 2), (0.0, 3)];
        assert_eq!(speaker_bootstrap(&g, 300, 9), speaker_bootstrap(&g, 300, 9));
    }

    #[test]
    fn clips_are_grouped_by_the_speaker_in_their_name() {
        let files = ["yes/aaaa1111_nohash_0.wav", "no/aaaa1111_nohash_1.wav", "yes/bbbb2222_nohash_0.wav"];
        let groups = by_speaker(files.iter().map(|f| (Path::new(*f), 1.0)));
        assert_eq!(groups, vec![(2.0, 2), (1.0, 1)]);
    }
}
