//! Construction of connectivity: a rule answers "which sources does target `j` have", each
//! target drawing from its own streams; the engine packs the answers into target-blocked
//! compressed rows, block-parallel.

use myelin_components::{Connectivity, SynapseBlock};
use rayon::prelude::*;

use crate::network::Dist;
use crate::rng::{Purpose, Stream};

/// What a rule knows about the projection it builds.
#[derive(Clone, Debug)]
pub struct RuleContext {
    /// Number of source neurons.
    pub n_source: u32,
    /// Number of target neurons.
    pub n_target: u32,
    /// Whether source and target are the same population.
    pub same_population: bool,
    /// Whether a neuron may connect to itself.
    pub autapses: bool,
    /// Whether a pair may be connected more than once.
    pub multapses: bool,
    /// Run seed.
    pub seed: u64,
    /// Stable id of the projection.
    pub projection: u32,
}

impl RuleContext {
    /// Whether source `i` may connect to target `j` as far as autapses go.
    #[inline]
    pub fn allowed(&self, i: u32, j: u32) -> bool {
        self.autapses || !self.same_population || i != j
    }

    /// Number of sources target `j` may draw from (all, or all but itself).
    #[inline]
    pub fn eligible_sources(&self) -> u32 {
        if self.autapses || !self.same_population {
            self.n_source
        } else {
            self.n_source - 1
        }
    }

    /// Number of targets source `i` may reach.
    #[inline]
    pub fn eligible_targets(&self) -> u32 {
        if self.autapses || !self.same_population {
            self.n_target
        } else {
            self.n_target - 1
        }
    }

    /// Maps `r` in `0..eligible` to a neuron index, skipping `exclude` when autapses are off.
    #[inline]
    pub fn skip_self(&self, r: u32, exclude: u32) -> u32 {
        if self.autapses || !self.same_population || r < exclude {
            r
        } else {
            r + 1
        }
    }
}

/// A connectivity rule: draws the presynaptic sources of each target neuron.
pub trait ConnectionRule: Send + Sync {
    /// Appends to `out` the sources (population-local) of target `j`, drawing only from
    /// `rng`, the target's own stream. Called concurrently for different targets.
    fn sources(&self, j: u32, rng: &mut Stream, out: &mut Vec<u32>);
}

/// A delay [ms] as whole steps of `dt` [ms]: rounded to nearest, at least 1.
#[inline]
pub fn delay_steps(delay_ms: f64, dt: f64) -> u16 {
    (delay_ms / dt).round().clamp(1.0, f64::from(u16::MAX)) as u16
}

/// Builds a projection's connectivity: for each target, its sources from the rule, then its
/// weights and delays from the target's weight and delay streams, packed into compressed
/// rows per block of `block` targets. The result depends on the seed and the description
/// only, never on the number of threads.
pub fn build_connectivity(
    rule: &dyn ConnectionRule,
    ctx: &RuleContext,
    weight: &Dist,
    delay: &Dist,
    dt: f64,
    block: usize,
) -> Connectivity {
    build_connectivity_local(
        rule,
        ctx,
        weight,
        delay,
        dt,
        block,
        0..ctx.n_target as usize,
    )
}

/// [`build_connectivity`] restricted to the targets in `local` (an MPI rank's own
/// neurons): the synapses onto them are exactly those a full build gives them, since each
/// target draws from its own streams; every other target has no synapse. The result has
/// one block per target block, as a full build; blocks holding no target of `local` are
/// left empty, without row pointers (`SynapseBlock::default()`), so a rank pays nothing for
/// the blocks of other ranks. With `local` covering all targets this is
/// [`build_connectivity`].
pub fn build_connectivity_local(
    rule: &dyn ConnectionRule,
    ctx: &RuleContext,
    weight: &Dist,
    delay: &Dist,
    dt: f64,
    block: usize,
    local: std::ops::Range<usize>,
) -> Connectivity {
    let n_target = ctx.n_target as usize;
    let nb = n_target.div_ceil(block);
    let blocks: Vec<SynapseBlock> = (0..nb)
        .into_par_iter()
        .map(|b| {
            let (first, last) = (b * block, ((b + 1) * block).min(n_target));
            if first.max(local.start) >= last.min(local.end) {
                return SynapseBlock::default();
            }
            build_block(rule, ctx, weight, delay, dt, first, last, &local)
        })
        .collect();
    let max_delay = blocks
        .iter()
        .flat_map(|b| b.delay.iter().copied())
        .max()
        .unwrap_or(1);
    Connectivity {
        blocks,
        max_delay,
        n_source: ctx.n_source as usize,
    }
}

fn build_block(
    rule: &dyn ConnectionRule,
    ctx: &RuleContext,
    weight: &Dist,
    delay: &Dist,
    dt: f64,
    first: usize,
    last: usize,
    local: &std::ops::Range<usize>,
) -> SynapseBlock {
    let (seed, id) = (ctx.seed, ctx.projection);
    let mut src: Vec<u32> = Vec::new();
    let mut tgt: Vec<u16> = Vec::new();
    let mut w: Vec<f32> = Vec::new();
    let mut d: Vec<u16> = Vec::new();
    let mut tmp = Vec::new();
    for j in first.max(local.start)..last.min(local.end) {
        tmp.clear();
        let mut cs = Stream::new(seed, Purpose::Connect, id, j as u32, 0);
        rule.sources(j as u32, &mut cs, &mut tmp);
        let mut ws = Stream::new(seed, Purpose::Weight, id, j as u32, 0);
        let mut ds = Stream::new(seed, Purpose::Delay, id, j as u32, 0);
        for &s in &tmp {
            src.push(s);
            tgt.push((j - first) as u16);
            w.push(weight.sample(&mut ws) as f32);
            d.push(delay_steps(delay.sample(&mut ds), dt));
        }
    }
    // Counting sort by source; stable, so each row keeps ascending target / draw order.
    let n_source = ctx.n_source as usize;
    let mut row_ptr = vec![0u32; n_source + 1];
    for &s in &src {
        row_ptr[s as usize + 1] += 1;
    }
    for i in 0..n_source {
        row_ptr[i + 1] += row_ptr[i];
    }
    let n = src.len();
    let mut fill = row_ptr.clone();
    let (mut t2, mut w2, mut d2) = (vec![0u16; n], vec![0f32; n], vec![0u16; n]);
    for k in 0..n {
        let p = &mut fill[src[k] as usize];
        let at = *p as usize;
        *p += 1;
        t2[at] = tgt[k];
        w2[at] = w[k];
        d2[at] = d[k];
    }
    SynapseBlock {
        row_ptr,
        target: t2,
        weight: w2,
        delay: d2,
    }
}
