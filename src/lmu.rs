//! Legendre Memory Unit memory: the linear, non-spiking part of the hybrid network.
//!
//! theta * dm/dt = A m + B u, discretised by zero-order hold with one step per frame.

/// Continuous-time (A, B) of an LMU memory of the given order, row-major A.
pub fn continuous(order: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; order * order];
    let mut b = vec![0.0; order];
    for i in 0..order {
        let r = (2 * i + 1) as f64;
        b[i] = r * if i % 2 == 0 { 1.0 } else { -1.0 };
        for j in 0..order {
            a[i * order + j] = r * if i < j {
                -1.0
            } else if (i - j + 1) % 2 == 0 {
                1.0
            } else {
                -1.0
            };
        }
    }
    (a, b)
}

fn matmul(n: usize, x: &[f64], y: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let xik = x[i * n + k];
            if xik != 0.0 {
                for j in 0..n {
                    out[i * n + j] += xik * y[k * n + j];
                }
            }
        }
    }
    out
}

/// Matrix exponential by scaling and squaring with a Taylor series (f64; orders here are
/// small enough that this is accurate to rounding).
fn expm(n: usize, m: &[f64]) -> Vec<f64> {
    let norm = (0..n)
        .map(|i| (0..n).map(|j| m[i * n + j].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let squarings = if norm > 0.5 { (norm / 0.5).log2().ceil() as i32 } else { 0 };
    let scale = 0.5f64.powi(squarings);
    let scaled: Vec<f64> = m.iter().map(|v| v * scale).collect();
    let mut result = vec![0.0; n * n];
    let mut term = vec![0.0; n * n];
    for i in 0..n {
        result[i * n + i] = 1.0;
        term[i * n + i] = 1.0;
    }
    for k in 1..=24 {
        term = matmul(n, &term, &scaled);
        let inv = 1.0 / k as f64;
        term.iter_mut().for_each(|t| *t *= inv);
        for (r, t) in result.iter_mut().zip(&term) {
            *r += t;
        }
    }
    for _ in 0..squarings {
        result = matmul(n, &result, &result);
    }
    result
}

/// Zero-order-hold discretisation with one step per frame: (Abar row-major, Bbar), both
/// from one exponential of [[A, B], [0, 0]] / theta.
pub fn discretise(order: usize, theta: f64) -> (Vec<f32>, Vec<f32>) {
    let (a, b) = continuous(order);
    let n = order + 1;
    let mut aug = vec![0.0; n * n];
    for i in 0..order {
        for j in 0..order {
            aug[i * n + j] = a[i * order + j] / theta;
        }
        aug[i * n + order] = b[i] / theta;
    }
    let e = expm(n, &aug);
    let mut abar = vec![0.0f32; order * order];
    let mut bbar = vec![0.0f32; order];
    for i in 0..order {
        for j in 0..order {
            abar[i * order + j] = e[i * n + j] as f32;
        }
        bbar[i] = e[i * n + order] as f32;
    }
    (abar, bbar)
}

/// Impulse response H_k = Abar^k Bbar for k in 0..len, as len rows of `order` values:
/// the memory is the causal convolution m_t = sum_k H_k u_{t-k}.
pub fn impulse_response(order: usize, theta: f64, len: usize) -> Vec<f32> {
    let (a, b) = discretise(order, theta);
    let (a, b): (Vec<f64>, Vec<f64>) = (
        a.iter().map(|&v| v as f64).collect(),
        b.iter().map(|&v| v as f64).collect(),
    );
    let mut out = Vec::with_capacity(len * order);
    let mut h = b;
    for _ in 0..len {
        out.extend(h.iter().map(|&v| v as f32));
        let next: Vec<f64> = (0..order)
            .map(|i| (0..order).map(|j| a[i * order + j] * h[j]).sum())
            .collect();
        h = next;
    }
    out
}

/// Weights that decode u(t - r*theta) from the memory, r in [0, 1]: the shifted Legendre
/// polynomials P~_i(r) = (-1)^i sum_j C(i,j) C(i+j,j) (-r)^j.
pub fn delay_decoder(order: usize, r: f64) -> Vec<f64> {
    (0..order)
        .map(|i| {
            let mut sum = 0.0;
            for j in 0..=i {
                sum += binom(i, j) * binom(i + j, j) * (-r).powi(j as i32);
            }
            if i % 2 == 0 { sum } else { -sum }
        })
        .collect()
}

fn binom(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// One memory channel bank stepping in real time: `channels` independent memories that
/// share (Abar, Bbar).
#[derive(Debug, Clone)]
pub struct MemoryBank {
    pub order: usize,
    pub channels: usize,
    abar: Vec<f32>,
    bbar: Vec<f32>,
    state: Vec<f32>,
    tmp: Vec<f32>,
}

impl MemoryBank {
    pub fn new(channels: usize, order: usize, theta: f64) -> Self {
        let (abar, bbar) = discretise(order, theta);
        Self { order, channels, abar, bbar, state: vec![0.0; channels * order], tmp: vec![0.0; order] }
    }

    pub fn reset(&mut self) {
        self.state.fill(0.0);
    }

    /// Current memory, channel-major (channel c's coefficients at c*order..).
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// m_c <- Abar m_c + Bbar u_c for every channel.
    pub fn step(&mut self, u: &[f32]) {
        let q = self.order;
        for (c, &uc) in u.iter().enumerate().take(self.channels) {
            let m = &mut self.state[c * q..(c + 1) * q];
            for i in 0..q {
                let row = &self.abar[i * q..(i + 1) * q];
                self.tmp[i] = row.iter().zip(m.iter()).map(|(a, x)| a * x).sum::<f32>() + self.bbar[i] * uc;
            }
            m.copy_from_slice(&self.tmp);
        }
    }
}
