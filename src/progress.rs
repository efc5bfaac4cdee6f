//! The one progress-bar style of every long command (training, evaluation, rendering).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar labelled `what`; anything set with `set_prefix` (loss, accuracy, dt) follows it.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:<20} [{bar:30}] {pos}/{len} {elapsed}<{eta} {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}
