//! The dense arithmetic of a network step, shared by the spiking network and its dense twin
//! so that their cost ratio measures the work each does and not two different codes.
//!
//! Every weight matrix is stored input-major (one row per input), so both a spike (or a delta
//! event) and a dense input add `coefficient * row` into an accumulator; the only difference
//! between the modes is which rows are added. The kernels keep a block of the accumulator in
//! registers while they stream the rows through it.
//!
//! x86-64 CPUs with AVX2 and FMA (detected at run time, so one binary runs everywhere) use
//! 8-wide fused multiply-adds; every other CPU the portable loops, which the compiler
//! vectorises for the baseline target. [`set_portable`] forces the portable path (tests
//! compare the two).

use std::sync::atomic::{AtomicBool, Ordering};

static FORCE_PORTABLE: AtomicBool = AtomicBool::new(false);

/// Forces the portable kernels even where AVX2/FMA exist (for tests and comparisons).
pub fn set_portable(on: bool) {
    FORCE_PORTABLE.store(on, Ordering::Relaxed);
}

/// Whether the AVX2/FMA kernels run on this CPU (and are not switched off).
#[inline]
pub fn simd_active() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !FORCE_PORTABLE.load(Ordering::Relaxed) && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Name of the kernel set in use, for reports.
pub fn kernel_name() -> &'static str {
    if simd_active() {
        "avx2+fma"
    } else {
        "portable"
    }
}

/// `acc += sum_k coeffs[k] * mat[rows[k]]`, rows of `acc.len()` values.
///
/// Panics if a row index is outside `mat` (callers pass indices they generated from the
/// matrix shape; the check keeps the SIMD path sound and costs one compare per row).
pub fn add_rows(acc: &mut [f32], mat: &[f32], rows: &[u32], coeffs: &[f32]) {
    let w = acc.len();
    assert_eq!(rows.len(), coeffs.len());
    if w == 0 || rows.is_empty() {
        return;
    }
    let n_rows = mat.len() / w;
    assert!(rows.iter().all(|&r| (r as usize) < n_rows), "row index outside the matrix");
    #[cfg(target_arch = "x86_64")]
    if simd_active() {
        // SAFETY: the CPU has AVX2 and FMA (checked above); every row index is in bounds.
        unsafe { avx2::add_rows(acc, mat, |k| *rows.get_unchecked(k) as usize, coeffs) };
        return;
    }
    portable::add_rows(acc, mat, |k| rows[k] as usize, coeffs);
}

/// `acc += sum_i x[i] * mat[i]` over every row (a dense vector-matrix product).
pub fn add_dense(acc: &mut [f32], mat: &[f32], x: &[f32]) {
    let w = acc.len();
    if w == 0 || x.is_empty() {
        return;
    }
    assert!(mat.len() >= x.len() * w, "matrix smaller than its input");
    #[cfg(target_arch = "x86_64")]
    if simd_active() {
        // SAFETY: AVX2/FMA present; row k < x.len() and mat holds x.len() rows.
        unsafe { avx2::add_rows(acc, mat, |k| k, x) };
        return;
    }
    portable::add_rows(acc, mat, |k| k, x);
}

/// Collects the non-zero entries of `coefs` as events: `rows[k]` gets entry i's row (`i`,
/// or `row_map[i]`), `out[k]` its value. Returns the number of events and how many have
/// magnitude one (a pure addition of their row). `rows` and `out` must hold `coefs.len()`.
pub fn collect_events(coefs: &[f32], row_map: Option<&[u32]>, rows: &mut [u32], out: &mut [f32]) -> (usize, u64) {
    let n = coefs.len();
    assert!(rows.len() >= n && out.len() >= n && row_map.is_none_or(|m| m.len() >= n));
    #[cfg(target_arch = "x86_64")]
    if simd_active() {
        // SAFETY: AVX2 present; every write index k <= the entry index < n fits.
        return unsafe { avx2::collect_events(coefs, row_map, rows, out) };
    }
    let (mut k, mut ones) = (0usize, 0u64);
    for (i, &c) in coefs.iter().enumerate() {
        if c != 0.0 {
            rows[k] = row_map.map_or(i as u32, |m| m[i]);
            out[k] = c;
            ones += (c.abs() == 1.0) as u64;
            k += 1;
        }
    }
    (k, ones)
}

mod portable {
    /// Columns per register block: 32 floats stay in eight 4-wide registers on baseline x86-64.
    const BLOCK: usize = 32;

