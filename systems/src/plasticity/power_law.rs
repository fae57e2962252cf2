//! Power-law STDP (Morrison, Aertsen & Diesmann 2007) as NEST's `stdp_pl_synapse_hom`:
//! facilitation `w + lambda w^mu K+`, multiplicative depression `w - lambda alpha w K-`
//! floored at 0, all-to-all pairing. The kernel is the STDP family's
//! ([`super::stdp::deliver_with`]).
//!
//! NEST's rule has no upper bound; `Wmax` (default infinite) adds one.

use myelin_components::{PlasticityState, PostBlock, PreView, RingBlockMut, TraceKind};
use myelin_engine::{
    ParamIssue, ParamSpec, Params, PlasticStep, PlasticSynapses, PlasticityKernel, PlasticityRule,
    Range, VarSpec,
};

use super::math::Power;
use super::stdp::{
    ALPHA, DecayTable, DeviceRule, PRE_KPLUS, PRE_STEPS, Pairing, TAU_MINUS, TAU_PLUS,
    WeightDependence, after_spikes, catch_up_with, caught_up, deliver_with, stale,
};

/// The power-law weight dependence of `stdp_pl_synapse_hom`.
#[derive(Clone, Debug)]
pub struct PowerLaw {
    /// Step size.
    pub lambda: f64,
    /// Asymmetry: depression / facilitation.
    pub alpha: f64,
    /// Exponent of the weight in facilitation.
    pub mu: Power,
    /// Largest weight (infinite: unbounded, as NEST).
    pub w_max: f64,
}

impl WeightDependence for PowerLaw {
    #[inline(always)]
    fn facilitate(&self, w: f64, kplus: f64) -> f64 {
        let new_w = w + (self.lambda * self.mu.pow(w) * kplus);
        new_w.min(self.w_max)
    }

    #[inline(always)]
    fn depress(&self, w: f64, kminus: f64) -> f64 {
        let new_w = w - (self.lambda * self.alpha * w * kminus);
        if new_w > 0.0 { new_w } else { 0.0 }
    }
}

/// `stdp_pl`: NEST's `stdp_pl_synapse_hom` (the NEST HPC benchmark's E->E synapse).
#[derive(Clone, Debug)]
pub struct StdpPl {
    w: PowerLaw,
    tau_minus: f64,
    table: DecayTable,
}

impl StdpPl {
    /// What the device kernels read of the rule (stdp.cu).
    pub fn device_rule(&self) -> DeviceRule {
        DeviceRule::power_law(&self.w, &self.table)
    }
}

impl PlasticityKernel for StdpPl {
    fn deliver(
        &self,
        at: PlasticStep<'_>,
        syn: &mut PlasticSynapses<'_>,
        pre: &PreView<'_>,
        post: &PostBlock<'_>,
        ring: &mut RingBlockMut<'_>,
    ) {
        deliver_with(
            &self.w,
            Pairing::AllToAll,
            &self.table,
            at,
            syn,
            pre,
            post,
            ring,
        );
    }

    fn after_delivery(&self, at: PlasticStep<'_>, state: &mut PlasticityState) {
        after_spikes(Pairing::AllToAll, &self.table, at, state);
    }

    fn stale_sources(&self, state: &PlasticityState, before: u64) -> Vec<u32> {
        stale(state, before)
    }

    fn catch_up(
        &self,
        at: PlasticStep<'_>,
        syn: &mut PlasticSynapses<'_>,
        pre: &PreView<'_>,
        post: &PostBlock<'_>,
    ) {
        catch_up_with(&self.w, Pairing::AllToAll, &self.table, at, syn, pre, post);
    }

    fn after_catch_up(&self, at: PlasticStep<'_>, state: &mut PlasticityState) {
        caught_up(at, state);
    }
}

impl PlasticityRule for StdpPl {
    const NAME: &'static str = "stdp_pl";
    const PARAMETERS: &'static [ParamSpec] = &[
        TAU_PLUS,
        TAU_MINUS,
        ParamSpec::real(
            "lambda",
            "",
            0.1,
            Range::NON_NEGATIVE,
            "step size of facilitation",
        ),
        ALPHA,
        ParamSpec::real(
            "mu",
            "",
            0.4,
            Range::NON_NEGATIVE,
            "exponent of the weight in facilitation",
        ),
        ParamSpec::real(
            "Wmax",
            "pA or mV",
            f64::INFINITY,
            Range::POSITIVE,
            "largest weight (NEST's rule has none: infinite)",
        ),
    ];
    const PRE_STATE: &'static [VarSpec] = PRE_KPLUS;
    const PRE_STEPS: &'static [VarSpec] = PRE_STEPS;

    fn new(p: &Params, dt: f64) -> Result<Self, ParamIssue> {
        Ok(Self {
            w: PowerLaw {
                lambda: p.get("lambda"),
                alpha: p.get("alpha"),
                mu: Power::new(p.get("mu")),
                w_max: p.get("Wmax"),
            },
            tau_minus: p.get("tau_minus"),
            table: DecayTable::new(p.get("tau_plus"), dt),
        })
    }

    fn check_weights(&self, low: f64, high: f64) -> Result<(), String> {
        if low < 0.0 || high > self.w.w_max {
            return Err(format!(
                "weights must lie in [0, Wmax = {}] (w^mu needs non-negative weights), but the weight distribution reaches [{low}, {high}]; bound a normal distribution with NormalRedraw(min, max)",
                self.w.w_max
            ));
        }
        Ok(())
    }

    fn post_trace(&self) -> (TraceKind, f64) {
        (TraceKind::AllToAll, self.tau_minus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_law_is_nests() {
        let p = PowerLaw {
            lambda: 0.1,
            alpha: 0.0513,
            mu: Power::new(0.4),
            w_max: f64::INFINITY,
        };
        let w: f64 = 45.0;
        let want = w + 0.1 * w.powf(0.4) * 0.7;
        assert!((p.facilitate(w, 0.7) - want).abs() <= 4.0 * f64::EPSILON * want);
        assert_eq!(p.depress(w, 0.3), w - 0.1 * 0.0513 * w * 0.3);
        assert_eq!(p.depress(w, 1e9), 0.0);
    }
}
