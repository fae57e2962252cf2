//! Partitioning a network over MPI ranks, from its description alone.
//!
//! The nodes of the graph are population blocks (the engine's delivery blocks of
//! [`DELIVERY_BLOCK`] neurons), weighted by the memory they need on their rank: their
//! neuron state and their incoming synapses (which are also the delivery work). The edges
//! carry the expected spike traffic between blocks: the spikes per second of the source
//! block that have at least one target in the target block. Synapse counts are estimated
//! from the connectivity rules analytically, so a plan for any number of ranks is made
//! without building the network.
//!
//! Ranks own contiguous ranges of global neuron ids (populations in scene order). When
//! there are enough blocks, ranges start and end at block boundaries: a first split by
//! prefix sums of the block weights, then boundary blocks are moved between neighbouring
//! ranks where that lowers the cut traffic without breaking the balance. With more ranks
//! than blocks allow to balance, ranges are split at single neurons.

use std::fmt::Write as _;
use std::ops::Range;

use myelin_components::DELIVERY_BLOCK;
use myelin_engine::{ModelRegistry, NetworkSpec, ParamValue, delay_steps};
use petgraph::graph::{NodeIndex, UnGraph};
use serde::Serialize;

/// Bytes per synapse: a `u16` block-local target, an `f32` weight and a `u16` delay.
pub const SYNAPSE_BYTES: f64 = 8.0;
/// Bytes per compact row of a block: the source id and its row start (`u32` each).
pub const ROW_BYTES: f64 = 8.0;
/// Largest imbalance (max / mean - 1) of the block weights accepted from a split at block
/// boundaries; above it ranges are split at single neurons.
pub const BLOCK_SPLIT_TOLERANCE: f64 = 0.10;
/// Largest block graph refined by moving boundary blocks (its edges grow as blocks²).
const MAX_REFINED_BLOCKS: usize = 4096;
/// Refinement passes over all rank boundaries.
const REFINE_PASSES: usize = 8;

/// Why a network cannot be split as asked.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// No ranks asked for.
    #[error("--ranks must be at least 1, got {0}")]
    NoRanks(usize),
    /// More ranks than neurons: some rank would own nothing.
    #[error(
        "cannot split {neurons} neurons over {ranks} ranks: every rank needs at least one neuron; use at most {neurons} ranks"
    )]
    TooManyRanks {
        /// Ranks asked for.
        ranks: usize,
        /// Neurons in the network.
        neurons: usize,
    },
}

/// What the partitioner must know besides the description.
#[derive(Clone, Debug)]
pub struct Costs {
    /// Bytes of neuron state per neuron, per population (scene order).
    pub state_bytes: Vec<f64>,
    /// Assumed mean firing rate [Hz], for the traffic estimates.
    pub rate_hz: f64,
}

/// Bytes of per-neuron bookkeeping besides the model's state variables: the external
/// current (`f32`) and a spike-list entry's worth (`u32`).
pub const NEURON_OVERHEAD_BYTES: f64 = 8.0;

impl Costs {
    /// The costs of `spec`'s populations: each model's state columns (4 bytes each, from
    /// the registry) plus [`NEURON_OVERHEAD_BYTES`], and the assumed rate.
    pub fn for_scene(spec: &NetworkSpec, registry: &ModelRegistry, rate_hz: f64) -> Self {
        Self {
            state_bytes: spec
                .populations
                .iter()
                .map(|p| {
                    let e = &registry.neurons[p.model.as_str()];
                    (e.real.len() + e.int.len()) as f64 * 4.0 + NEURON_OVERHEAD_BYTES
                })
                .collect(),
            rate_hz,
        }
    }
}

/// The expected size of one projection.
#[derive(Clone, Debug)]
struct ProjEstimate {
    source: usize,
    target: usize,
    /// Expected synapses of the projection.
    synapses: f64,
}

