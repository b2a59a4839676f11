//! Portable, bit-reproducible math and sampling primitives for the generator.
//!
//! Everything here uses only IEEE-754 basic operations (`+ − × ÷`, `sqrt`, `floor`), which are
//! correctly rounded on every platform Rust supports, plus tables computed by `const`
//! evaluation. No libm transcendental (`ln`, `exp`, `powf`, ...) is ever called, so the same
//! seed gives bit-identical samples on any machine and with any libm. The functions are
//! accurate to a few ulps (ample for a workload model), not correctly rounded.

use std::f64::consts::LN_2;

/// `log2` of the number of sub-intervals of `[1, 2)` in the logarithm table.
const LN_TABLE_BITS: u32 = 7;
const LN_TABLE_LEN: usize = 1 << LN_TABLE_BITS;

/// `ln(x)` for `x` in `[1, 2)` (or a little beyond) by the `atanh` series, in `const` context.
const fn ln_series(x: f64) -> f64 {
    // ln x = 2 atanh(s), s = (x − 1) / (x + 1), |s| <= 1/3: 40 terms are far past convergence.
    let s = (x - 1.0) / (x + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 0;
    while k < 40 {
        sum += term / (2 * k + 1) as f64;
        term *= s2;
        k += 1;
    }
    2.0 * sum
}

/// For each sub-interval `j` of `[1, 2)`: `(1 / c_j, ln c_j)` with `c_j = 1 + j / 128` its left
/// end (so `ln 1` is exactly 0).
const LN_TABLE: [(f64, f64); LN_TABLE_LEN] = {
    let mut t = [(0.0, 0.0); LN_TABLE_LEN];
    let mut j = 0;
    while j < LN_TABLE_LEN {
        let c = 1.0 + j as f64 / LN_TABLE_LEN as f64;
        t[j] = (1.0 / c, ln_series(c));
        j += 1;
    }
    t
};

/// The natural logarithm of a finite `x > 0` (absolute error < 1e-15 for normal `x`).
/// Returns `-inf` for 0 and NaN for negative or NaN input.
#[inline]
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return if x == 0.0 {
            f64::NEG_INFINITY
        } else if x == f64::INFINITY {
            f64::INFINITY
        } else {
            f64::NAN
        };
    }
    if x < f64::MIN_POSITIVE {
        return ln_normal(x * (1u64 << 54) as f64) + -54.0 * LN_2;
    }
    ln_normal(x)
}

/// [`ln`] of a normal, finite `x > 0`, without the checks for the other cases: the same
/// operations in the same order, so the same bits. (`ln` added a bias of `+0.0` for a normal
/// `x`, which changes nothing: the sum before it is never `-0.0`, its first term
/// `e × ln 2 + ln c` being `+0.0` or more.)
#[inline(always)]
fn ln_normal(x: f64) -> f64 {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let frac = bits & ((1u64 << 52) - 1);
    let m = f64::from_bits(frac | (1023u64 << 52)); // in [1, 2)
    let (inv_c, ln_c) = LN_TABLE[(frac >> (52 - LN_TABLE_BITS)) as usize];
    // m / c − 1, 0 <= r < 2^-7: seven terms of ln(1 + r) leave an error below r^8 / 8 < 1e-17.
    let r = m * inv_c - 1.0;
    let r2 = r * r;
    let odd = r * (1.0 + r2 * (1.0 / 3.0 + r2 * (1.0 / 5.0 + r2 * (1.0 / 7.0))));
    let even = r2 * (-0.5 + r2 * (-0.25 + r2 * (-1.0 / 6.0)));
    let poly = odd + even;
    e as f64 * LN_2 + ln_c + poly
}

/// `1 / k!` for `k` in `0..14`.
const INV_FACTORIAL: [f64; 14] = {
    let mut t = [1.0; 14];
    let mut k = 1;
    while k < 14 {
        t[k] = t[k - 1] / k as f64;
        k += 1;
    }
    t
};

/// `e^x` (relative error < 1e-15). Underflows to 0 below −745 and overflows to `+inf` above
/// 709.78, like the libm function; NaN in, NaN out.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    // Cody–Waite reduction: x = k ln2 + r, |r| <= ln2 / 2.
    // fdlibm's split of ln 2: the high part has 32 trailing zero bits, so `k * LN2_HI` is exact.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    let k = floor(x * std::f64::consts::LOG2_E + 0.5);
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series to r^13 / 13! by Horner: the remainder is below 2e-17 for |r| <= 0.35.
    let mut p = INV_FACTORIAL[13];
    for c in INV_FACTORIAL[..13].iter().rev() {
        p = p * r + c;
    }
    // Scale by 2^k in two steps so subnormal results come out right.
    let k = k as i64;
    let (k1, k2) = (k / 2, k - k / 2);
    p * pow2(k1) * pow2(k2)
}

