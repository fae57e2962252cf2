//! Exact propagators of linear subthreshold dynamics over one step `h`.
//!
//! With membrane `dV/dt = -V/tau_m + I/C_m` and synaptic currents decaying with `tau_s`,
//! the contribution of each current after `h` has a closed form. They are written with
//! `expm1` and series so that they stay accurate when `tau_s` approaches `tau_m` (where the
//! textbook forms divide zero by zero).

/// `a = 1/tau_s - 1/tau_m` times `h`, below which the series is used.
const SERIES_BELOW: f64 = 1e-2;

/// `int_0^h exp(-a s) ds = (1 - exp(-a h)) / a`, accurate for any `a` (including 0).
fn int_exp(a: f64, h: f64) -> f64 {
    if a == 0.0 { h } else { -(-a * h).exp_m1() / a }
}

/// `int_0^h s exp(-a s) ds = (1 - exp(-a h) (1 + a h)) / a^2`, accurate for any `a`.
fn int_s_exp(a: f64, h: f64) -> f64 {
    let x = a * h;
    if x.abs() < SERIES_BELOW {
        // 1 - e^{-x}(1 + x) = sum_{n>=2} (-1)^n (n - 1) x^n / n!
        let mut sum = 0.0;
        let mut term = 1.0; // x^{n-2} (-1)^n / n! accumulated below
        let mut fact = 2.0;
        for n in 2..14 {
            if n > 2 {
                fact *= n as f64;
                term *= -x;
            }
            sum += term * (n - 1) as f64 / fact;
        }
        h * h * sum
    } else {
        (1.0 - (-x).exp() * (1.0 + x)) / (a * a)
    }
}

/// Membrane decay over one step: `exp(-h/tau_m)`.
pub fn p22(tau_m: f64, h: f64) -> f64 {
    (-h / tau_m).exp()
}

/// Response of `V` [mV] after `h` to a constant current of 1 pA: `tau_m/C_m (1 - exp(-h/tau_m))`.
pub fn p20(tau_m: f64, c_m: f64, h: f64) -> f64 {
    -tau_m / c_m * (-h / tau_m).exp_m1()
}

/// Response of `V` [mV] after `h` to an exponentially decaying current (time constant
/// `tau_s`) of 1 pA at the start of the step (NEST's `propagator_32`).
pub fn p_exp(tau_s: f64, tau_m: f64, c_m: f64, h: f64) -> f64 {
    let a = 1.0 / tau_s - 1.0 / tau_m;
    (-h / tau_m).exp() / c_m * int_exp(a, h)
}

/// Response of `V` [mV] after `h` to the derivative state `dI = 1 pA/ms` of an alpha current
/// (NEST's `propagator_31`): `I(t) = t exp(-t/tau_s)`.
pub fn p_alpha_d(tau_s: f64, tau_m: f64, c_m: f64, h: f64) -> f64 {
    let a = 1.0 / tau_s - 1.0 / tau_m;
    (-h / tau_m).exp() / c_m * int_s_exp(a, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative agreement between series and closed form at the switch point.
    const SWITCH_REL_TOL: f64 = 1e-12;

    #[test]
    fn series_and_closed_form_agree_at_the_switch() {
        let h = 0.1;
        let a = SERIES_BELOW / h;
        let below = int_s_exp(a * (1.0 - 1e-9), h);
        let above = (1.0 - (-a * h).exp() * (1.0 + a * h)) / (a * a);
        assert!(
            ((below - above) / above).abs() < 1e-9,
            "series {below} vs closed {above}"
        );
        let tiny = int_s_exp(1e-9, h);
        assert!(
            (tiny / (h * h / 2.0) - 1.0).abs() < SWITCH_REL_TOL * 1e3,
            "limit a->0 is h^2/2, got {tiny}"
        );
    }

    /// Against a fine numerical quadrature of the defining integral (Simpson, 20000
    /// intervals: error far below 1e-12 for these smooth integrands).
    #[test]
    fn propagators_match_quadrature() {
        let simpson = |f: &dyn Fn(f64) -> f64, h: f64| {
            let n = 20_000;
            let dx = h / n as f64;
            let mut s = f(0.0) + f(h);
            for k in 1..n {
                s += f(k as f64 * dx) * if k % 2 == 1 { 4.0 } else { 2.0 };
            }
            s * dx / 3.0
        };
        for &(ts, tm, c, h) in &[
            (0.5, 10.0, 250.0, 0.1),
            (2.0, 10.0, 250.0, 0.1),
            (10.0, 10.0, 250.0, 0.1),
            (9.9999, 10.0, 250.0, 0.1),
            (0.3258, 10.0, 250.0, 1.0),
        ] {
            let q_exp = simpson(&|s: f64| (-(h - s) / tm).exp() * (-s / ts).exp(), h) / c;
            let q_alpha = simpson(&|s: f64| (-(h - s) / tm).exp() * s * (-s / ts).exp(), h) / c;
            assert!(
                (p_exp(ts, tm, c, h) / q_exp - 1.0).abs() < 1e-10,
                "p_exp({ts},{tm}) {} vs {q_exp}",
                p_exp(ts, tm, c, h)
            );
            assert!(
                (p_alpha_d(ts, tm, c, h) / q_alpha - 1.0).abs() < 1e-10,
                "p_alpha_d({ts},{tm}) {} vs {q_alpha}",
                p_alpha_d(ts, tm, c, h)
            );
        }
    }
}