/// Expected synapse counts of every projection (scene order), from the rules' parameters.
/// Rules the partitioner does not know (plugins) count as no synapses and are named in
/// the returned notes.
fn estimate(spec: &NetworkSpec) -> (Vec<ProjEstimate>, Vec<String>) {
    let index = |name: &str| {
        spec.populations
            .iter()
            .position(|p| p.name == name)
            .expect("validated scene")
    };
    let mut notes = Vec::new();
    let est = spec
        .projections
        .iter()
        .map(|j| {
            let (s, t) = (index(&j.source), index(&j.target));
            let (ns, nt) = (
                spec.populations[s].size as f64,
                spec.populations[t].size as f64,
            );
            let same = s == t && !j.autapses;
            let eligible = if same { (ns - 1.0).max(0.0) } else { ns };
            let num = |k: &str| match j.rule_params.get(k) {
                Some(ParamValue::Number(x)) => *x,
                _ => 0.0,
            };
            let synapses = match j.rule.as_str() {
                "all_to_all" => nt * eligible,
                "one_to_one" => {
                    if same {
                        0.0
                    } else {
                        ns.min(nt)
                    }
                }
                "pairwise_bernoulli" => num("p") * nt * eligible,
                "fixed_indegree" => num("indegree") * nt,
                "fixed_outdegree" => num("outdegree") * ns,
                "fixed_total_number" => num("N"),
                other => {
                    notes.push(format!(
                        "projection {} uses rule {other}, whose synapse count is not known here: counted as 0",
                        j.display_name()
                    ));
                    0.0
                }
            };
            ProjEstimate {
                source: s,
                target: t,
                synapses,
            }
        })
        .collect();
    (est, notes)
}

/// How rank ranges were cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Ranges start and end at population block boundaries.
    Blocks,
    /// Ranges may split a block.
    Neurons,
}

/// An assignment of neurons to ranks: rank `r` owns the global ids
/// `bounds[r]..bounds[r + 1]` (populations in scene order, ids consecutive).
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// First global id of each rank, then the number of neurons.
    pub bounds: Vec<u64>,
    /// How the ranges were cut.
    pub granularity: Granularity,
    /// First global id of each population, then the number of neurons.
    pub population_first: Vec<u64>,
}

impl Plan {
    /// Number of ranks.
    pub fn ranks(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The neurons of each population (scene order, population-local indices) that rank
    /// `r` owns; empty ranges where it owns none.
    pub fn local(&self, r: usize) -> Vec<Range<usize>> {
        let (lo, hi) = (self.bounds[r], self.bounds[r + 1]);
        self.population_first
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0].max(lo), w[1].min(hi));
                if a < b {
                    (a - w[0]) as usize..(b - w[0]) as usize
                } else {
                    0..0
                }
            })
            .collect()
    }

    /// The rank owning global neuron id `g`.
    pub fn owner(&self, g: u64) -> usize {
        self.bounds.partition_point(|&b| b <= g) - 1
    }
}

/// One population block: a node of the partition graph.
#[derive(Clone, Debug)]
struct Block {
    pop: usize,
    /// Global ids of its neurons.
    ids: Range<u64>,
    /// Bytes it needs on its rank.
    weight: f64,
}

/// The per-neuron costs of each population: bytes on its rank and incoming synapses.
struct PerNeuron {
    bytes: Vec<f64>,
    in_synapses: Vec<f64>,
}

fn per_neuron(spec: &NetworkSpec, est: &[ProjEstimate], costs: &Costs) -> PerNeuron {
    let n = spec.populations.len();
    let mut in_synapses = vec![0.0; n];
    let mut rows = vec![0.0; n];
    for e in est {
        let nt = spec.populations[e.target].size.max(1) as f64;
        let ns = spec.populations[e.source].size as f64;
        in_synapses[e.target] += e.synapses / nt;
        // Compact rows: one per source with a synapse onto a block, spread over the
        // block's neurons.
        let b = DELIVERY_BLOCK.min(spec.populations[e.target].size.max(1)) as f64;
        let present = ns * (1.0 - (-(e.synapses / ns.max(1.0)) * b / nt).exp());
        rows[e.target] += present * ROW_BYTES / b;
    }
    let bytes = (0..n)
        .map(|p| in_synapses[p] * SYNAPSE_BYTES + rows[p] + costs.state_bytes[p])
        .collect();
    PerNeuron { bytes, in_synapses }
}

