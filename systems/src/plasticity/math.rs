//! Arithmetic of the learning rules' hot loops.

/// `x^mu` for a fixed exponent `mu >= 0` and `x >= 0`, as the weight dependences need it
/// (`w^mu`, `(1 - w/Wmax)^mu`) for every pairing: several times faster than `f64::powf`
/// and accurate to a few `f64` ulps (relative error below `4e-15`, see the test; the weights
/// it feeds are stored as `f32`, with a resolution of `6e-8`).
///
/// Exponents 0 and 1 are exact. Otherwise `x = 2^e m` with `m` in `[1, 2)` is split into a
/// table of `2^(e mu)` (for `|e| <= 64`), a table of `m0^mu` at the centres `m0` of 256
/// mantissa intervals, and `(1 + delta)^mu` for `delta = m/m0 - 1` (`|delta| < 2^-9`) by a
/// fifth-order Taylor polynomial. Zero, subnormal, huge and non-finite `x` fall back to
/// `powf`.
#[derive(Clone, Debug)]
pub struct Power {
    mu: f64,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Zero,
    One,
    Table(Box<Tables>),
}

#[derive(Clone, Debug)]
struct Tables {
    /// `2^(e mu)` for `e` in `-E_RANGE..=E_RANGE`.
    exp: Vec<f64>,
    /// `(m0^mu, 1/m0)` for the 256 mantissa intervals.
    mant: Vec<(f64, f64)>,
    /// Taylor coefficients of `(1 + d)^mu` from the linear term: `mu`, `mu (mu - 1) / 2`, ...
    coef: [f64; 5],
}

/// Binary exponents covered by the table.
const E_RANGE: i64 = 64;
/// Mantissa bits that index the table.
const M_BITS: u32 = 8;

impl Power {
    /// `x^mu`, `mu >= 0`.
    pub fn new(mu: f64) -> Self {
        let kind = if mu == 0.0 {
            Kind::Zero
        } else if mu == 1.0 {
            Kind::One
        } else {
            let n = 1usize << M_BITS;
            let mant = (0..n)
                .map(|j| {
                    let m0 = 1.0 + (j as f64 + 0.5) / n as f64;
                    (m0.powf(mu), 1.0 / m0)
                })
                .collect();
            let exp = (-E_RANGE..=E_RANGE)
                .map(|e| (e as f64 * mu).exp2())
                .collect();
            let mut coef = [0.0; 5];
            let mut c = 1.0;
            for (k, slot) in coef.iter_mut().enumerate() {
                c *= (mu - k as f64) / (k + 1) as f64;
                *slot = c;
            }
            Kind::Table(Box::new(Tables { exp, mant, coef }))
        };
        Self { mu, kind }
    }

    /// The exponent.
    pub fn mu(&self) -> f64 {
        self.mu
    }

    /// `x^mu`.
    #[inline(always)]
    pub fn pow(&self, x: f64) -> f64 {
        match &self.kind {
            Kind::Zero => 1.0,
            Kind::One => x,
            Kind::Table(t) => {
                let bits = x.to_bits();
                let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
                if !(-E_RANGE..=E_RANGE).contains(&e) || (bits >> 63) != 0 {
                    return x.powf(self.mu);
                }
                let frac = bits & 0x000f_ffff_ffff_ffff;
                let j = (frac >> (52 - M_BITS)) as usize;
                let m = f64::from_bits(frac | 0x3ff0_0000_0000_0000);
                let (m0_mu, inv_m0) = t.mant[j];
                let m0 = 1.0 + (j as f64 + 0.5) / (1u64 << M_BITS) as f64;
                let d = (m - m0) * inv_m0;
                let [c1, c2, c3, c4, c5] = t.coef;
                let poly = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * c5))));
                t.exp[(e + E_RANGE) as usize] * (m0_mu + m0_mu * poly)
            }
        }
    }
}

/// Doubles of [`Power::device_words`].
pub(crate) const POWER_DEVICE_WORDS: usize = 7 + 2 * E_RANGE as usize + 1 + 2 * (1 << M_BITS);

impl Power {
    /// The power as the device's `stdp_pow` (plasticity/stdp.cu) reads it,
    /// [`POWER_DEVICE_WORDS`] doubles: the kind (0: `x^0`, 1: `x^1`, 2: tables), `mu`, the
    /// five Taylor coefficients, `2^(e mu)` for `e` in `-64..=64`, then `(m0^mu, 1/m0)` for
    /// the 256 mantissa intervals (zeros but for the kind and `mu` without tables).
    pub(crate) fn device_words(&self) -> Vec<f64> {
        let mut words = vec![0.0; POWER_DEVICE_WORDS];
        words[1] = self.mu;
        match &self.kind {
            Kind::Zero => words[0] = 0.0,
            Kind::One => words[0] = 1.0,
            Kind::Table(t) => {
                words[0] = 2.0;
                words[2..7].copy_from_slice(&t.coef);
                words[7..7 + t.exp.len()].copy_from_slice(&t.exp);
                for (k, &(m0_mu, inv_m0)) in t.mant.iter().enumerate() {
                    words[7 + t.exp.len() + 2 * k] = m0_mu;
                    words[7 + t.exp.len() + 2 * k + 1] = inv_m0;
                }
            }
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest relative difference from `powf` over weights and normalised weights: the two
    /// table entries, the polynomial and the products are rounded once each (about half an
    /// ulp, 1.1e-16, apiece) and `powf` itself is within an ulp; measured 1.6e-15 at worst.
    const POW_RTOL: f64 = 4e-15;

    #[test]
    fn matches_powf() {
        for mu in [0.0, 1.0, 0.4, 0.7, 2.5, 0.05] {
            let p = Power::new(mu);
            let mut worst = 0.0f64;
            let mut x = 1e-12;
            while x < 1e12 {
                let (a, b) = (p.pow(x), x.powf(mu));
                worst = worst.max(((a - b) / b).abs());
                x *= 1.000_37;
            }
            assert!(worst < POW_RTOL, "mu {mu}: relative error {worst:e}");
            for x in [0.0, 1.0, 2.0, 0.5, 45.609_600_316_540_956, 1e-300, 1e300] {
                let (a, b) = (p.pow(x), x.powf(mu));
                assert!(
                    a == b || ((a - b) / b).abs() < POW_RTOL,
                    "mu {mu}, x {x}: {a} vs {b}"
                );
            }
        }
    }
}
