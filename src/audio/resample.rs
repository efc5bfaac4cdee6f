//! Resampling to the front end's rate: a streaming resampler with buffers planned once, and
//! a whole-buffer helper built on it.

use super::{check_rate, AudioError};
use rubato::{FftFixedIn, Resampler};

/// Resamples a whole buffer; the output is aligned with the input (the resampler's delay
/// is removed) and has round(len * to / from) samples.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut rs = StreamResampler::new(from, to)?;
    let want = output_len(samples.len() as u64, from, to) as usize;
    let delay = rs.delay();
    let mut out = Vec::with_capacity(want + delay + 4096);
    rs.push(samples, |c| out.extend_from_slice(c))?;
    // Flush with silence until the delayed tail has come out.
    let zeros = [0.0; FLUSH_BLOCK];
    while out.len() < want + delay {
        rs.push(&zeros, |c| out.extend_from_slice(c))?;
    }
    out.drain(..delay.min(out.len()));
    out.truncate(want);
    Ok(out)
}

/// Silence pushed per step when flushing the resampler's tail.
pub(crate) const FLUSH_BLOCK: usize = 1024;

/// Samples `n` input samples become at the new rate.
pub(crate) fn output_len(n: u64, from: u32, to: u32) -> u64 {
    (n as f64 * to as f64 / from as f64).round() as u64
}

/// Streaming mono resampler with buffers planned once: push any number of samples, get
/// resampled chunks back. Pass-through when the rates match.
pub struct StreamResampler {
    from: u32,
    to: u32,
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    filled: usize,
    out: Vec<Vec<f32>>,
}

impl StreamResampler {
    /// Both rates must lie in [`super::MIN_RATE`]..=[`super::MAX_RATE`]: the FFT sizes grow
    /// with the ratio's terms, so an absurd rate would plan absurd buffers.
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let err = |reason: String| AudioError::Resample { from, to, reason };
        check_rate(from).and(check_rate(to)).map_err(err)?;
        if from == to {
            return Ok(Self { from, to, inner: None, pending: Vec::new(), filled: 0, out: Vec::new() });
        }
        let inner = FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1).map_err(|e| err(e.to_string()))?;
        let pending = vec![0.0; inner.input_frames_next()];
        let out = vec![vec![0.0; inner.output_frames_max()]];
        Ok(Self { from, to, inner: Some(inner), pending, filled: 0, out })
    }

    pub fn input_rate(&self) -> u32 {
        self.from
    }
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Output samples of delay the resampler adds.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    pub fn push(&mut self, samples: &[f32], mut on_out: impl FnMut(&[f32])) -> Result<(), AudioError> {
        let Some(inner) = self.inner.as_mut() else {
            on_out(samples);
            return Ok(());
        };
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.pending.len() - self.filled).min(rest.len());
            self.pending[self.filled..self.filled + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == self.pending.len() {
                self.filled = 0;
                let (_, n) = inner.process_into_buffer(&[&self.pending], &mut self.out, None).map_err(|e| AudioError::Resample {
                    from: self.from,
                    to: self.to,
                    reason: e.to_string(),
                })?;
                on_out(&self.out[0][..n]);
            }
        }
        Ok(())
    }
}