fn blocks(spec: &NetworkSpec, pn: &PerNeuron) -> Vec<Block> {
    let mut out = Vec::new();
    let mut first = 0u64;
    for (p, pop) in spec.populations.iter().enumerate() {
        let mut i = 0;
        while i < pop.size {
            let len = DELIVERY_BLOCK.min(pop.size - i);
            out.push(Block {
                pop: p,
                ids: first + i as u64..first + (i + len) as u64,
                weight: pn.bytes[p] * len as f64,
            });
            i += len;
        }
        first += pop.size as u64;
    }
    out
}

/// The block graph: node weights are the blocks' bytes, edge weights the expected spikes
/// per second between two blocks (both directions summed) that cross ranks when the
/// blocks are apart.
fn block_graph(
    spec: &NetworkSpec,
    est: &[ProjEstimate],
    blocks: &[Block],
    rate_hz: f64,
) -> UnGraph<f64, f64> {
    let mut g = UnGraph::<f64, f64>::with_capacity(blocks.len(), 0);
    for b in blocks {
        g.add_node(b.weight);
    }
    let mut by_pop: Vec<Vec<usize>> = vec![Vec::new(); spec.populations.len()];
    for (k, b) in blocks.iter().enumerate() {
        by_pop[b.pop].push(k);
    }
    for e in est {
        let (ns, nt) = (
            spec.populations[e.source].size.max(1) as f64,
            spec.populations[e.target].size.max(1) as f64,
        );
        let out_degree = e.synapses / ns;
        for &a in &by_pop[e.source] {
            let na = (blocks[a].ids.end - blocks[a].ids.start) as f64;
            for &b in &by_pop[e.target] {
                if a == b {
                    continue;
                }
                let nb = (blocks[b].ids.end - blocks[b].ids.start) as f64;
                let p_hit = 1.0 - (-out_degree * nb / nt).exp();
                let w = na * rate_hz * p_hit;
                if w > 0.0 {
                    let (ia, ib) = (NodeIndex::new(a), NodeIndex::new(b));
                    match g.find_edge(ia, ib) {
                        Some(x) => g[x] += w,
                        None => {
                            g.add_edge(ia, ib, w);
                        }
                    }
                }
            }
        }
    }
    g
}

/// Splits `spec` over `ranks` ranks.
pub fn partition(spec: &NetworkSpec, ranks: usize, costs: &Costs) -> Result<Plan, PartitionError> {
    if ranks == 0 {
        return Err(PartitionError::NoRanks(ranks));
    }
    let neurons: usize = spec.populations.iter().map(|p| p.size).sum();
    if ranks > neurons {
        return Err(PartitionError::TooManyRanks { ranks, neurons });
    }
    let (est, _) = estimate(spec);
    let pn = per_neuron(spec, &est, costs);
    let mut population_first = vec![0u64];
    for p in &spec.populations {
        population_first.push(population_first.last().copied().unwrap_or(0) + p.size as u64);
    }
    let blocks = blocks(spec, &pn);
    if let Some(bounds) = split_blocks(&blocks, ranks) {
        let bounds = if blocks.len() <= MAX_REFINED_BLOCKS && ranks > 1 {
            let g = block_graph(spec, &est, &blocks, costs.rate_hz);
            refine(&g, &blocks, bounds)
        } else {
            bounds
        };
        let ids: Vec<u64> = bounds
            .iter()
            .map(|&b| blocks.get(b).map_or(neurons as u64, |x| x.ids.start))
            .collect();
        return Ok(Plan {
            bounds: ids,
            granularity: Granularity::Blocks,
            population_first,
        });
    }
    Ok(Plan {
        bounds: split_neurons(spec, &pn, ranks, &population_first),
        granularity: Granularity::Neurons,
        population_first,
    })
}

