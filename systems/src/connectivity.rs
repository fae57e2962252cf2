//! Connectivity rules, with NEST semantics.
//!
//! [`ConnectivityPlugin`] registers six rules by scene name:
//!
//! | rule | parameters | what it builds |
//! |---|---|---|
//! | `all_to_all` | none | every source onto every target |
//! | `one_to_one` | none | source `j` onto target `j` (equal sizes) |
//! | `pairwise_bernoulli` | `p` | each eligible pair independently with probability `p` |
//! | `fixed_indegree` | `indegree` | each target draws exactly `indegree` sources |
//! | `fixed_outdegree` | `outdegree` | each source draws exactly `outdegree` targets |
//! | `fixed_total_number` | `N` | exactly `N` synapses, sources and targets uniform |
//!
//! Every rule honours the projection's `autapses` flag (a neuron never connects to itself
//! when autapses are off and source and target are the same population) and, where it
//! matters, its `multapses` flag (without multapses a pair is connected at most once).
//! `pairwise_bernoulli`, `all_to_all` and `one_to_one` consider each pair at most once,
//! whatever `multapses` says, as NEST does.
//!
//! # Determinism
//!
//! The sources of target `j` come from `j`'s own connection stream (the `rng` handed to
//! [`ConnectionRule::sources`]), so any split of the targets over threads or ranks builds
//! the same network. Two rules need global information and precompute it in `create`,
//! deterministically, from [`Purpose::Count`] streams:
//!
//! * `fixed_outdegree` draws each source's targets from the stream
//!   `Stream::new(seed, Count, projection, source, 0)` (in parallel over sources), then
//!   buckets them per target. For this rule alone the *sources* of a target therefore come
//!   from the sources' streams: it is the only way to fix the out-degrees. Weights and
//!   delays still come from the target's streams, as for every rule (the engine draws them).
//! * `fixed_total_number` draws the number of synapses of every target sequentially from
//!   the stream `Stream::new(seed, Count, projection, 0, 0)` (a multinomial with multapses,
//!   a multivariate hypergeometric over the eligible pair slots without), and then each
//!   target draws that many sources from its own stream.

use std::collections::HashSet;

use bevy_app::{App, Plugin};
use myelin_engine::rng::{Purpose, Stream};
use myelin_engine::{
    ConnectionRule, ParamIssue, ParamSpec, Params, Range, RegistryAppExt, RuleContext, RuleEntry,
};
use rand_distr::{Binomial, Distribution, Hypergeometric};
use rayon::prelude::*;

/// Registers the built-in connectivity rules: `all_to_all`, `one_to_one`,
/// `pairwise_bernoulli`, `fixed_indegree`, `fixed_outdegree` and `fixed_total_number`.
pub struct ConnectivityPlugin;

impl Plugin for ConnectivityPlugin {
    fn build(&self, app: &mut App) {
        app.register_rule(all_to_all_entry())
            .register_rule(one_to_one_entry())
            .register_rule(pairwise_bernoulli_entry())
            .register_rule(fixed_indegree_entry())
            .register_rule(fixed_outdegree_entry())
            .register_rule(fixed_total_number_entry());
    }
}

/// Largest degree a rule accepts: one target's synapses must fit the engine's `u32` rows.
const MAX_DEGREE: f64 = u32::MAX as f64;

/// Parameters of `pairwise_bernoulli`.
pub const PAIRWISE_BERNOULLI_PARAMS: &[ParamSpec] = &[ParamSpec::required(
    "p",
    "",
    Range::PROBABILITY,
    "probability that an eligible (source, target) pair is connected",
)];

/// Parameters of `fixed_indegree`.
pub const FIXED_INDEGREE_PARAMS: &[ParamSpec] = &[ParamSpec::integer(
    "indegree",
    None,
    Range::closed(0.0, MAX_DEGREE),
    "number of incoming synapses of every target neuron",
)];

/// Parameters of `fixed_outdegree`.
pub const FIXED_OUTDEGREE_PARAMS: &[ParamSpec] = &[ParamSpec::integer(
    "outdegree",
    None,
    Range::closed(0.0, MAX_DEGREE),
    "number of outgoing synapses of every source neuron",
)];

/// Parameters of `fixed_total_number`.
pub const FIXED_TOTAL_NUMBER_PARAMS: &[ParamSpec] = &[ParamSpec::integer(
    "N",
    None,
    Range::closed(0.0, 9_007_199_254_740_992.0), // 2^53: every integer below is exact in f64
    "total number of synapses of the projection",
)];

/// The `all_to_all` rule: every source onto every target.
pub fn all_to_all_entry() -> RuleEntry {
    RuleEntry {
        name: "all_to_all",
        parameters: &[],
        check: |_, _| Ok(()),
        create: |_, ctx| Box::new(AllToAll { ctx: ctx.clone() }),
    }
}

/// The `one_to_one` rule: source `j` onto target `j`; source and target must have equal
/// sizes. With autapses off on a single population it makes no synapse (as NEST).
pub fn one_to_one_entry() -> RuleEntry {
    RuleEntry {
        name: "one_to_one",
        parameters: &[],
        check: check_one_to_one,
        create: |_, ctx| Box::new(OneToOne { ctx: ctx.clone() }),
    }
}

/// The `pairwise_bernoulli` rule: each eligible pair independently with probability `p`.
pub fn pairwise_bernoulli_entry() -> RuleEntry {
    RuleEntry {
        name: "pairwise_bernoulli",
        parameters: PAIRWISE_BERNOULLI_PARAMS,
        check: |_, _| Ok(()),
        create: |params, ctx| Box::new(PairwiseBernoulli::new(params.get("p"), ctx)),
    }
}

/// The `fixed_indegree` rule: each target draws exactly `indegree` sources uniformly.
pub fn fixed_indegree_entry() -> RuleEntry {
    RuleEntry {
        name: "fixed_indegree",
        parameters: FIXED_INDEGREE_PARAMS,
        check: check_fixed_indegree,
        create: |params, ctx| Box::new(FixedIndegree::new(params.get("indegree") as u64, ctx)),
    }
}