/// `⌊x⌋` for `|x| < 2^62` without a libm call (`f64::floor` is one on baseline x86-64).
#[inline]
fn floor(x: f64) -> f64 {
    let t = x as i64 as f64; // truncates toward zero
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// `2^k` for `k` in `-1022..=1023`.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// A uniform `f64` in `(0, 1]` from 64 random bits (53 bits of precision).
#[inline]
pub fn unit_open0(bits: u64) -> f64 {
    ((bits >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard exponential variate, `−ln(u)`, from 64 random bits; at most 53 ln 2 ≈ 36.7.
#[inline]
pub fn exp1(bits: u64) -> f64 {
    // `unit_open0` is at least 2^-53: normal, finite and positive.
    (-ln_normal(unit_open0(bits))).max(0.0)
}

/// A uniform integer in `0..n` from 64 random bits by a widening multiply (Lemire). Without
/// rejection the bias is at most `n / 2^64`, far below anything measurable.
#[inline]
pub fn below(bits: u64, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 64) as u64
}

/// Walker's alias table (Vose's construction) over `0..n`: O(1) draws from one `u64`.
#[derive(Clone, Debug)]
pub struct AliasTable {
    /// Per column: keep it if the coin (32 bits) is below the threshold, else take the alias.
    columns: Vec<(u32, u32)>,
}

impl AliasTable {
    /// A table for the given non-negative weights (not all zero, at most `u32::MAX` of them).
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        assert!(n > 0 && n < u32::MAX as usize, "alias table of {n} outcomes");
        let total: f64 = weights.iter().sum();
        assert!(
            total > 0.0 && total.is_finite(),
            "alias weights must sum to a positive number"
        );
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut columns: Vec<(u32, u32)> = (0..n as u32).map(|i| (u32::MAX, i)).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) = (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        while let (Some(&l), Some(&g)) = (small.last(), large.last()) {
            small.pop();
            columns[l as usize] = (threshold(scaled[l as usize]), g);
            scaled[g as usize] = (scaled[g as usize] + scaled[l as usize]) - 1.0;
            if scaled[g as usize] < 1.0 {
                large.pop();
                small.push(g);
            }
        }
        // Whatever is left has probability 1 up to rounding: keep the defaults (always itself).
        Self { columns }
    }

    /// One draw from 64 random bits: the column from a widening multiply, the coin from the
    /// low half of the product (uniform given the column, to within `n / 2^64`).
    #[inline]
    pub fn sample(&self, bits: u64) -> u32 {
        let n = self.columns.len() as u64;
        let wide = u128::from(bits) * u128::from(n);
        let column = (wide >> 64) as u32;
        let (keep, alias) = self.columns[column as usize];
        let coin = ((wide as u64) >> 32) as u32;
        // A select without a branch: with skewed weights most columns have a threshold strictly
        // between 0 and 1, so the branch it replaces mispredicted on a large share of draws.
        let take_column = u32::from(coin < keep).wrapping_neg();
        alias ^ ((column ^ alias) & take_column)
    }
}

/// `p` (in `[0, 1]`) as a 32-bit keep threshold; 1 maps to `u32::MAX` (the alias is then the
/// column itself, so the one-in-2^32 miss changes nothing).
fn threshold(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 4_294_967_296.0).min(u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_exp_match_libm_closely() {
        let mut x: f64 = 1e-300;
        while x < 1e300 {
            for y in [x, x * 1.37, x * 0.71, 1.0 + x.min(0.5)] {
                let (a, b) = (ln(y), y.ln());
                assert!((a - b).abs() <= 2e-15 * b.abs().max(1.0), "ln({y}) = {a}, libm {b}");
            }
            x *= 3.7;
        }
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(5e-324) - 5e-324f64.ln()).abs() < 1e-12);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        let mut x = -700.0;
        while x < 709.0 {
            let (a, b) = (exp(x), x.exp());
            assert!((a - b).abs() <= 4e-15 * b, "exp({x}) = {a}, libm {b}");
            x += 0.377;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
    }

    #[test]
    fn uniform_helpers_stay_in_range() {
        for bits in [0, 1, u64::MAX, u64::MAX / 3] {
            let u = unit_open0(bits);
            assert!(u > 0.0 && u <= 1.0);
            assert!(exp1(bits) >= 0.0 && exp1(bits) < 37.0);
            assert!(below(bits, 7) < 7);
        }
        assert_eq!(below(u64::MAX, 1), 0);
    }

    #[test]
    fn alias_table_follows_its_weights() {
        let weights = [5.0, 0.0, 1.0, 3.0, 1.0];
        let t = AliasTable::new(&weights);
        assert_eq!(t.columns.len(), 5);
        let mut counts = [0u32; 5];
        let mut state = 0x1234_5678_9abc_def0u64;
        let draws = 200_000;
        for _ in 0..draws {
            // SplitMix64, enough for a histogram check.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            counts[t.sample(z ^ (z >> 31)) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        for (c, w) in counts.iter().zip(weights) {
            let share = f64::from(*c) / f64::from(draws);
            assert!((share - w / 10.0).abs() < 0.005, "{counts:?}");
        }
    }
}