/// A split at block boundaries by prefix sums (`bounds[r]` is rank r's first block; the
/// last entry is the number of blocks), if its imbalance is within
/// [`BLOCK_SPLIT_TOLERANCE`].
fn split_blocks(blocks: &[Block], ranks: usize) -> Option<Vec<usize>> {
    let nb = blocks.len();
    if ranks > nb {
        return None;
    }
    let total: f64 = blocks.iter().map(|b| b.weight).sum();
    let mut prefix = vec![0.0];
    for b in blocks {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + b.weight);
    }
    let mut bounds = vec![0usize];
    for r in 1..ranks {
        let goal = total * r as f64 / ranks as f64;
        let prev = bounds[r - 1];
        // The boundary nearest the goal, leaving one block at least to each rank.
        let mut k = prefix.partition_point(|&x| x < goal);
        if k > 0 && (goal - prefix[k - 1]) < (prefix[k.min(nb)] - goal) {
            k -= 1;
        }
        let k = k.clamp(prev + 1, nb - (ranks - r));
        bounds.push(k);
    }
    bounds.push(nb);
    let mean = total / ranks as f64;
    let max = bounds
        .windows(2)
        .map(|w| prefix[w[1]] - prefix[w[0]])
        .fold(0.0, f64::max);
    (mean <= 0.0 || max / mean - 1.0 <= BLOCK_SPLIT_TOLERANCE).then_some(bounds)
}

/// Moves boundary blocks between neighbouring ranks where that lowers the cut traffic and
/// keeps the heavier of the two ranks within the balance tolerance (or no heavier than
/// before).
fn refine(g: &UnGraph<f64, f64>, blocks: &[Block], mut bounds: Vec<usize>) -> Vec<usize> {
    let ranks = bounds.len() - 1;
    let total: f64 = blocks.iter().map(|b| b.weight).sum();
    let limit = total / ranks as f64 * (1.0 + BLOCK_SPLIT_TOLERANCE);
    let rank_of = |bounds: &[usize], k: usize| bounds.partition_point(|&b| b <= k) - 1;
    let load = |bounds: &[usize], r: usize| -> f64 {
        blocks[bounds[r]..bounds[r + 1]]
            .iter()
            .map(|b| b.weight)
            .sum()
    };
    // Traffic between block k and the blocks of rank r.
    let to_rank = |bounds: &[usize], k: usize, r: usize| -> f64 {
        g.edges(NodeIndex::new(k))
            .filter(|e| {
                use petgraph::visit::EdgeRef;
                let other = if e.source().index() == k {
                    e.target().index()
                } else {
                    e.source().index()
                };
                rank_of(bounds, other) == r
            })
            .map(|e| *e.weight())
            .sum()
    };
    for _ in 0..REFINE_PASSES {
        let mut moved = false;
        for r in 0..ranks - 1 {
            // Move the last block of r to r + 1, or the first block of r + 1 to r.
            for (from, to, k) in [(r, r + 1, bounds[r + 1] - 1), (r + 1, r, bounds[r + 1])] {
                if bounds[from + 1] - bounds[from] < 2 {
                    continue;
                }
                let gain = to_rank(&bounds, k, to) - to_rank(&bounds, k, from);
                if gain <= 1e-9 {
                    continue;
                }
                let w = blocks[k].weight;
                let (lf, lt) = (load(&bounds, from), load(&bounds, to));
                let before = lf.max(lt);
                let after = (lf - w).max(lt + w);
                if after <= limit.max(before) {
                    bounds[r + 1] = if from == r { k } else { k + 1 };
                    moved = true;
                    break;
                }
            }
        }
        if !moved {
            break;
        }
    }
    bounds
}