/// The `fixed_outdegree` rule: each source draws exactly `outdegree` targets uniformly.
pub fn fixed_outdegree_entry() -> RuleEntry {
    RuleEntry {
        name: "fixed_outdegree",
        parameters: FIXED_OUTDEGREE_PARAMS,
        check: check_fixed_outdegree,
        create: |params, ctx| Box::new(FixedOutdegree::new(params.get("outdegree") as u64, ctx)),
    }
}

/// The `fixed_total_number` rule: exactly `N` synapses, sources and targets uniform.
pub fn fixed_total_number_entry() -> RuleEntry {
    RuleEntry {
        name: "fixed_total_number",
        parameters: FIXED_TOTAL_NUMBER_PARAMS,
        check: check_fixed_total_number,
        create: |params, ctx| Box::new(FixedTotalNumber::new(params.get("N") as u64, ctx)),
    }
}

// ---------------------------------------------------------------------------------------
// Eligibility helpers (saturating: a population of size 0 has no eligible partner).

/// Sources a target may draw from: all, or all but itself without autapses.
fn eligible_sources(ctx: &RuleContext) -> u32 {
    if ctx.autapses || !ctx.same_population {
        ctx.n_source
    } else {
        ctx.n_source.saturating_sub(1)
    }
}

/// Targets a source may reach: all, or all but itself without autapses.
fn eligible_targets(ctx: &RuleContext) -> u32 {
    if ctx.autapses || !ctx.same_population {
        ctx.n_target
    } else {
        ctx.n_target.saturating_sub(1)
    }
}

/// Words for messages: why the eligible count is what it is.
fn eligible_words(n: u32, what: &str, ctx: &RuleContext) -> String {
    if ctx.autapses || !ctx.same_population {
        format!("the {n} {what}")
    } else {
        format!(
            "the {} eligible {what} ({n} less the neuron itself, autapses being off)",
            n.saturating_sub(1)
        )
    }
}

/// The number of draws a degree rule makes per neuron: `k`, clamped to what can be drawn
/// (`check` rejects the cases where the clamp bites; this only keeps `create` total).
fn effective_degree(k: u64, eligible: u32, multapses: bool) -> u32 {
    if eligible == 0 {
        0
    } else if multapses {
        k.min(u64::from(u32::MAX)) as u32
    } else {
        k.min(u64::from(eligible)) as u32
    }
}

// ---------------------------------------------------------------------------------------
// Checks.

fn check_one_to_one(_: &Params, ctx: &RuleContext) -> Result<(), ParamIssue> {
    if ctx.n_source != ctx.n_target {
        return Err(ParamIssue::new(
            "",
            format!(
                "one_to_one needs source and target populations of equal size, got {} sources and {} targets",
                ctx.n_source, ctx.n_target
            ),
        ));
    }
    Ok(())
}

/// Checks a degree `k` of parameter `param` against `eligible` partners out of `n`.
fn check_degree(
    param: &str,
    k: f64,
    n: u32,
    eligible: u32,
    what: &str,
    ctx: &RuleContext,
) -> Result<(), ParamIssue> {
    if !ctx.multapses && k > f64::from(eligible) {
        return Err(ParamIssue::new(
            param,
            format!(
                "{param} = {k} exceeds {} it can draw from without multapses; lower it or allow multapses",
                eligible_words(n, what, ctx)
            ),
        ));
    }
    if ctx.multapses && k > 0.0 && eligible == 0 {
        return Err(ParamIssue::new(
            param,
            format!(
                "{param} = {k} but there are no {what} to draw from ({})",
                eligible_words(n, what, ctx)
            ),
        ));
    }
    Ok(())
}

fn check_fixed_indegree(params: &Params, ctx: &RuleContext) -> Result<(), ParamIssue> {
    check_degree(
        "indegree",
        params.get("indegree"),
        ctx.n_source,
        eligible_sources(ctx),
        "source neurons",
        ctx,
    )
}

fn check_fixed_outdegree(params: &Params, ctx: &RuleContext) -> Result<(), ParamIssue> {
    check_degree(
        "outdegree",
        params.get("outdegree"),
        ctx.n_target,
        eligible_targets(ctx),
        "target neurons",
        ctx,
    )
}

/// Number of (source, target) pairs that may be connected.
fn eligible_pairs(ctx: &RuleContext) -> u64 {
    u64::from(ctx.n_target) * u64::from(eligible_sources(ctx))
}

