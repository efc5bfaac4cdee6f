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
    let norm = (0..n).map(|i| (0..n).map(|j| m[i * n + j].abs()).sum::<f64>()).fold(0.0, f64::max);
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
    let (a, b): (Vec<f64>, Vec<f64>) = (a.iter().map(|&v| v as f64).collect(), b.iter().map(|&v| v as f64).collect());
    let mut out = Vec::with_capacity(len * order);
    let mut h = b;
    for _ in 0..len {
        out.extend(h.iter().map(|&v| v as f32));
        let next: Vec<f64> = (0..order).map(|i| (0..order).map(|j| a[i * order + j] * h[j]).sum()).collect();
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
            if i % 2 == 0 {
                sum
            } else {
                -sum
            }
        })
        .collect()
}

fn binom(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Memory channels that share (Abar, Bbar), stepping one frame at a time.
///
/// The state is stored coefficient-major (`state[i * channels + c]`: coefficient i of
/// channel c) so that the update runs across channels in SIMD lanes.
///
/// For a constant input u a channel's fixed point is exactly (u, 0, ..., 0): A e_0 = -B for
/// the Legendre (A, B), and zero-order hold keeps the fixed point. With a settling tolerance
/// (event-driven mode), a channel within it of that point is put on it, and once every
/// channel is there and the input has not changed, a step does no work at all: a silent
/// input costs nothing. The dense twin steps with tolerance 0, which never skips.
#[derive(Debug, Clone)]
pub struct MemoryBank {
    pub order: usize,
    pub channels: usize,
    abar: Vec<f32>,
    bbar: Vec<f32>,
    state: Vec<f32>,
    next: Vec<f32>,
    /// The input of the last update, and whether every channel then sat on its fixed point.
    last_u: Vec<f32>,
    settled: bool,
}

impl MemoryBank {
    pub fn new(channels: usize, order: usize, theta: f64) -> Self {
        let (abar, bbar) = discretise(order, theta);
        let n = channels * order;
        Self { order, channels, abar, bbar, state: vec![0.0; n], next: vec![0.0; n], last_u: vec![0.0; channels], settled: true }
    }

    pub fn reset(&mut self) {
        self.state.fill(0.0);
        self.last_u.fill(0.0);
        self.settled = true;
    }

    /// Current memory, coefficient-major: coefficient i of channel c at `i * channels + c`.
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// Coefficient i of channel c.
    pub fn get(&self, c: usize, i: usize) -> f32 {
        self.state[i * self.channels + c]
    }

    /// Writes the state channel-major (channel c's coefficients at `c * order..`), the row
    /// order of the memory-to-hidden weights.
    pub fn copy_channel_major(&self, out: &mut [f32]) {
        let (d, q) = (self.channels, self.order);
        for c in 0..d {
            for i in 0..q {
                out[c * q + i] = self.state[i * d + c];
            }
        }
    }

    /// Whether the last step found every channel on its fixed point.
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Multiply-accumulates of one update.
    pub fn update_macs(&self) -> u64 {
        (self.channels * self.order * (self.order + 1)) as u64
    }

    /// m_c <- Abar m_c + Bbar u_c for every channel. With `settle_tol > 0` a channel whose
    /// every coefficient is within `settle_tol` of its fixed point is set onto it, and the
    /// step is skipped when all channels are settled and `u` equals the last input. Returns
    /// whether the update ran.
    pub fn step(&mut self, u: &[f32], settle_tol: f32) -> bool {
        let d = self.channels;
        let u = &u[..d];
        if settle_tol > 0.0 && self.settled && u == &self.last_u[..] {
            return false;
        }
        soa_update(&self.abar, &self.bbar, u, &self.state, &mut self.next, self.order, d);
        std::mem::swap(&mut self.state, &mut self.next);
        self.last_u.copy_from_slice(u);
        self.settled = settle_tol > 0.0 && settle(&mut self.state, u, self.order, settle_tol);
        true
    }
}

/// Puts every channel that is within `tol` of its fixed point (u, 0, ..., 0) onto it;
/// returns whether all channels are there.
fn settle(state: &mut [f32], u: &[f32], q: usize, tol: f32) -> bool {
    let d = u.len();
    let mut all = true;
    for (c, &uc) in u.iter().enumerate() {
        let near = (state[c] - uc).abs() <= tol && (1..q).all(|i| state[i * d + c].abs() <= tol);
        if near {
            state[c] = uc;
            for i in 1..q {
                state[i * d + c] = 0.0;
            }
        }
        all &= near;
    }
    all
}

/// out[i][c] = sum_j m[i][j] x[j][c] + b[i] u[c] for coefficient-major x and out (q rows of
/// d channels), `m` row-major q x q.
fn soa_update(m: &[f32], b: &[f32], u: &[f32], x: &[f32], out: &mut [f32], q: usize, d: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::simd_active() {
        // SAFETY: AVX2 and FMA are present; all slices have the sizes q*q, q, d, q*d, q*d.
        unsafe { soa_update_avx2(m, b, u, x, out, q, d) };
        return;
    }
    for i in 0..q {
        let o = &mut out[i * d..(i + 1) * d];
        for (oc, &uc) in o.iter_mut().zip(u) {
            *oc = b[i] * uc;
        }
        for j in 0..q {
            let mij = m[i * q + j];
            for (oc, &xc) in o.iter_mut().zip(&x[j * d..(j + 1) * d]) {
                *oc += mij * xc;
            }
        }
    }
}

/// # Safety
/// AVX2 and FMA must be available; `m` has q*q values, `b` q, `u` d, `x` and `out` q*d.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn soa_update_avx2(m: &[f32], b: &[f32], u: &[f32], x: &[f32], out: &mut [f32], q: usize, d: usize) {
    use std::arch::x86_64::*;
    assert!(m.len() >= q * q && b.len() >= q && u.len() >= d && x.len() >= q * d && out.len() >= q * d);
    let mut c = 0;
    // Eight channels per register: each output coefficient is q fused multiply-adds. Four
    // output coefficients at a time share the loads and keep four independent chains of
    // multiply-adds in flight.
    while c + 8 <= d {
        let uc = _mm256_loadu_ps(u.as_ptr().add(c));
        let mut i = 0;
        while i + 4 <= q {
            let mut acc = [_mm256_setzero_ps(); 4];
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_mul_ps(_mm256_set1_ps(*b.get_unchecked(i + k)), uc);
            }
            for j in 0..q {
                let xj = _mm256_loadu_ps(x.as_ptr().add(j * d + c));
                for (k, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_set1_ps(*m.get_unchecked((i + k) * q + j)), xj, *a);
                }
            }
            for (k, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add((i + k) * d + c), *a);
            }
            i += 4;
        }
        for i in i..q {
            let mut acc = _mm256_mul_ps(_mm256_set1_ps(*b.get_unchecked(i)), uc);
            for j in 0..q {
                let xj = _mm256_loadu_ps(x.as_ptr().add(j * d + c));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(*m.get_unchecked(i * q + j)), xj, acc);
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(i * d + c), acc);
        }
        c += 8;
    }
    for c in c..d {
        for i in 0..q {
            let mut acc = b[i] * u[c];
            for j in 0..q {
                acc = m[i * q + j].mul_add(x[j * d + c], acc);
            }
            out[i * d + c] = acc;
        }
    }
}