/// A split at single neurons: rank r starts where the cumulative bytes reach r / ranks of
/// the total, each rank keeping one neuron at least.
fn split_neurons(
    spec: &NetworkSpec,
    pn: &PerNeuron,
    ranks: usize,
    population_first: &[u64],
) -> Vec<u64> {
    let neurons = *population_first.last().unwrap_or(&0);
    let mut pop_prefix = vec![0.0];
    for (p, pop) in spec.populations.iter().enumerate() {
        pop_prefix.push(pop_prefix[p] + pn.bytes[p] * pop.size as f64);
    }
    let total = *pop_prefix.last().unwrap_or(&0.0);
    let mut bounds = vec![0u64];
    for r in 1..ranks {
        let goal = total * r as f64 / ranks as f64;
        let p =
            (pop_prefix.partition_point(|&x| x <= goal).max(1) - 1).min(spec.populations.len() - 1);
        let per = pn.bytes[p].max(f64::MIN_POSITIVE);
        let within = ((goal - pop_prefix[p]) / per).round().max(0.0) as u64;
        let g = (population_first[p] + within.min(spec.populations[p].size as u64))
            .clamp(bounds[r - 1] + 1, neurons - (ranks - r) as u64);
        bounds.push(g);
    }
    bounds.push(neurons);
    bounds
}

/// What one rank holds and sends under a plan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RankLoad {
    /// Neurons it owns.
    pub neurons: u64,
    /// Expected synapses onto them.
    pub synapses: f64,
    /// Expected bytes of its own part: synapses, their compact rows, neuron state.
    pub local_bytes: f64,
    /// Bytes a rank holds for neurons it does not own, in this implementation: their state
    /// and the ring buffers of all neurons (every rank keeps every population's state
    /// arrays; see docs/distributed.md).
    pub replicated_bytes: f64,
    /// Expected spikes per second it sends point-to-point (one per spike and rank holding
    /// a target of the spiking neuron).
    pub sent_per_s: f64,
    /// Expected spikes per second it receives point-to-point.
    pub received_per_s: f64,
}

/// A partition and its expected loads: what `myelin partition` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scene name, for the heading.
    pub scene: String,
    /// The assumed mean firing rate [Hz].
    pub rate_hz: f64,
    /// The plan.
    pub granularity: Granularity,
    /// The exchange interval [steps] (the smallest delay any synapse can have).
    pub min_delay_steps: u16,
    /// Expected synapses in total.
    pub synapses: f64,
    /// Per rank.
    pub ranks: Vec<RankLoad>,
    /// Expected spikes per second a collective exchange sends each rank (every spike of
    /// every other rank).
    pub collective_received_per_s: f64,
    /// Notes on the estimates.
    pub notes: Vec<String>,
}

/// The smallest delay [steps] a synapse of `spec` can have: the exchange interval.
pub fn min_delay_steps(spec: &NetworkSpec) -> u16 {
    spec.projections
        .iter()
        .map(|j| delay_steps(j.delay.lower_bound().max(0.0), spec.dt))
        .min()
        .unwrap_or(u16::MAX)
}

/// The largest delay [steps] of synapses onto each population (1 without).
fn max_delay_steps(spec: &NetworkSpec, est: &[ProjEstimate]) -> Vec<u16> {
    let mut md = vec![1u16; spec.populations.len()];
    for (e, j) in est.iter().zip(&spec.projections) {
        let hi = j.delay.upper_bound();
        let steps = if hi.is_finite() {
            delay_steps(hi, spec.dt)
        } else {
            // An unbounded normal: about the 6-sigma tail.
            delay_steps(j.delay.lower_bound().max(0.0) + 1.0, spec.dt)
        };
        md[e.target] = md[e.target].max(steps);
    }
    md
}