fn check_fixed_total_number(params: &Params, ctx: &RuleContext) -> Result<(), ParamIssue> {
    let n = params.get("N");
    let pairs = eligible_pairs(ctx);
    let without = if ctx.autapses || !ctx.same_population {
        ""
    } else {
        ", autapses excluded"
    };
    if !ctx.multapses && n > pairs as f64 {
        return Err(ParamIssue::new(
            "N",
            format!(
                "N = {n} exceeds the {pairs} eligible pairs ({} sources x {} targets{without}) without multapses; lower it or allow multapses",
                ctx.n_source, ctx.n_target
            ),
        ));
    }
    if ctx.multapses && n > 0.0 && pairs == 0 {
        return Err(ParamIssue::new(
            "N",
            format!(
                "N = {n} but there is no eligible pair ({} sources x {} targets{without})",
                ctx.n_source, ctx.n_target
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sampling helpers. `map` turns an index among the eligible partners into a neuron index
// (see `RuleContext::skip_self`); it is increasing, hence injective.

/// Distinct samples up to this many are checked for repeats by a linear scan.
const LINEAR_SCAN_MAX: u32 = 32;
/// A partial Fisher-Yates shuffle of all `m` candidates is used when `m <= k * DENSE_RATIO`.
const DENSE_RATIO: u64 = 32;

/// Appends `k` draws, with replacement, from `0..m` (mapped by `map`).
fn sample_with_replacement(
    m: u32,
    k: u32,
    rng: &mut Stream,
    out: &mut Vec<u32>,
    map: impl Fn(u32) -> u32,
) {
    if m == 0 {
        return;
    }
    out.reserve(k as usize);
    for _ in 0..k {
        out.push(map(rng.below(m)));
    }
}

/// Appends `k` distinct draws from `0..m` (mapped by `map`), a uniform random `k`-subset.
///
/// Dense (`m <= 32 k`): partial Fisher-Yates over all candidates, O(m). Sparse: Floyd's
/// algorithm, exactly `k` draws, with a linear scan for `k <= 32` and a hash set above.
/// Deterministic given the stream (the hash set is only queried, never iterated).
fn sample_distinct(m: u32, k: u32, rng: &mut Stream, out: &mut Vec<u32>, map: impl Fn(u32) -> u32) {
    let k = k.min(m);
    if k == 0 {
        return;
    }
    out.reserve(k as usize);
    if u64::from(m) <= u64::from(k) * DENSE_RATIO {
        let mut pool: Vec<u32> = (0..m).collect();
        for i in 0..k {
            let s = i + rng.below(m - i);
            pool.swap(i as usize, s as usize);
            out.push(map(pool[i as usize]));
        }
    } else if k <= LINEAR_SCAN_MAX {
        let start = out.len();
        for r in (m - k)..m {
            let t = rng.below(r + 1);
            let v = if out[start..].contains(&map(t)) { r } else { t };
            out.push(map(v));
        }
    } else {
        let mut seen: HashSet<u32> = HashSet::with_capacity(k as usize);
        for r in (m - k)..m {
            let t = rng.below(r + 1);
            let v = if seen.insert(t) {
                t
            } else {
                seen.insert(r);
                r
            };
            out.push(map(v));
        }
    }
}

/// Above this mean, hypergeometric deviates come from `rand_distr`'s H2PE; below, from
/// inversion here. With both `good` and `draws` at most `n / 2` and a mean of at least 12
/// (so `n >= 48`), `rand_distr`'s mode is at least `floor(12 * 48 / 50) = 11 >= 10`, its
/// switch to H2PE, whose set-up is O(1); its inversion branch would cost O(good + draws).
const HYPERGEOMETRIC_INVERSION_MAX_MEAN: f64 = 12.0;

/// A hypergeometric deviate: the number of `good` items among `draws` drawn without
/// replacement from `n`. Exact up to rounding; O(1) when the mean is at least 12, else
/// O(min(good, draws) + mean) (computing P(0) by a product).
fn hypergeometric(n: u64, good: u64, draws: u64, rng: &mut Stream) -> u64 {
    let (good, draws) = (good.min(n), draws.min(n));
    if draws == 0 || good == 0 {
        return 0;
    }
    if good == n {
        return draws;
    }
    if draws == n {
        return good;
    }
    // Symmetries: the good among the draws are the draws less the bad among them, and the
    // good less the good left undrawn.
    if good > n / 2 {
        return draws - hypergeometric(n, n - good, draws, rng);
    }
    if draws > n / 2 {
        return good - hypergeometric(n, good, n - draws, rng);
    }
    let (a, b) = (good.min(draws), good.max(draws));
    let mean = a as f64 * b as f64 / n as f64;
    if mean >= HYPERGEOMETRIC_INVERSION_MAX_MEAN
        && let Ok(h) = Hypergeometric::new(n, good, draws)
    {
        return h.sample(rng).min(a);
    }
    // Inversion. a + b <= n, so the support is 0..=a; P(0) = prod_{i<a} (n - b - i) / (n - i),
    // about exp(-mean) >= exp(-12), far from underflow.
    let mut p = 1.0f64;
    for i in 0..a {
        p *= (n - b - i) as f64 / (n - i) as f64;
    }
    let mut u = rng.uniform();
    let mut x = 0u64;
    while u > p && x < a {
        u -= p;
        p *= ((a - x) as f64 * (b - x) as f64) / ((x + 1) as f64 * (n - a - b + x + 1) as f64);
        x += 1;
    }
    x
}

/// A binomial deviate (`rand_distr`), exact for `p` in {0, 1}.
fn binomial(n: u64, p: f64, rng: &mut Stream) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    // `p` lies in (0, 1), so `new` succeeds; the fallback (the mean) is unreachable.
    Binomial::new(n, p).map_or((n as f64 * p).round() as u64, |b| b.sample(rng).min(n))
}

// ---------------------------------------------------------------------------------------
// The rules.

/// `all_to_all`: every source onto every target, skipping `i == j` when autapses are off
/// on a single population.
#[derive(Clone, Debug)]
pub struct AllToAll {
    ctx: RuleContext,
}

impl ConnectionRule for AllToAll {
    fn sources(&self, j: u32, _rng: &mut Stream, out: &mut Vec<u32>) {
        out.extend((0..self.ctx.n_source).filter(|&i| self.ctx.allowed(i, j)));
    }
}

/// `one_to_one`: source `j` onto target `j`.
#[derive(Clone, Debug)]
pub struct OneToOne {
    ctx: RuleContext,
}

impl ConnectionRule for OneToOne {
    fn sources(&self, j: u32, _rng: &mut Stream, out: &mut Vec<u32>) {
        if j < self.ctx.n_source && self.ctx.allowed(j, j) {
            out.push(j);
        }
    }
}

/// `pairwise_bernoulli`: each eligible pair independently with probability `p`, by
/// geometric skipping over the eligible sources (O(synapses), not O(pairs)).
#[derive(Clone, Debug)]
pub struct PairwiseBernoulli {
    ctx: RuleContext,
    p: f64,
    /// `ln(1 - p)`, negative for `0 < p < 1`.
    ln_q: f64,
}

impl PairwiseBernoulli {
    /// The rule with probability `p` for the projection `ctx`.
    pub fn new(p: f64, ctx: &RuleContext) -> Self {
        Self {
            ctx: ctx.clone(),
            p,
            ln_q: (-p).ln_1p(),
        }
    }
}

impl ConnectionRule for PairwiseBernoulli {
    fn sources(&self, j: u32, rng: &mut Stream, out: &mut Vec<u32>) {
        let m = eligible_sources(&self.ctx);
        // NaN is rejected by the parameter table; treat it as 0 anyway.
        if self.p.is_nan() || self.p <= 0.0 || m == 0 {
            return;
        }
        if self.p >= 1.0 {
            out.extend((0..m).map(|r| self.ctx.skip_self(r, j)));
            return;
        }
        // The number of failures before the next success is geometric:
        // P(gap = g) = (1 - p)^g p, i.e. gap = floor(ln(u) / ln(1 - p)) for u uniform in (0, 1).
        let mut r: u64 = 0;
        let m = u64::from(m);
        while r < m {
            let gap = (rng.uniform().ln() / self.ln_q).floor();
            // Also stops on an infinite gap (p tiny).
            if gap.is_nan() || gap >= (m - r) as f64 {
                break;
            }
            r += gap as u64;
            out.push(self.ctx.skip_self(r as u32, j));
            r += 1;
        }
    }
}

/// `fixed_indegree`: each target draws exactly `indegree` sources uniformly among its
/// eligible sources, distinct unless multapses are allowed.
#[derive(Clone, Debug)]
pub struct FixedIndegree {
    ctx: RuleContext,
    k: u32,
}

impl FixedIndegree {
    /// The rule with in-degree `k` for the projection `ctx` (clamped to the eligible sources
    /// without multapses; `check` rejects such a `k`).
    pub fn new(k: u64, ctx: &RuleContext) -> Self {
        Self {
            ctx: ctx.clone(),
            k: effective_degree(k, eligible_sources(ctx), ctx.multapses),
        }
    }
}

impl ConnectionRule for FixedIndegree {
    fn sources(&self, j: u32, rng: &mut Stream, out: &mut Vec<u32>) {
        let m = eligible_sources(&self.ctx);
        let map = |r| self.ctx.skip_self(r, j);
        if self.ctx.multapses {
            sample_with_replacement(m, self.k, rng, out, map);
        } else {
            sample_distinct(m, self.k, rng, out, map);
        }
    }
}

/// `fixed_outdegree`: each source draws exactly `outdegree` targets uniformly among its
/// eligible targets, distinct unless multapses are allowed.
///
/// The draws are made in `create`, in parallel over sources, source `i` drawing from
/// `Stream::new(seed, Purpose::Count, projection, i, 0)`; they are then bucketed per target
/// (sources ascending, then draw order) into compressed rows that
/// [`ConnectionRule::sources`] copies. So for this rule, unlike the others, a target's
/// sources come from the sources' streams (the only way to fix the out-degrees); weights
/// and delays still come from the target's streams. Holds 4 bytes per synapse until the
/// projection is built.
#[derive(Clone, Debug)]
pub struct FixedOutdegree {
    /// `offsets[j]..offsets[j + 1]` indexes target `j`'s sources.
    offsets: Vec<usize>,
    /// Sources of every target, target after target.
    sources: Vec<u32>,
}

impl FixedOutdegree {
    /// Draws the targets of every source of the projection `ctx` (out-degree `k`, clamped
    /// to the eligible targets without multapses; `check` rejects such a `k`).
    pub fn new(k: u64, ctx: &RuleContext) -> Self {
        let m = eligible_targets(ctx);
        let k = effective_degree(k, m, ctx.multapses) as usize;
        let n_source = ctx.n_source as usize;
        let n_target = ctx.n_target as usize;
        let mut drawn = vec![0u32; n_source * k];
        if k > 0 {
            drawn.par_chunks_mut(k).enumerate().for_each_init(
                || Vec::with_capacity(k),
                |tmp, (i, chunk)| {
                    let i = i as u32;
                    let mut rng = Stream::new(ctx.seed, Purpose::Count, ctx.projection, i, 0);
                    tmp.clear();
                    let map = |r| ctx.skip_self(r, i);
                    if ctx.multapses {
                        sample_with_replacement(m, k as u32, &mut rng, tmp, map);
                    } else {
                        sample_distinct(m, k as u32, &mut rng, tmp, map);
                    }
                    chunk.copy_from_slice(tmp);
                },
            );
        }
        // Counting sort by target; stable, so each target lists its sources ascending.
        let mut offsets = vec![0usize; n_target + 1];
        for &t in &drawn {
            offsets[t as usize + 1] += 1;
        }
        for t in 0..n_target {
            offsets[t + 1] += offsets[t];
        }
        let mut fill = offsets.clone();
        let mut sources = vec![0u32; drawn.len()];
        if k > 0 {
            for (i, chunk) in drawn.chunks(k).enumerate() {
                for &t in chunk {
                    let at = &mut fill[t as usize];
                    sources[*at] = i as u32;
                    *at += 1;
                }
            }
        }
        Self { offsets, sources }
    }
}

impl ConnectionRule for FixedOutdegree {
    fn sources(&self, j: u32, _rng: &mut Stream, out: &mut Vec<u32>) {
        let j = j as usize;
        if j + 1 < self.offsets.len() {
            out.extend_from_slice(&self.sources[self.offsets[j]..self.offsets[j + 1]]);
        }
    }
}

/// `fixed_total_number`: exactly `N` synapses, each target's count drawn in `create`, its
/// sources then drawn from its own stream (distinct unless multapses are allowed).
///
/// The counts are sequential conditional draws from
/// `Stream::new(seed, Purpose::Count, projection, 0, 0)`: with multapses a multinomial
/// (`count_j ~ Binomial(N_remaining, 1 / (n_target - j))`), so every synapse picks its
/// target uniformly; without, a multivariate hypergeometric over the eligible pair slots
/// (`count_j ~ Hypergeometric(remaining slots, slots of j, N_remaining)`), so the set of
/// connected pairs is a uniform `N`-subset of the eligible pairs.
#[derive(Clone, Debug)]
pub struct FixedTotalNumber {
    ctx: RuleContext,
    counts: Vec<u64>,
}

impl FixedTotalNumber {
    /// Draws the per-target counts for `n` synapses in the projection `ctx` (clamped to the
    /// eligible pairs without multapses; `check` rejects such an `n`).
    pub fn new(n: u64, ctx: &RuleContext) -> Self {
        let n_target = u64::from(ctx.n_target);
        let slots = u64::from(eligible_sources(ctx));
        let mut counts = vec![0u64; ctx.n_target as usize];
        let mut remaining = if slots == 0 {
            0
        } else if ctx.multapses {
            n
        } else {
            n.min(slots * n_target)
        };
        let mut rng = Stream::new(ctx.seed, Purpose::Count, ctx.projection, 0, 0);
        for (j, c) in counts.iter_mut().enumerate() {
            if remaining == 0 {
                break;
            }
            let left = n_target - j as u64; // targets j.. still to serve, >= 1
            let x = if ctx.multapses {
                binomial(remaining, 1.0 / left as f64, &mut rng)
            } else {
                hypergeometric(slots * left, slots, remaining, &mut rng)
            };
            *c = x;
            remaining -= x;
        }
        Self {
            ctx: ctx.clone(),
            counts,
        }
    }
}

impl ConnectionRule for FixedTotalNumber {
    fn sources(&self, j: u32, rng: &mut Stream, out: &mut Vec<u32>) {
        let Some(&c) = self.counts.get(j as usize) else {
            return;
        };
        let c = c.min(u64::from(u32::MAX)) as u32;
        let m = eligible_sources(&self.ctx);
        let map = |r| self.ctx.skip_self(r, j);
        if self.ctx.multapses {
            sample_with_replacement(m, c, rng, out, map);
        } else {
            sample_distinct(m, c, rng, out, map);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use myelin_components::{Connectivity, DELIVERY_BLOCK};
    use myelin_engine::{Dist, ModelRegistry, ParamValue, build_connectivity};

    use super::*;

    /// More than two delivery blocks (DELIVERY_BLOCK = 1024), so block boundaries are
    /// crossed.
    const N: u32 = 3000;
    /// Statistical tests accept deviations up to this many standard errors: a false alarm
    /// rate below about 6e-7 per comparison for a normal statistic.
    const Z_TOLERANCE: f64 = 5.0;

    fn ctx(
        n_source: u32,
        n_target: u32,
        same: bool,
        autapses: bool,
        multapses: bool,
        seed: u64,
    ) -> RuleContext {
        RuleContext {
            n_source,
            n_target,
            same_population: same,
            autapses,
            multapses,
            seed,
            projection: 7,
        }
    }

    fn entry(name: &str) -> RuleEntry {
        let mut app = App::new();
        app.add_plugins(ConnectivityPlugin);
        app.world().resource::<ModelRegistry>().rules[name].clone()
    }

    fn params(e: &RuleEntry, kv: &[(&str, f64)]) -> Params {
        let given: BTreeMap<String, ParamValue> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::Number(*v)))
            .collect();
        Params::resolve(e.parameters, &given).expect("valid parameters")
    }

    fn build(name: &str, kv: &[(&str, f64)], c: &RuleContext) -> Connectivity {
        let e = entry(name);
        let p = params(&e, kv);
        (e.check)(&p, c).expect("check passes");
        let rule = (e.create)(&p, c);
        build_connectivity(
            rule.as_ref(),
            c,
            &Dist::Constant(1.0),
            &Dist::Constant(1.0),
            0.1,
            DELIVERY_BLOCK,
        )
    }

    fn pairs(conn: &Connectivity) -> Vec<(u32, u32)> {
        conn.synapses(DELIVERY_BLOCK)
            .into_iter()
            .map(|(s, t, _, _)| (s, t))
            .collect()
    }

    fn assert_no_duplicates(conn: &Connectivity, what: &str) {
        let ps = pairs(conn);
        let set: BTreeSet<_> = ps.iter().copied().collect();
        assert_eq!(
            set.len(),
            ps.len(),
            "{what}: duplicate (source, target) pairs"
        );
    }

    fn assert_no_autapses(conn: &Connectivity, what: &str) {
        assert!(
            pairs(conn).iter().all(|(s, t)| s != t),
            "{what}: found an autapse"
        );
    }

    fn mean_var(xs: &[u32]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = xs
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, var)
    }

    /// Standard error of the sample variance of `n` independent binomial(trials, p) values:
    /// sqrt((mu4 - sigma^4 (n - 3) / (n - 1)) / n), mu4 = t p q (1 + 3 (t - 2) p q).
    fn se_var_binomial(trials: f64, p: f64, n: f64) -> f64 {
        let s2 = trials * p * (1.0 - p);
        let mu4 = s2 * (1.0 + 3.0 * (trials - 2.0) * p * (1.0 - p));
        ((mu4 - s2 * s2 * (n - 3.0) / (n - 1.0)) / n).sqrt()
    }

    #[test]
    fn connectivity_plugin_registers_all_rules() {
        let mut app = App::new();
        app.add_plugins(ConnectivityPlugin);
        let reg = app.world().resource::<ModelRegistry>();
        for name in [
            "all_to_all",
            "one_to_one",
            "pairwise_bernoulli",
            "fixed_indegree",
            "fixed_outdegree",
            "fixed_total_number",
        ] {
            assert!(reg.rules.contains_key(name), "{name} not registered");
        }
        for e in reg.rules.values() {
            for s in e.parameters {
                assert!(!s.doc.is_empty(), "{}.{} lacks a doc line", e.name, s.name);
            }
        }
    }

    #[test]
    fn connectivity_fixed_indegree_exact_degrees() {
        // Sparse with linear scan (k <= 32), sparse with hash set, dense Fisher-Yates,
        // multapses; on separate and on one population without autapses.
        for &k in &[20u32, 50, 500] {
            for &(same, autapses, multapses) in &[
                (false, false, false),
                (true, false, false),
                (true, true, false),
                (true, false, true),
            ] {
                let c = ctx(N, N, same, autapses, multapses, 11);
                let conn = build("fixed_indegree", &[("indegree", f64::from(k))], &c);
                let what = format!(
                    "fixed_indegree k={k} same={same} autapses={autapses} multapses={multapses}"
                );
                assert_eq!(conn.n_blocks(), 3, "{what}: blocks");
                assert!(
                    conn.in_degrees(N as usize, DELIVERY_BLOCK)
                        .iter()
                        .all(|&d| d == k),
                    "{what}: in-degree not exactly {k}"
                );
                if !multapses {
                    assert_no_duplicates(&conn, &what);
                }
                if same && !autapses {
                    assert_no_autapses(&conn, &what);
                }
            }
        }
        // Every eligible source (k = eligible): all pairs but the autapses.
        let c = ctx(1100, 1100, true, false, false, 3);
        let conn = build("fixed_indegree", &[("indegree", 1099.0)], &c);
        assert_eq!(conn.len(), 1100 * 1099);
        assert_no_duplicates(&conn, "k = eligible");
        assert_no_autapses(&conn, "k = eligible");
    }

    /// Sources of fixed_indegree are uniform: each source's out-degree is
    /// Binomial(n_target, k / n_source) (exactly so without multapses: each target includes a
    /// given source with probability k / n_source, independently across targets).
    #[test]
    fn connectivity_fixed_indegree_sources_uniform() {
        for &k in &[20u32, 50, 500] {
            let c = ctx(N, N, false, true, false, 5);
            let conn = build("fixed_indegree", &[("indegree", f64::from(k))], &c);
            let (mean, var) = mean_var(&conn.out_degrees());
            let p = f64::from(k) / f64::from(N);
            let expect_var = f64::from(N) * p * (1.0 - p);
            // The mean is exactly k (N sources, N k synapses); the variance within 5 SE.
            assert!((mean - f64::from(k)).abs() < 1e-9);
            let se = se_var_binomial(f64::from(N), p, f64::from(N));
            assert!(
                (var - expect_var).abs() < Z_TOLERANCE * se,
                "k={k}: out-degree variance {var}, expected {expect_var} +- {se}"
            );
        }
    }

    #[test]
    fn connectivity_fixed_indegree_check_rejects_too_many() {
        let e = entry("fixed_indegree");
        let p = params(&e, &[("indegree", 3000.0)]);
        let issue = (e.check)(&p, &ctx(N, N, true, false, false, 1)).unwrap_err();
        assert_eq!(issue.param, "indegree");
        assert!(
            issue.message.contains("3000") && issue.message.contains("2999"),
            "{}",
            issue.message
        );
        assert!((e.check)(&p, &ctx(N, N, true, true, false, 1)).is_ok());
        assert!((e.check)(&p, &ctx(N, N, true, false, true, 1)).is_ok());
        let p = params(&e, &[("indegree", 4000.0)]);
        let issue = (e.check)(&p, &ctx(N, N, false, true, false, 1)).unwrap_err();
        assert!(
            issue.message.contains("4000") && issue.message.contains("3000"),
            "{}",
            issue.message
        );
    }

    #[test]
    fn connectivity_fixed_outdegree_exact_degrees() {
        for &k in &[20u32, 50, 500] {
            for &(same, autapses, multapses) in &[
                (false, false, false),
                (true, false, false),
                (true, false, true),
            ] {
                // More sources than targets and the reverse both work.
                let c = ctx(N, N, same, autapses, multapses, 13);
                let conn = build("fixed_outdegree", &[("outdegree", f64::from(k))], &c);
                let what = format!(
                    "fixed_outdegree k={k} same={same} autapses={autapses} multapses={multapses}"
                );
                assert!(
                    conn.out_degrees().iter().all(|&d| d == k),
                    "{what}: out-degree not exactly {k}"
                );
                assert_eq!(conn.len(), (N * k) as usize, "{what}: total");
                if !multapses {
                    assert_no_duplicates(&conn, &what);
                }
                if same && !autapses {
                    assert_no_autapses(&conn, &what);
                }
            }
        }
        let c = ctx(700, 2500, false, false, false, 2);
        let conn = build("fixed_outdegree", &[("outdegree", 40.0)], &c);
        assert!(conn.out_degrees().iter().all(|&d| d == 40));
        let e = entry("fixed_outdegree");
        let issue = (e.check)(
            &params(&e, &[("outdegree", 3000.0)]),
            &ctx(N, N, true, false, false, 1),
        )
        .unwrap_err();
        assert_eq!(issue.param, "outdegree");
        assert!(
            issue.message.contains("3000") && issue.message.contains("2999"),
            "{}",
            issue.message
        );
    }

    #[test]
    fn connectivity_fixed_total_number_exact_total() {
        // Small per-target mean (inversion), large mean (H2PE), nearly all pairs (the
        // symmetric reduction), and multapses.
        let cases: &[(u32, u64, bool, bool)] = &[
            (2000, 6_000, false, false),
            (2000, 600_000, false, false),
            (100, 290_000, false, false),
            (N, 9_000, true, false),
            (N, 50_000, true, true),
            (2000, 600_000, false, true),
        ];
        for &(n_source, total, same, multapses) in cases {
            let n_source = if same { N } else { n_source };
            let c = ctx(n_source, N, same, false, multapses, 17);
            let conn = build("fixed_total_number", &[("N", total as f64)], &c);
            let what = format!(
                "fixed_total_number N={total} n_source={n_source} same={same} multapses={multapses}"
            );
            assert_eq!(conn.len() as u64, total, "{what}: total");
            if !multapses {
                assert_no_duplicates(&conn, &what);
            }
            if same {
                assert_no_autapses(&conn, &what);
            }
        }
        // All eligible pairs.
        let c = ctx(1100, 1100, true, false, false, 4);
        let conn = build("fixed_total_number", &[("N", 1100.0 * 1099.0)], &c);
        assert_eq!(conn.len(), 1100 * 1099);
        assert_no_duplicates(&conn, "N = all pairs");
        assert_no_autapses(&conn, "N = all pairs");
        // Check: too many without multapses.
        let e = entry("fixed_total_number");
        let issue = (e.check)(&params(&e, &[("N", 1100.0 * 1099.0 + 1.0)]), &c).unwrap_err();
        assert_eq!(issue.param, "N");
        assert!(
            issue.message.contains("1208901") && issue.message.contains("1208900"),
            "{}",
            issue.message
        );
        assert!(
            (e.check)(
                &params(&e, &[("N", 1100.0 * 1099.0 + 1.0)]),
                &RuleContext {
                    multapses: true,
                    ..c
                }
            )
            .is_ok()
        );
    }

    /// Per-target counts of fixed_total_number: mean exactly N / n_target; variance that of
    /// the marginal (hypergeometric without multapses, binomial with) within 5 SE. The SE
    /// uses the binomial fourth moment for independent values (the hypergeometric is no
    /// wider; the counts' slight negative correlation does not matter at this size).
    #[test]
    fn connectivity_fixed_total_number_counts_distribution() {
        for &(n_source, total, multapses) in &[
            (2000u32, 6_000u64, false),
            (2000, 600_000, false),
            (100, 290_000, false),
            (2000, 6_000, true),
            (2000, 600_000, true),
        ] {
            let c = ctx(n_source, N, false, true, multapses, 23);
            let conn = build("fixed_total_number", &[("N", total as f64)], &c);
            let (mean, var) = mean_var(&conn.in_degrees(N as usize, DELIVERY_BLOCK));
            let (t, nt) = (total as f64, f64::from(N));
            assert!((mean - t / nt).abs() < 1e-9);
            let (expect_var, se) = if multapses {
                let p = 1.0 / nt;
                (t * p * (1.0 - p), se_var_binomial(t, p, nt))
            } else {
                let slots = f64::from(n_source);
                let pairs = slots * nt;
                let p = slots / pairs;
                // Hypergeometric(pairs, slots, total): total p q (pairs - total) / (pairs - 1).
                (
                    t * p * (1.0 - p) * (pairs - t) / (pairs - 1.0),
                    se_var_binomial(t.min(pairs - t), p, nt),
                )
            };
            assert!(
                (var - expect_var).abs() < Z_TOLERANCE * se,
                "N={total} n_source={n_source} multapses={multapses}: count variance {var}, expected {expect_var} +- {se}"
            );
        }
    }

    #[test]
    fn connectivity_pairwise_bernoulli_statistics() {
        let n_pre = 2000u32;
        for &(p, same) in &[(0.1, false), (0.02, true), (0.7, false)] {
            let c = ctx(if same { N } else { n_pre }, N, same, false, false, 29);
            let m = f64::from(if same { N - 1 } else { n_pre }); // eligible sources per target
            let conn = build("pairwise_bernoulli", &[("p", p)], &c);
            let nt = f64::from(N);
            // Total ~ Binomial(nt m, p): SE = sqrt(nt m p (1 - p)).
            let total = conn.len() as f64;
            let se_total = (nt * m * p * (1.0 - p)).sqrt();
            assert!(
                (total - nt * m * p).abs() < Z_TOLERANCE * se_total,
                "p={p}: total {total}, expected {} +- {se_total}",
                nt * m * p
            );
            // In-degrees ~ Binomial(m, p), independent: variance m p (1 - p).
            let (_, var) = mean_var(&conn.in_degrees(N as usize, DELIVERY_BLOCK));
            let se_var = se_var_binomial(m, p, nt);
            let expect = m * p * (1.0 - p);
            assert!(
                (var - expect).abs() < Z_TOLERANCE * se_var,
                "p={p}: in-degree variance {var}, expected {expect} +- {se_var}"
            );
            assert_no_duplicates(&conn, "pairwise_bernoulli");
            if same {
                assert_no_autapses(&conn, "pairwise_bernoulli");
            }
        }
        let c = ctx(1100, 1100, true, false, false, 1);
        assert!(build("pairwise_bernoulli", &[("p", 0.0)], &c).is_empty());
        let all = build("pairwise_bernoulli", &[("p", 1.0)], &c);
        let expect: BTreeSet<(u32, u32)> = (0..1100)
            .flat_map(|t| (0..1100).filter(move |&s| s != t).map(move |s| (s, t)))
            .collect();
        assert_eq!(pairs(&all).into_iter().collect::<BTreeSet<_>>(), expect);
        assert_eq!(all.len(), expect.len());
    }

    #[test]
    fn connectivity_all_to_all_exact() {
        let c = ctx(40, 1100, false, false, false, 1);
        let conn = build("all_to_all", &[], &c);
        let got: BTreeSet<_> = pairs(&conn).into_iter().collect();
        let expect: BTreeSet<(u32, u32)> = (0..40)
            .flat_map(|s| (0..1100).map(move |t| (s, t)))
            .collect();
        assert_eq!(got, expect);
        assert_eq!(conn.len(), expect.len());
        for autapses in [false, true] {
            let c = ctx(1100, 1100, true, autapses, false, 1);
            let conn = build("all_to_all", &[], &c);
            let got: BTreeSet<_> = pairs(&conn).into_iter().collect();
            let expect: BTreeSet<(u32, u32)> = (0..1100)
                .flat_map(|s| {
                    (0..1100)
                        .filter(move |&t| autapses || s != t)
                        .map(move |t| (s, t))
                })
                .collect();
            assert_eq!(got, expect, "autapses={autapses}");
            assert_eq!(conn.len(), expect.len());
        }
    }

    #[test]
    fn connectivity_one_to_one_exact() {
        for &(same, autapses) in &[(false, false), (true, true)] {
            let conn = build("one_to_one", &[], &ctx(N, N, same, autapses, false, 1));
            assert_eq!(
                pairs(&conn),
                (0..N).map(|j| (j, j)).collect::<Vec<_>>(),
                "same={same} autapses={autapses}"
            );
        }
        // NEST: autapses off on one population leaves one_to_one empty.
        assert!(build("one_to_one", &[], &ctx(N, N, true, false, false, 1)).is_empty());
        let e = entry("one_to_one");
        let issue =
            (e.check)(&params(&e, &[]), &ctx(100, 250, false, false, false, 1)).unwrap_err();
        assert!(
            issue.message.contains("100") && issue.message.contains("250"),
            "{}",
            issue.message
        );
    }

    /// Every rule with its parameters, for the tests over all rules.
    fn all_rules() -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
        vec![
            ("all_to_all", vec![]),
            ("one_to_one", vec![]),
            ("pairwise_bernoulli", vec![("p", 0.05)]),
            ("fixed_indegree", vec![("indegree", 60.0)]),
            ("fixed_outdegree", vec![("outdegree", 60.0)]),
            ("fixed_total_number", vec![("N", 150_000.0)]),
        ]
    }

    #[test]
    fn connectivity_no_autapses_any_rule() {
        for multapses in [false, true] {
            for (name, kv) in all_rules() {
                let c = ctx(1500, 1500, true, false, multapses, 31);
                let conn = build(name, &kv, &c);
                assert_no_autapses(&conn, name);
                // Sanity: the rule made synapses, except one_to_one, which makes none here.
                assert_eq!(
                    conn.is_empty(),
                    name == "one_to_one",
                    "{name}: {} synapses",
                    conn.len()
                );
            }
        }
    }

    #[test]
    fn connectivity_deterministic_across_threads_and_seed_sensitive() {
        let run = |threads: usize, name: &str, kv: &[(&str, f64)], c: &RuleContext| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| build(name, kv, c))
        };
        for multapses in [false, true] {
            for (name, kv) in all_rules() {
                let c = ctx(2500, 2500, true, false, multapses, 37);
                let one = run(1, name, &kv, &c);
                let two = run(2, name, &kv, &c);
                assert_eq!(one.n_blocks(), 3);
                assert!(
                    one == two,
                    "{name} multapses={multapses}: 1 and 2 threads differ"
                );
                assert_eq!(one.max_delay, two.max_delay);
                if !matches!(name, "all_to_all" | "one_to_one") {
                    let other = run(
                        2,
                        name,
                        &kv,
                        &RuleContext {
                            seed: 38,
                            ..c.clone()
                        },
                    );
                    assert!(
                        one != other,
                        "{name} multapses={multapses}: the seed changes nothing"
                    );
                }
            }
        }
    }

    #[test]
    fn connectivity_hypergeometric_helper_moments() {
        // Direct check of the sampler in all four symmetry cases and both branches:
        // mean good * draws / n and variance mean (1 - good / n) (n - draws) / (n - 1).
        let reps = 20_000;
        for &(n, good, draws) in &[
            (10_000u64, 30u64, 200u64),
            (10_000, 9_970, 200),
            (10_000, 30, 9_800),
            (10_000, 2_000, 3_000),
            (50, 10, 40),
            (7, 7, 3),
            (7, 0, 3),
            (7, 3, 7),
        ] {
            let mut rng = Stream::new(3, Purpose::Count, 1, 2, n ^ good ^ draws);
            let xs: Vec<u32> = (0..reps)
                .map(|_| hypergeometric(n, good, draws, &mut rng) as u32)
                .collect();
            let (mean, var) = mean_var(&xs);
            let (nf, g, d) = (n as f64, good as f64, draws as f64);
            let em = g * d / nf;
            let ev = em * (1.0 - g / nf) * (nf - d) / (nf - 1.0);
            assert!(xs.iter().all(|&x| u64::from(x) <= good.min(draws)));
            if ev == 0.0 {
                assert!(
                    xs.iter().all(|&x| f64::from(x) == em),
                    "n={n} good={good} draws={draws}"
                );
                continue;
            }
            // SE of the mean sqrt(ev / reps); of the variance, binomial approximation.
            assert!(
                (mean - em).abs() < Z_TOLERANCE * (ev / reps as f64).sqrt(),
                "n={n} good={good} draws={draws}: mean {mean} vs {em}"
            );
            // Binomial(min(draws, n - draws), good / n) approximates the law (symmetry).
            let se = se_var_binomial(d.min(nf - d), g / nf, reps as f64);
            assert!(
                (var - ev).abs() < Z_TOLERANCE * se,
                "n={n} good={good} draws={draws}: variance {var} vs {ev} +- {se}"
            );
        }
    }

    /// Issue 8: a rank builds only the synapses onto its own targets, and they are exactly
    /// the synapses a full build gives them, for every rule, including `fixed_outdegree`
    /// (drawn from the sources' streams) and `fixed_total_number` (counts drawn for all
    /// targets), with ranges that split blocks. The local builds share one pool, each
    /// giving its arrays back after it is checked, so later builds sort into arrays that
    /// hold an earlier build's synapses (and differ in size).
    #[test]
    fn local_builds_are_the_full_build_restricted_to_their_targets() {
        use myelin_engine::{ArrayPool, build_connectivity_local};
        let cases: [(&str, &[(&str, f64)]); 6] = [
            ("all_to_all", &[]),
            ("one_to_one", &[]),
            ("pairwise_bernoulli", &[("p", 0.02)]),
            ("fixed_indegree", &[("indegree", 40.0)]),
            ("fixed_outdegree", &[("outdegree", 30.0)]),
            ("fixed_total_number", &[("N", 50_000.0)]),
        ];
        let n = if cfg!(debug_assertions) { 1500 } else { N };
        for (name, kv) in cases {
            let c = ctx(n, n, true, false, false, 11);
            let e = entry(name);
            let p = params(&e, kv);
            let rule = (e.create)(&p, &c);
            let w = Dist::Uniform {
                low: -1.0,
                high: 1.0,
            };
            let d = Dist::Uniform {
                low: 0.1,
                high: 2.0,
            };
            let full = build_connectivity(rule.as_ref(), &c, &w, &d, 0.1, DELIVERY_BLOCK);
            let all = full.synapses(DELIVERY_BLOCK);
            let cuts = [0, 700, 1100, n as usize];
            let mut union = Vec::new();
            let pool = ArrayPool::for_transposing();
            for r in cuts.windows(2) {
                let mut local = build_connectivity_local(
                    rule.as_ref(),
                    &c,
                    &w,
                    &d,
                    0.1,
                    DELIVERY_BLOCK,
                    r[0]..r[1],
                    &pool,
                );
                assert_eq!(
                    local.n_blocks(),
                    full.n_blocks(),
                    "{name}: a local build has the full block shape"
                );
                // Blocks without a local target are left empty, without row pointers.
                for blk in local.blocks().filter(|b| !b.has_rows()) {
                    assert!(blk.is_empty(), "{name}: a block without rows is empty");
                }
                let mine = local.synapses(DELIVERY_BLOCK);
                let expect: Vec<_> = all
                    .iter()
                    .copied()
                    .filter(|s| (r[0]..r[1]).contains(&(s.1 as usize)))
                    .collect();
                assert_eq!(
                    mine.len(),
                    expect.len(),
                    "{name}: targets {r:?} get the synapses of the full build"
                );
                union.extend(mine);
                pool.give(std::mem::take(local.blocks_mut()));
            }
            union.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            let mut all_sorted = all.clone();
            all_sorted.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            assert!(
                union.iter().zip(&all_sorted).all(|(a, b)| a.0 == b.0
                    && a.1 == b.1
                    && a.2.to_bits() == b.2.to_bits()
                    && a.3 == b.3),
                "{name}: the union of the local builds is the full build, bit for bit"
            );
        }
    }
}