/// The memory over a whole sequence by the recurrence, O(T d q^2): `u` is [T x d], the
/// result [T x d*q] channel-major (the row order of the memory-to-hidden weights). Runs the
/// same [`MemoryBank::step`] as streaming, settling included.
pub fn memory_sequence(u: &ndarray::Array2<f32>, order: usize, theta: f64, settle_tol: f32) -> ndarray::Array2<f32> {
    let (t_len, d) = u.dim();
    let mut bank = MemoryBank::new(d, order, theta);
    let mut m = ndarray::Array2::<f32>::zeros((t_len, d * order));
    let mut ut = vec![0.0f32; d];
    for (t, mut row) in m.rows_mut().into_iter().enumerate() {
        for (dst, &v) in ut.iter_mut().zip(u.row(t)) {
            *dst = v;
        }
        bank.step(&ut, settle_tol);
        bank.copy_channel_major(row.as_slice_mut().expect("standard layout"));
    }
    m
}

/// Adjoint of [`memory_sequence`] (settling treated as exact, like the other codings):
/// given dL/dm [T x d*q] channel-major, returns dL/du [T x d], by the transposed recurrence
/// g_t = dm_t + Abar^T g_{t+1}, du_t = Bbar . g_t, O(T d q^2).
pub fn memory_sequence_adjoint(dm: &ndarray::Array2<f32>, order: usize, theta: f64, d: usize) -> ndarray::Array2<f32> {
    let q = order;
    let t_len = dm.nrows();
    let (abar, bbar) = discretise(q, theta);
    let mut abar_t = vec![0.0f32; q * q];
    for i in 0..q {
        for j in 0..q {
            abar_t[j * q + i] = abar[i * q + j];
        }
    }
    let zeros_b = vec![0.0f32; q];
    let zeros_u = vec![0.0f32; d];
    let mut g = vec![0.0f32; d * q];
    let mut next = vec![0.0f32; d * q];
    let mut du = ndarray::Array2::<f32>::zeros((t_len, d));
    for t in (0..t_len).rev() {
        soa_update(&abar_t, &zeros_b, &zeros_u, &g, &mut next, q, d);
        let row = dm.row(t);
        for c in 0..d {
            let mut s = 0.0f32;
            for i in 0..q {
                let v = next[i * d + c] + row[c * q + i];
                next[i * d + c] = v;
                s += bbar[i] * v;
            }
            du[[t, c]] = s;
        }
        std::mem::swap(&mut g, &mut next);
    }
    du
}