    #[inline(always)]
    pub fn add_rows(acc: &mut [f32], mat: &[f32], row: impl Fn(usize) -> usize, coeffs: &[f32]) {
        let w = acc.len();
        let mut j = 0;
        while j + BLOCK <= w {
            let mut a = [0.0f32; BLOCK];
            a.copy_from_slice(&acc[j..j + BLOCK]);
            for (k, &c) in coeffs.iter().enumerate() {
                let r = &mat[row(k) * w + j..][..BLOCK];
                for t in 0..BLOCK {
                    a[t] += c * r[t];
                }
            }
            acc[j..j + BLOCK].copy_from_slice(&a);
            j += BLOCK;
        }
        if j < w {
            for (k, &c) in coeffs.iter().enumerate() {
                let r = &mat[row(k) * w + j..(row(k) + 1) * w];
                for (a, &v) in acc[j..].iter_mut().zip(r) {
                    *a += c * v;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// For each 8-bit mask, the positions of its set bits, packed to the front.
    static LEFT_PACK: [[u32; 8]; 256] = {
        let mut lut = [[0u32; 8]; 256];
        let mut m = 0;
        while m < 256 {
            let (mut k, mut t) = (0, 0);
            while t < 8 {
                if m & (1 << t) != 0 {
                    lut[m][k] = t as u32;
                    k += 1;
                }
                t += 1;
            }
            m += 1;
        }
        lut
    };

    /// Eight entries at a time without a branch per block (whose outcome is random and
    /// mispredicts): a compare and a movemask find the non-zero entries, a table turns the
    /// mask into a permutation that packs them (values and rows) to the front, and all
    /// eight lanes are stored at the write position, which then advances by the number of
    /// events. The write position never passes the block being read, so the stores stay
    /// inside the first `coefs.len()` entries.
    ///
    /// # Safety
    /// AVX2 must be available; `rows`, `out` (and `row_map` if given) hold at least
    /// `coefs.len()` entries.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn collect_events(coefs: &[f32], row_map: Option<&[u32]>, rows: &mut [u32], out: &mut [f32]) -> (usize, u64) {
        let n = coefs.len();
        let c = coefs.as_ptr();
        let (r, o) = (rows.as_mut_ptr(), out.as_mut_ptr());
        let zero = _mm256_setzero_ps();
        let one = _mm256_set1_ps(1.0);
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let (mut k, mut ones) = (0usize, 0u64);
        let mut b = 0;
        while b + 8 <= n {
            let x = _mm256_loadu_ps(c.add(b));
            let mask = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(x, zero)) as usize;
            let unit = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_and_ps(x, abs_mask), one)) as u32;
            let perm = _mm256_loadu_si256(LEFT_PACK[mask].as_ptr() as *const __m256i);
            _mm256_storeu_ps(o.add(k), _mm256_permutevar8x32_ps(x, perm));
            let idx = match row_map {
                Some(m) => _mm256_loadu_si256(m.as_ptr().add(b) as *const __m256i),
                None => _mm256_add_epi32(_mm256_set1_epi32(b as i32), iota),
            };
            _mm256_storeu_si256(r.add(k) as *mut __m256i, _mm256_permutevar8x32_epi32(idx, perm));
            k += mask.count_ones() as usize;
            ones += unit.count_ones() as u64;
            b += 8;
        }
        for i in b..n {
            let v = *c.add(i);
            if v != 0.0 {
                *r.add(k) = match row_map {
                    Some(m) => *m.get_unchecked(i),
                    None => i as u32,
                };
                *o.add(k) = v;
                ones += (v.abs() == 1.0) as u64;
                k += 1;
            }
        }
        (k, ones)
    }

    /// Adds the rows into `acc` in column blocks of 64 (eight 8-wide registers), then 8,
    /// then single columns.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `row(k)` must be a row index of `mat`
    /// (rows of `acc.len()` values) for every k < coeffs.len().
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_rows(acc: &mut [f32], mat: &[f32], row: impl Fn(usize) -> usize, coeffs: &[f32]) {
        let w = acc.len();
        let a = acc.as_mut_ptr();
        let m = mat.as_ptr();
        let n = coeffs.len();
        let c = coeffs.as_ptr();
        let mut j = 0;
        while j + 64 <= w {
            let mut r = [_mm256_setzero_ps(); 8];
            for (t, reg) in r.iter_mut().enumerate() {
                *reg = _mm256_loadu_ps(a.add(j + 8 * t));
            }
            for k in 0..n {
                let s = _mm256_set1_ps(*c.add(k));
                let p = m.add(row(k) * w + j);
                r[0] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p), r[0]);
                r[1] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(8)), r[1]);
                r[2] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(16)), r[2]);
                r[3] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(24)), r[3]);
                r[4] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(32)), r[4]);
                r[5] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(40)), r[5]);
                r[6] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(48)), r[6]);
                r[7] = _mm256_fmadd_ps(s, _mm256_loadu_ps(p.add(56)), r[7]);
            }
            for (t, reg) in r.iter().enumerate() {
                _mm256_storeu_ps(a.add(j + 8 * t), *reg);
            }
            j += 64;
        }
        while j + 8 <= w {
            let mut r0 = _mm256_loadu_ps(a.add(j));
            for k in 0..n {
                let s = _mm256_set1_ps(*c.add(k));
                r0 = _mm256_fmadd_ps(s, _mm256_loadu_ps(m.add(row(k) * w + j)), r0);
            }
            _mm256_storeu_ps(a.add(j), r0);
            j += 8;
        }
        if j < w {
            for k in 0..n {
                let s = *c.add(k);
                let p = m.add(row(k) * w);
                for t in j..w {
                    *a.add(t) = s.mul_add(*p.add(t), *a.add(t));
                }
            }
        }
    }
}
