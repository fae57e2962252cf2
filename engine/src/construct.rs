//! Construction of connectivity: a rule answers "which sources does target `j` have", each
//! target drawing from its own streams; the engine packs the answers into target-blocked
//! compressed rows, block-parallel.

use myelin_components::{Connectivity, PackedSynapse, Synapse, SynapseBlock, SynapseStore};
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
    let x = delay_ms / dt;
    if !(x >= 1.0) {
        return 1;
    }
    if x >= f64::from(u16::MAX) {
        return u16::MAX;
    }
    // `x.round()` (half away from zero) without the call into libm that baseline x86-64
    // makes for it: `x - trunc(x)` is exact.
    let t = x as u32;
    let steps = if x - f64::from(t) >= 0.5 { t + 1 } else { t };
    steps.min(u32::from(u16::MAX)) as u16
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
        &ArrayPool::for_blocks(),
    )
}

/// Synapse arrays that construction hands from one projection to the next: when a
/// projection is stored source after source ([`Connectivity::store_by_source`]), its block
/// arrays are given back here ([`Self::give`]) and the blocks of the next projections are
/// sorted into them. Fresh arrays are memory the kernel must fault in and clear, page by
/// page (construction's system time); so the network's blocks pass through about as much
/// memory as the largest projection's blocks instead of all of it a second time. Dropped
/// (with what it holds) when construction ends.
#[derive(Debug, Default)]
pub struct ArrayPool {
    packed: std::sync::Mutex<Vec<Vec<PackedSynapse>>>,
    unpacked: std::sync::Mutex<Vec<Vec<Synapse>>>,
    transient: bool,
}

impl ArrayPool {
    /// A pool for blocks that are kept as they are built: new arrays are advised for huge
    /// pages ([`myelin_components::huge_page_vec`]), which delivery reads faster in the
    /// block layout.
    pub fn for_blocks() -> Self {
        Self::default()
    }

    /// A pool for blocks that will be stored source after source: new arrays are plain
    /// (their life is one projection's construction, and faulting in huge pages costs more
    /// than it could gain).
    pub fn for_transposing() -> Self {
        Self {
            transient: true,
            ..Self::default()
        }
    }

    /// Keeps the arrays of `blocks` for later blocks.
    pub fn give(&self, blocks: Vec<SynapseBlock>) {
        for b in blocks {
            match b.into_store() {
                SynapseStore::Packed(v) => lock(&self.packed).push(v),
                SynapseStore::Unpacked(v) => lock(&self.unpacked).push(v),
            }
        }
    }
}

/// Locks a pool's list; a panic while it was held (which leaves it whole) is ignored.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The arrays of a pool, by synapse layout.
trait Pooled: Sized + Clone {
    fn list(pool: &ArrayPool) -> &std::sync::Mutex<Vec<Vec<Self>>>;
}

impl Pooled for PackedSynapse {
    fn list(pool: &ArrayPool) -> &std::sync::Mutex<Vec<Vec<Self>>> {
        &pool.packed
    }
}

impl Pooled for Synapse {
    fn list(pool: &ArrayPool) -> &std::sync::Mutex<Vec<Vec<Self>>> {
        &pool.unpacked
    }
}

/// `len` copies of `value` in an array of the pool (the first large enough, else the
/// largest, grown), or in a new one advised for huge pages.
fn pooled_vec<T: Pooled>(pool: &ArrayPool, len: usize, value: T) -> Vec<T> {
    let taken = {
        let mut list = lock(T::list(pool));
        let k = list
            .iter()
            .position(|v| v.capacity() >= len)
            .or_else(|| (0..list.len()).max_by_key(|&k| list[k].capacity()));
        k.map(|k| list.swap_remove(k))
    };
    match taken {
        Some(mut v) => {
            v.clear();
            v.resize(len, value);
            v
        }
        None if pool.transient => vec![value; len],
        None => myelin_components::huge_page_vec(len, value),
    }
}

/// [`build_connectivity`] restricted to the targets in `local` (an MPI rank's own
/// neurons): the synapses onto them are exactly those a full build gives them, since each
/// target draws from its own streams; every other target has no synapse. The result has
/// one block per target block, as a full build; blocks holding no target of `local` are
/// left empty, without row pointers (`SynapseBlock::default()`), so a rank pays nothing for
/// the blocks of other ranks. With `local` covering all targets this is
/// [`build_connectivity`]. The blocks are sorted into arrays of `pool` where it has them.
#[expect(
    clippy::too_many_arguments,
    reason = "the rule's inputs, the targets, the pool"
)]
pub fn build_connectivity_local(
    rule: &dyn ConnectionRule,
    ctx: &RuleContext,
    weight: &Dist,
    delay: &Dist,
    dt: f64,
    block: usize,
    local: std::ops::Range<usize>,
    pool: &ArrayPool,
) -> Connectivity {
    let n_target = ctx.n_target as usize;
    let nb = n_target.div_ceil(block);
    let (blocks, delays): (Vec<SynapseBlock>, Vec<u16>) = (0..nb)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, b| {
            let (first, last) = (b * block, ((b + 1) * block).min(n_target));
            if first.max(local.start) >= last.min(local.end) {
                return (SynapseBlock::default(), 1);
            }
            build_block(
                rule, ctx, weight, delay, dt, first, last, &local, scratch, pool,
            )
        })
        .unzip();
    let max_delay = delays.into_iter().max().unwrap_or(1);
    Connectivity::new(blocks, ctx.n_source as usize, max_delay)
}