/// The expected loads of `plan`.
pub fn report(spec: &NetworkSpec, name: &str, plan: &Plan, costs: &Costs) -> Report {
    let (est, notes) = estimate(spec);
    let pn = per_neuron(spec, &est, costs);
    let ranks = plan.ranks();
    let npop = spec.populations.len();
    let md = max_delay_steps(spec, &est);
    // Replicated: state and rings of all neurons.
    let mut all_state = 0.0;
    for (p, pop) in spec.populations.iter().enumerate() {
        let padded = pop.size.div_ceil(DELIVERY_BLOCK) * DELIVERY_BLOCK;
        all_state += costs.state_bytes[p] * pop.size as f64
            + (f64::from(md[p]) + 1.0) * 2.0 * 4.0 * padded as f64;
    }
    let slices: Vec<Vec<Range<usize>>> = (0..ranks).map(|r| plan.local(r)).collect();
    // lambda[p][s]: expected synapses of one neuron of p onto the neurons of rank s.
    let mut lambda = vec![vec![0.0f64; ranks]; npop];
    for e in &est {
        let (ns, nt) = (
            spec.populations[e.source].size.max(1) as f64,
            spec.populations[e.target].size.max(1) as f64,
        );
        let k = e.synapses / ns;
        for (s, sl) in slices.iter().enumerate() {
            let len = sl[e.target].len() as f64;
            if len > 0.0 {
                lambda[e.source][s] += k * len / nt;
            }
        }
    }
    let hit: Vec<Vec<f64>> = lambda
        .iter()
        .map(|l| l.iter().map(|&x| 1.0 - (-x).exp()).collect())
        .collect();
    let hit_sum: Vec<f64> = hit.iter().map(|h| h.iter().sum()).collect();
    let mut loads: Vec<RankLoad> = vec![RankLoad::default(); ranks];
    let rate = costs.rate_hz;
    for (r, sl) in slices.iter().enumerate() {
        let l = &mut loads[r];
        let mut own_state = 0.0;
        for (p, range) in sl.iter().enumerate() {
            let len = range.len() as f64;
            if len == 0.0 {
                continue;
            }
            l.neurons += range.len() as u64;
            l.synapses += pn.in_synapses[p] * len;
            l.local_bytes += pn.bytes[p] * len;
            own_state += costs.state_bytes[p] * len;
            // Spikes of p's neurons here, sent to every other rank holding a target.
            l.sent_per_s += len * rate * (hit_sum[p] - hit[p][r]);
        }
        l.replicated_bytes = (all_state - own_state).max(0.0);
        // Received: from every population, the neurons elsewhere that hit this rank.
        for (p, pop) in spec.populations.iter().enumerate() {
            let elsewhere = pop.size as f64 - sl[p].len() as f64;
            l.received_per_s += elsewhere * rate * hit[p][r];
        }
    }
    let neurons: f64 = spec.populations.iter().map(|p| p.size as f64).sum();
    Report {
        scene: name.to_string(),
        rate_hz: rate,
        granularity: plan.granularity,
        min_delay_steps: min_delay_steps(spec),
        synapses: est.iter().map(|e| e.synapses).sum(),
        collective_received_per_s: if ranks > 1 {
            neurons * rate * (ranks - 1) as f64 / ranks as f64
        } else {
            0.0
        },
        ranks: loads,
        notes,
    }
}

/// Max over mean, less one: 0 for a perfect balance.
fn imbalance(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    let sum: f64 = xs.clone().sum();
    let max = xs.fold(0.0, f64::max);
    if sum > 0.0 {
        (max / (sum / n) - 1.0).max(0.0)
    } else {
        0.0
    }
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

/// Ranks listed in full by [`Report::table`]; above, the first and last few and the
/// extremes.
pub const LISTED_RANKS: usize = 32;

impl Report {
    /// The report as a table: per rank, then totals and imbalance.
    pub fn table(&self) -> String {
        let ranks = self.ranks.len();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "partition of {} over {ranks} rank(s), cut at {}; traffic at an assumed {} Hz per neuron; exchange every {} step(s)",
            self.scene,
            match self.granularity {
                Granularity::Blocks => "block boundaries",
                Granularity::Neurons => "single neurons",
            },
            self.rate_hz,
            self.min_delay_steps
        );
        let _ = writeln!(
            s,
            "{:>7} {:>10} {:>14} {:>12} {:>12} {:>14} {:>14}",
            "rank", "neurons", "synapses", "local MiB", "total MiB", "sent [1/s]", "recv [1/s]"
        );
        let row = |s: &mut String, r: usize, l: &RankLoad| {
            let _ = writeln!(
                s,
                "{:>7} {:>10} {:>14.0} {:>12.1} {:>12.1} {:>14.0} {:>14.0}",
                r,
                l.neurons,
                l.synapses,
                mib(l.local_bytes),
                mib(l.local_bytes + l.replicated_bytes),
                l.sent_per_s,
                l.received_per_s
            );
        };
        let mut listed: Vec<usize> = if ranks <= LISTED_RANKS {
            (0..ranks).collect()
        } else {
            let mut v: Vec<usize> = (0..4).chain(ranks - 4..ranks).collect();
            let arg = |f: &dyn Fn(&RankLoad) -> f64| {
                (0..ranks)
                    .max_by(|&a, &b| f(&self.ranks[a]).total_cmp(&f(&self.ranks[b])))
                    .unwrap_or(0)
            };
            v.push(arg(&|l| l.local_bytes));
            v.push(arg(&|l| l.sent_per_s));
            v.push(arg(&|l| -l.local_bytes));
            v
        };
        listed.sort_unstable();
        listed.dedup();
        let mut last = None;
        for &r in &listed {
            if last.is_some_and(|l: usize| r > l + 1) {
                let _ = writeln!(s, "{:>7}", "...");
            }
            row(&mut s, r, &self.ranks[r]);
            last = Some(r);
        }
        let tot = |f: &dyn Fn(&RankLoad) -> f64| self.ranks.iter().map(f).sum::<f64>();
        let imb = |f: &dyn Fn(&RankLoad) -> f64| imbalance(self.ranks.iter().map(f));
        let _ = writeln!(
            s,
            "{:>7} {:>10.0} {:>14.0} {:>12.1} {:>12.1} {:>14.0} {:>14.0}",
            "total",
            tot(&|l| l.neurons as f64),
            tot(&|l| l.synapses),
            mib(tot(&|l| l.local_bytes)),
            mib(tot(&|l| l.local_bytes + l.replicated_bytes)),
            tot(&|l| l.sent_per_s),
            tot(&|l| l.received_per_s)
        );
        let _ = writeln!(
            s,
            "{:>7} {:>9.1}% {:>13.1}% {:>11.1}% {:>11.1}% {:>13.1}% {:>13.1}%",
            "imbal.",
            100.0 * imb(&|l| l.neurons as f64),
            100.0 * imb(&|l| l.synapses),
            100.0 * imb(&|l| l.local_bytes),
            100.0 * imb(&|l| l.local_bytes + l.replicated_bytes),
            100.0 * imb(&|l| l.sent_per_s),
            100.0 * imb(&|l| l.received_per_s)
        );
        let _ = writeln!(
            s,
            "p2p cut traffic {:.0} spikes/s in total; collective exchange would deliver {:.0} spikes/s to each rank",
            tot(&|l| l.sent_per_s),
            self.collective_received_per_s
        );
        let _ = writeln!(
            s,
            "imbalance is max/mean - 1; local MiB: synapses, their compact rows and the rank's neuron state; total MiB adds what every rank holds for all neurons (state and ring buffers)"
        );
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use myelin_engine::{Dist, PopulationSpec, ProjectionSpec};

    use super::*;

    /// Brunel's network: 10,000 excitatory and 2,500 inhibitory neurons, in-degree 10 %.
    fn brunel() -> NetworkSpec {
        let pop = |name: &str, size| PopulationSpec {
            name: name.into(),
            size,
            model: "iaf_psc_delta".into(),
            params: BTreeMap::new(),
            initial: BTreeMap::new(),
        };
        let proj = |s: &str, t: &str, k: f64| ProjectionSpec {
            name: None,
            source: s.into(),
            target: t.into(),
            rule: "fixed_indegree".into(),
            rule_params: BTreeMap::from([("indegree".to_string(), ParamValue::Number(k))]),
            autapses: false,
            multapses: true,
            weight: Dist::Constant(0.1),
            delay: Dist::Constant(1.5),
            warm_start: None,
            plasticity: None,
        };
        NetworkSpec {
            dt: 0.1,
            seed: 1,
            populations: vec![pop("E", 10_000), pop("I", 2_500)],
            projections: vec![
                proj("E", "E", 1000.0),
                proj("E", "I", 1000.0),
                proj("I", "E", 250.0),
                proj("I", "I", 250.0),
            ],
            ..NetworkSpec::default()
        }
    }

    fn costs() -> Costs {
        Costs {
            state_bytes: vec![16.0, 16.0],
            rate_hz: 10.0,
        }
    }

    #[test]
    fn every_neuron_has_exactly_one_rank() {
        let spec = brunel();
        for ranks in [1, 2, 3, 7, 13, 100, 12_500] {
            let plan = partition(&spec, ranks, &costs()).expect("splits");
            assert_eq!(plan.ranks(), ranks);
            assert_eq!(plan.bounds[0], 0, "{ranks} ranks: starts at neuron 0");
            assert_eq!(
                plan.bounds[ranks], 12_500,
                "{ranks} ranks: ends at the last"
            );
            assert!(
                plan.bounds.windows(2).all(|w| w[0] < w[1]),
                "{ranks} ranks: every rank owns a neuron"
            );
            let mut per_pop = [0usize; 2];
            for r in 0..ranks {
                for (p, range) in plan.local(r).iter().enumerate() {
                    per_pop[p] += range.len();
                }
            }
            assert_eq!(
                per_pop,
                [10_000, 2_500],
                "{ranks} ranks: local ranges cover all"
            );
            assert_eq!(plan.owner(12_499), ranks - 1);
        }
    }

    #[test]
    fn loads_are_balanced_and_total_the_network() {
        let spec = brunel();
        for ranks in [2, 8, 1024] {
            let plan = partition(&spec, ranks, &costs()).expect("splits");
            let rep = report(&spec, "brunel", &plan, &costs());
            let syn: f64 = rep.ranks.iter().map(|r| r.synapses).sum();
            assert!(
                (syn - 15_625_000.0).abs() < 1.0,
                "{ranks} ranks: synapses total the network's, got {syn}"
            );
            let imb = imbalance(rep.ranks.iter().map(|r| r.local_bytes));
            assert!(
                imb <= BLOCK_SPLIT_TOLERANCE + 0.02,
                "{ranks} ranks: memory imbalance {imb}"
            );
            assert_eq!(rep.min_delay_steps, 15, "1.5 ms delays at 0.1 ms steps");
            let sent: f64 = rep.ranks.iter().map(|r| r.sent_per_s).sum();
            let recv: f64 = rep.ranks.iter().map(|r| r.received_per_s).sum();
            assert!(
                (sent - recv).abs() < 1e-6 * sent.max(1.0),
                "traffic is conserved"
            );
        }
    }

    #[test]
    fn more_ranks_than_neurons_is_an_error_naming_both() {
        let err = partition(&brunel(), 12_501, &costs()).expect_err("too many ranks");
        let msg = err.to_string();
        assert!(
            msg.contains("12500 neurons") && msg.contains("12501 ranks"),
            "{msg}"
        );
        assert!(partition(&brunel(), 0, &costs()).is_err(), "zero ranks");
    }

    #[test]
    fn a_dry_run_for_100000_ranks_is_quick_to_make() {
        let mut spec = brunel();
        spec.populations[0].size = 200_000;
        let plan = partition(&spec, 100_000, &costs()).expect("splits");
        let rep = report(&spec, "big", &plan, &costs());
        assert_eq!(rep.ranks.len(), 100_000);
        assert!(rep.table().contains("imbal."), "the table has totals");
    }
}