/// The working arrays of [`build_block`], kept by each worker from block to block: a
/// block's arrays are tens of megabytes, which the allocator would otherwise return to the
/// kernel and fault in again, page by page, for the next block.
#[derive(Default)]
struct Scratch {
    src: Vec<u32>,
    syn: Vec<Synapse>,
    fill: Vec<u32>,
    tmp: Vec<u32>,
    weights: Vec<f64>,
    delays: Vec<f64>,
}

/// The synapses onto targets `first..last` (those in `local`), as one block, and their
/// longest delay [steps] (1 without synapses).
fn build_block(
    rule: &dyn ConnectionRule,
    ctx: &RuleContext,
    weight: &Dist,
    delay: &Dist,
    dt: f64,
    first: usize,
    last: usize,
    local: &std::ops::Range<usize>,
    scratch: &mut Scratch,
    pool: &ArrayPool,
) -> (SynapseBlock, u16) {
    let (seed, id) = (ctx.seed, ctx.projection);
    // Each synapse as its source and the synapse itself, in target order.
    let Scratch {
        src,
        syn,
        fill,
        tmp,
        weights,
        delays,
    } = scratch;
    src.clear();
    syn.clear();
    // Row lengths, counted while the sources are in cache.
    let n_source = ctx.n_source as usize;
    let mut row_ptr = vec![0u32; n_source + 1];
    for j in first.max(local.start)..last.min(local.end) {
        tmp.clear();
        let mut cs = Stream::new(seed, Purpose::Connect, id, j as u32, 0);
        rule.sources(j as u32, &mut cs, tmp);
        let mut ws = Stream::new(seed, Purpose::Weight, id, j as u32, 0);
        let mut ds = Stream::new(seed, Purpose::Delay, id, j as u32, 0);
        let target = (j - first) as u16;
        for &s in tmp.iter() {
            row_ptr[s as usize + 1] += 1;
        }
        src.extend_from_slice(tmp);
        // The weight and delay streams are separate, so a target's weights can be drawn
        // before its delays: the same values as drawing them synapse by synapse.
        weights.clear();
        weight.sample_into(&mut ws, tmp.len(), weights);
        delays.clear();
        delay.sample_into(&mut ds, tmp.len(), delays);
        syn.extend(weights.iter().zip(delays.iter()).map(|(&w, &d)| Synapse {
            target,
            weight: w as f32,
            delay: delay_steps(d, dt),
        }));
    }
    // Counting sort by source; stable, so each row keeps ascending target / draw order. The
    // scatter moves each synapse straight into its place in the block, packed when every
    // synapse of the block fits a `PackedSynapse`.
    for i in 0..n_source {
        row_ptr[i + 1] += row_ptr[i];
    }
    fill.clear();
    fill.extend_from_slice(&row_ptr);
    // One pass over the synapses, still in the cache, for the layout and the longest delay.
    let (fits, longest) = syn.iter().fold((true, 1), |(fits, longest), &x| {
        (
            fits && PackedSynapse::pack(x).is_some(),
            longest.max(x.delay),
        )
    });
    let synapses = if fits {
        SynapseStore::Packed(scatter(src, syn, fill, pool, |x| {
            PackedSynapse::pack(x).expect("checked to fit")
        }))
    } else {
        SynapseStore::Unpacked(scatter(src, syn, fill, pool, |x| x))
    };
    (SynapseBlock::from_store(row_ptr, synapses), longest)
}

/// Moves synapse `k` (`syn[k]`, from source `src[k]`) to the next free place of its
/// source's row (`fill`), as `put` makes it.
#[inline]
fn scatter<T: Copy + Default + Pooled>(
    src: &[u32],
    syn: &[Synapse],
    fill: &mut [u32],
    pool: &ArrayPool,
    put: impl Fn(Synapse) -> T,
) -> Vec<T> {
    let mut out = pooled_vec(pool, syn.len(), T::default());
    for (&s, &x) in src.iter().zip(syn.iter()) {
        let p = &mut fill[s as usize];
        out[*p as usize] = put(x);
        *p += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::delay_steps;

    /// `delay_steps` is `round`, clamped to `1..=u16::MAX`, for every kind of quotient:
    /// halves, the float just below a half, tiny, huge and non-finite values.
    #[test]
    fn delay_steps_rounds_half_away_and_clamps() {
        let reference = |x: f64| x.round().clamp(1.0, f64::from(u16::MAX)) as u16;
        let mut xs = vec![
            0.0,
            0.3,
            0.5,
            0.999,
            1.0,
            1.5,
            2.5,
            14.999_999,
            15.000_000_000_000_002,
        ];
        xs.extend([
            0.5f64.next_down() + 7.0,
            7.5f64.next_down(),
            7.5f64.next_up(),
        ]);
        xs.extend([65_534.5, 65_535.4, 65_535.6, 1e12, 1e300, f64::INFINITY]);
        xs.extend((0..100_000).map(|k| k as f64 * 0.013_7));
        for x in xs {
            assert_eq!(delay_steps(x, 1.0), reference(x), "quotient {x}");
        }
        assert_eq!(delay_steps(1.5, 0.1), 15);
        assert_eq!(delay_steps(-3.0, 0.1), 1);
    }
}
