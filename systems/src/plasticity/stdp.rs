//! Pair-based STDP as NEST's `stdp_synapse` (all-to-all pairing) and its nearest-neighbour
//! variants `stdp_nn_symm_synapse`, `stdp_nn_pre_centered_synapse` and
//! `stdp_nn_restr_synapse`, with NEST's weight dependence (`mu_plus = mu_minus = 0`:
//! additive, `= 1`: multiplicative) and bounds `[0, Wmax]`.
//!
//! The kernel ([`deliver_with`], [`catch_up_with`]) is shared with the power-law rule
//! ([`super::power_law`]): it follows NEST's `send()` step by step. For a presynaptic spike
//! at time `t` through a synapse of delay `d` (all of it dendritic, as NEST has it), first
//! every postsynaptic spike `t_post` with `t_last - d < t_post <= t - d` (since the previous
//! presynaptic spike `t_last`) facilitates the weight, in time order, with the presynaptic
//! trace at `t_post + d`; then the postsynaptic trace at `t - d` (spikes strictly before
//! it) depresses it; then the new weight is transmitted and the presynaptic trace takes the
//! new spike.

use myelin_components::{PlasticityState, PostBlock, PreView, RingBlockMut, TraceKind};
use myelin_engine::{
    ParamIssue, ParamSpec, Params, PlasticStep, PlasticSynapses, PlasticityKernel, PlasticityRule,
    Range, VarSpec,
};

use super::catch_up_steps;
use super::math::Power;

/// How a weight changes with one pairing: facilitation by a presynaptic trace value,
/// depression by a postsynaptic one. Computed in `f64` as NEST does; the weight is stored
/// as `f32` after each presynaptic spike.
pub trait WeightDependence: Send + Sync + 'static {
    /// The weight after facilitation by presynaptic trace `kplus`.
    fn facilitate(&self, w: f64, kplus: f64) -> f64;
    /// The weight after depression by postsynaptic trace `kminus`.
    fn depress(&self, w: f64, kminus: f64) -> f64;
}

/// NEST's `stdp_synapse` weight dependence, on the weight normalised by `Wmax`:
/// `w/Wmax + lambda (1 - w/Wmax)^mu_plus K+`, capped at 1, and
/// `w/Wmax - alpha lambda (w/Wmax)^mu_minus K-`, floored at 0.
#[derive(Clone, Debug)]
pub struct Bounded {
    /// Step size.
    pub lambda: f64,
    /// Asymmetry: depression / facilitation.
    pub alpha: f64,
    /// Weight-dependence exponent of facilitation.
    pub mu_plus: Power,
    /// Weight-dependence exponent of depression.
    pub mu_minus: Power,
    /// Largest weight (its sign is the weights' sign).
    pub w_max: f64,
}

impl WeightDependence for Bounded {
    #[inline(always)]
    fn facilitate(&self, w: f64, kplus: f64) -> f64 {
        let norm_w =
            (w / self.w_max) + (self.lambda * self.mu_plus.pow(1.0 - (w / self.w_max)) * kplus);
        if norm_w < 1.0 {
            norm_w * self.w_max
        } else {
            self.w_max
        }
    }

    #[inline(always)]
    fn depress(&self, w: f64, kminus: f64) -> f64 {
        let norm_w = (w / self.w_max)
            - (self.alpha * self.lambda * self.mu_minus.pow(w / self.w_max) * kminus);
        if norm_w > 0.0 {
            norm_w * self.w_max
        } else {
            0.0
        }
    }
}

/// How pre- and postsynaptic spikes pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Every pre-post pair (traces sum over all earlier spikes): `stdp_synapse`,
    /// `stdp_pl_synapse_hom`.
    AllToAll,
    /// Each postsynaptic spike pairs with the latest presynaptic one before it, and each
    /// presynaptic spike with the latest postsynaptic one before it:
    /// `stdp_nn_symm_synapse`.
    NearestSymmetric,
    /// A presynaptic spike facilitates with the first postsynaptic spike after it, through
    /// a presynaptic trace that the postsynaptic spike resets; it depresses with the latest
    /// postsynaptic spike before it: `stdp_nn_pre_centered_synapse`.
    NearestPreCentered,
    /// Only the nearest pairs of an alternating sequence: the first postsynaptic spike after
    /// a presynaptic one facilitates, and a presynaptic spike depresses with the latest
    /// postsynaptic spike only if one came since the previous presynaptic spike:
    /// `stdp_nn_restr_synapse`.
    NearestRestricted,
}

/// Pairing codes, the const parameter of the kernels (one monomorphised loop each).
const ALL_TO_ALL: u8 = 0;
const NEAREST_SYMMETRIC: u8 = 1;
const NEAREST_PRE_CENTERED: u8 = 2;
const NEAREST_RESTRICTED: u8 = 3;

/// Index of `t_last` (stamp of the source's last spike) in the per-source step columns.
const T_LAST: usize = 0;
/// Index of `paired_until` (stamp up to which the source's pairings were applied; its
/// last spike, or a later catch-up) in the per-source step columns.
const FROM: usize = 1;
/// Index of the presynaptic trace `Kplus` in the per-source real columns (all-to-all).
/// The nearest-neighbour rules with per-synapse state have exactly one such column.
const KPLUS: usize = 0;

/// Per-source step columns of every rule of this family.
pub const PRE_STEPS: &[VarSpec] = &[
    VarSpec {
        name: "t_last",
        unit: "stamp (steps)",
        doc: "time of the source's last spike, in steps (0: none yet; NEST's t_lastspike)",
    },
    VarSpec {
        name: "paired_until",
        unit: "stamp (steps)",
        doc: "postsynaptic spikes reaching the synapse up to this stamp have been paired",
    },
];

/// The presynaptic trace as a per-source column (all-to-all rules).
pub const PRE_KPLUS: &[VarSpec] = &[VarSpec {
    name: "Kplus",
    unit: "",
    doc: "presynaptic trace just after the source's last spike (NEST's Kplus)",
}];

/// `exp(-k dt / tau)` for whole steps `k`, tabulated up to the longest lag a pairing reads
/// in practice (two catch-up periods), computed beyond.
#[derive(Clone, Debug)]
pub struct DecayTable {
    table: Vec<f64>,
    steps_per_tau: f64,
}

impl DecayTable {
    /// The table for time constant `tau` [ms] and time step `dt` [ms].
    pub fn new(tau: f64, dt: f64) -> Self {
        let steps_per_tau = dt / tau;
        let n = (2 * catch_up_steps(dt) + 2).min(1 << 20) as usize;
        Self {
            table: (0..n)
                .map(|k| (-(k as f64) * steps_per_tau).exp())
                .collect(),
            steps_per_tau,
        }
    }

    /// The tabulated `exp(-k dt / tau)`, from `k = 0`.
    pub fn values(&self) -> &[f64] {
        &self.table
    }

    /// `dt / tau`, the exponent per step beyond the table.
    pub fn steps_per_tau(&self) -> f64 {
        self.steps_per_tau
    }

    /// `exp(-k dt / tau)`.
    #[inline(always)]
    pub fn get(&self, k: u64) -> f64 {
        match self.table.get(k as usize) {
            Some(&x) => x,
            None => (-(k as f64) * self.steps_per_tau).exp(),
        }
    }
}

/// The postsynaptic spikes in `(lo, hi]` of an ascending history, as an index range.
#[inline(always)]
fn window(h: &[u64], lo: u64, hi: u64) -> (usize, usize) {
    let mut e = h.len();
    while e > 0 && h[e - 1] > hi {
        e -= 1;
    }
    let mut b = e;
    while b > 0 && h[b - 1] > lo {
        b -= 1;
    }
    (b, e)
}

/// Applies the pairings of one synapse with the postsynaptic spikes `spikes` (stamps, all
/// in the synapse's pending window, ascending) and, for a presynaptic spike at `stamp`, the
/// depression; returns the new weight. `syn_state` is the synapse's own variable (the
/// pre-centred trace, or the restricted rule's "a postsynaptic spike came" flag).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pair<W: WeightDependence, const P: u8>(
    w_dep: &W,
    table: &DecayTable,
    mut w: f64,
    spikes: &[u64],
    d: u64,
    t_last: u64,
    kplus: f64,
    syn_state: Option<&mut f32>,
    depress: Option<f64>,
) -> f64 {
    match P {
        ALL_TO_ALL => {
            for &p in spikes {
                w = w_dep.facilitate(w, kplus * table.get(p + d - t_last));
            }
            if let Some(k) = depress {
                w = w_dep.depress(w, k);
            }
        }
        NEAREST_SYMMETRIC => {
            for &p in spikes {
                w = w_dep.facilitate(w, table.get(p + d - t_last));
            }
            if let Some(k) = depress {
                w = w_dep.depress(w, k);
            }
        }
        NEAREST_PRE_CENTERED => {
            let kp = syn_state.expect("pre-centred STDP keeps Kplus per synapse");
            if let Some(&p) = spikes.first() {
                // A zero trace facilitates by nothing (NEST skips the call once the trace
                // was reset by an earlier spike of the same interval).
                if *kp != 0.0 {
                    w = w_dep.facilitate(w, f64::from(*kp) * table.get(p + d - t_last));
                }
                *kp = 0.0;
            }
            if let Some(k) = depress {
                w = w_dep.depress(w, k);
            }
        }
        _ => {
            let seen = syn_state.expect("restricted STDP keeps a flag per synapse");
            if let Some(&p) = spikes.first()
                && *seen == 0.0
            {
                w = w_dep.facilitate(w, table.get(p + d - t_last));
                *seen = 1.0;
            }
            if let Some(k) = depress
                && *seen != 0.0
            {
                w = w_dep.depress(w, k);
            }
        }
    }
    w
}

/// The delivery kernel of the STDP family for one target block: for every spiking source
/// (ascending) and every synapse of its row (in order), pairs the synapse with the
/// postsynaptic spikes that reached it since its last pairing, depresses it with the
/// postsynaptic trace at `t - d`, stores the new weight and adds it into the ring buffer
/// slot `d` steps ahead.
#[allow(clippy::too_many_arguments)]
pub fn deliver_with<W: WeightDependence>(
    w_dep: &W,
    pairing: Pairing,
    table: &DecayTable,
    at: PlasticStep<'_>,
    syn: &mut PlasticSynapses<'_>,
    pre: &PreView<'_>,
    post: &PostBlock<'_>,
    ring: &mut RingBlockMut<'_>,
) {
    match pairing {
        Pairing::AllToAll => {
            deliver_impl::<W, ALL_TO_ALL>(w_dep, table, at, syn, pre, post, ring);
        }
        Pairing::NearestSymmetric => {
            deliver_impl::<W, NEAREST_SYMMETRIC>(w_dep, table, at, syn, pre, post, ring);
        }
        Pairing::NearestPreCentered => {
            deliver_impl::<W, NEAREST_PRE_CENTERED>(w_dep, table, at, syn, pre, post, ring);
        }
        Pairing::NearestRestricted => {
            deliver_impl::<W, NEAREST_RESTRICTED>(w_dep, table, at, syn, pre, post, ring);
        }
    }
}

/// [`deliver_with`] for pairing `P` (one of the pairing codes).
fn deliver_impl<W: WeightDependence, const P: u8>(
    w_dep: &W,
    table: &DecayTable,
    at: PlasticStep<'_>,
    syn: &mut PlasticSynapses<'_>,
    pre: &PreView<'_>,
    post: &PostBlock<'_>,
    ring: &mut RingBlockMut<'_>,
) {
    let stamp = at.step + 1;
    let mut data = ring.writer();
    let now = data.slot_of(at.step);
    let (t_last, from) = (pre.steps[T_LAST], pre.steps[FROM]);
    let kplus = if P == ALL_TO_ALL {
        pre.real[KPLUS]
    } else {
        &[][..]
    };
    let blk = &mut *syn.block;
    let mut state = syn.state.first_mut();
    // The trace at stamp `stamp - d` is in slot `(stamp - d) % tslots` of the delay line
    // (`d < tslots`): no division per synapse.
    let tslots = post.slots as u64;
    let s_slot = stamp % tslots;
    let has_trace = !post.trace.is_empty();
    for &i in at.spikes {
        let i = i as usize;
        let row = blk.row(i);
        if row.is_empty() {
            continue;
        }
        let (tl, fr) = (t_last[i], from[i]);
        let kp = kplus.get(i).copied().unwrap_or(0.0);
        for k in row {
            let syn_k = blk.synapse(k);
            let (t, d) = (usize::from(syn_k.target), u64::from(syn_k.delay));
            let (lo, hi) = (fr.saturating_sub(d), stamp.saturating_sub(d));
            // Most windows hold no or only the latest spike: decided from the dense tail,
            // without a look into the history.
            let [last, before] = post.tail[t];
            let one = [last];
            let spikes: &[u64] = if last <= lo {
                &[]
            } else if last <= hi && before <= lo {
                &one
            } else {
                let hist = &post.history[t];
                let (b, e) = window(hist, lo, hi);
                &hist[b..e]
            };
            let kminus = if has_trace && stamp > d {
                let mut sl = s_slot + tslots - d;
                if sl >= tslots {
                    sl -= tslots;
                }
                post.trace[sl as usize * post.block + t]
            } else {
                0.0
            };
            let s = state.as_mut().map(|c| &mut c[k]);
            let w = pair::<W, P>(
                w_dep,
                table,
                f64::from(syn_k.weight),
                spikes,
                d,
                tl,
                kp,
                s,
                Some(kminus),
            ) as f32;
            blk.set_weight(k, w);
            // After the pairing, the per-synapse state takes the new presynaptic spike.
            if let Some(c) = state.as_mut() {
                match P {
                    NEAREST_PRE_CENTERED => {
                        c[k] = (f64::from(c[k]) * table.get(stamp - tl) + 1.0) as f32;
                    }
                    NEAREST_RESTRICTED => c[k] = 0.0,
                    _ => {}
                }
            }
            data.add_after(now, d as usize, t, w);
        }
    }
}

/// The catch-up kernel of the STDP family for one target block: for every stale source of
/// `at.spikes`, pairs each synapse of its row with the postsynaptic spikes that reached it
/// up to stamp `at.step + 1` (no depression, nothing transmitted).
pub fn catch_up_with<W: WeightDependence>(
    w_dep: &W,
    pairing: Pairing,
    table: &DecayTable,
    at: PlasticStep<'_>,
    syn: &mut PlasticSynapses<'_>,
    pre: &PreView<'_>,
    post: &PostBlock<'_>,
) {
    match pairing {
        Pairing::AllToAll => catch_up_impl::<W, ALL_TO_ALL>(w_dep, table, at, syn, pre, post),
        Pairing::NearestSymmetric => {
            catch_up_impl::<W, NEAREST_SYMMETRIC>(w_dep, table, at, syn, pre, post);
        }
        Pairing::NearestPreCentered => {
            catch_up_impl::<W, NEAREST_PRE_CENTERED>(w_dep, table, at, syn, pre, post);
        }
        Pairing::NearestRestricted => {
            catch_up_impl::<W, NEAREST_RESTRICTED>(w_dep, table, at, syn, pre, post);
        }
    }
}

/// [`catch_up_with`] for pairing `P`.
fn catch_up_impl<W: WeightDependence, const P: u8>(
    w_dep: &W,
    table: &DecayTable,
    at: PlasticStep<'_>,
    syn: &mut PlasticSynapses<'_>,
    pre: &PreView<'_>,
    post: &PostBlock<'_>,
) {
    let until = at.step + 1;
    let (t_last, from) = (pre.steps[T_LAST], pre.steps[FROM]);
    let kplus = if P == ALL_TO_ALL {
        pre.real[KPLUS]
    } else {
        &[][..]
    };
    let blk = &mut *syn.block;
    let mut state = syn.state.first_mut();
    for &i in at.spikes {
        let i = i as usize;
        let (tl, fr) = (t_last[i], from[i]);
        let kp = kplus.get(i).copied().unwrap_or(0.0);
        for k in blk.row(i) {
            let syn_k = blk.synapse(k);
            let (t, d) = (usize::from(syn_k.target), u64::from(syn_k.delay));
            let hist = &post.history[t];
            let (b, e) = window(hist, fr.saturating_sub(d), until.saturating_sub(d));
            if b == e {
                continue;
            }
            let s = state.as_mut().map(|c| &mut c[k]);
            let w = pair::<W, P>(
                w_dep,
                table,
                f64::from(syn_k.weight),
                &hist[b..e],
                d,
                tl,
                kp,
                s,
                None,
            ) as f32;
            blk.set_weight(k, w);
        }
    }
}

/// Updates the per-source state of the family after a step's spikes: the presynaptic trace
/// (all-to-all) takes the spike, `t_last` and `paired_until` become the spike's stamp.
pub fn after_spikes(
    pairing: Pairing,
    table: &DecayTable,
    at: PlasticStep<'_>,
    state: &mut PlasticityState,
) {
    let stamp = at.step + 1;
    let (steps, real) = (&mut state.pre_steps, &mut state.pre);
    for &i in at.spikes {
        let i = i as usize;
        let tl = steps[T_LAST].values[i];
        if pairing == Pairing::AllToAll {
            let kp = &mut real[KPLUS].values[i];
            *kp = *kp * table.get(stamp - tl) + 1.0;
        }
        steps[T_LAST].values[i] = stamp;
        steps[FROM].values[i] = stamp;
    }
}

/// The sources whose pairings were last applied before stamp `before`.
pub fn stale(state: &PlasticityState, before: u64) -> Vec<u32> {
    state.pre_steps[FROM]
        .values
        .iter()
        .enumerate()
        .filter(|&(_, &f)| f < before)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Marks caught-up sources as paired up to stamp `at.step + 1`.
pub fn caught_up(at: PlasticStep<'_>, state: &mut PlasticityState) {
    for &i in at.spikes {
        state.pre_steps[FROM].values[i as usize] = at.step + 1;
    }
}

/// The device kernels of the family (and of the power-law rule): delivery through plastic
/// synapses, the per-source update after it, post-spike recording and catch-up, each the
/// CPU's function operation for operation (see the source). Not yet launched by the CUDA
/// step.
pub const CUDA_KERNEL: myelin_engine::KernelSource = myelin_engine::KernelSource {
    file: "systems/src/plasticity/stdp.cu",
    entries: &[
        "stdp_deliver",
        "stdp_after_spikes",
        "stdp_record_post",
        "stdp_catch_up",
        "stdp_catch_up_done",
    ],
    source: include_str!("stdp.cu"),
    // Unfused, as the CPU computes: the weights follow it bit for bit.
    fmad: false,
};

/// What the device kernels (stdp.cu) read of a rule of the family: the codes of its
/// weight dependence and pairing, its constants and its decay table (`PlasticProjection`'s
/// `dependence`, `pairing`, `c` and `decay`).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRule {
    /// 0: [`Bounded`], 1: [`super::power_law::PowerLaw`].
    pub dependence: u32,
    /// The pairing code: 0 all-to-all, 1 nearest symmetric, 2 pre-centred, 3 restricted.
    pub pairing: u32,
    /// `lambda`, `alpha`, `Wmax`, `dt / tau_plus`, a zero where [`Self::constants`] puts the
    /// postsynaptic trace's decay per step, then the powers' tables
    /// ([`Power::device_words`]): `mu_plus` and `mu_minus`, or `mu`.
    pub head: Vec<f64>,
    /// `exp(-k dt / tau_plus)` for the tabulated `k` ([`DecayTable::values`]).
    pub decay: Vec<f64>,
}

/// Index of the postsynaptic trace's decay in [`DeviceRule::constants`].
const DEVICE_TRACE_DECAY: usize = 4;
/// [`DeviceRule::dependence`] of [`Bounded`] (stdp.cu's `STDP_BOUNDED`).
const DEVICE_BOUNDED: u32 = 0;
/// [`DeviceRule::dependence`] of the power law (stdp.cu's `STDP_POWER_LAW`).
const DEVICE_POWER_LAW: u32 = 1;

impl DeviceRule {
    fn new(
        dependence: u32,
        pairing: Pairing,
        params: [f64; 3],
        powers: &[&Power],
        table: &DecayTable,
    ) -> Self {
        let mut head = params.to_vec();
        head.extend([table.steps_per_tau(), 0.0]);
        for p in powers {
            head.extend(p.device_words());
        }
        Self {
            dependence,
            pairing: match pairing {
                Pairing::AllToAll => u32::from(ALL_TO_ALL),
                Pairing::NearestSymmetric => u32::from(NEAREST_SYMMETRIC),
                Pairing::NearestPreCentered => u32::from(NEAREST_PRE_CENTERED),
                Pairing::NearestRestricted => u32::from(NEAREST_RESTRICTED),
            },
            head,
            decay: table.values().to_vec(),
        }
    }

    /// The constants the kernels read (`PlasticProjection::c`), with the decay per step of
    /// the postsynaptic trace (`PostSpikes::decay`).
    pub fn constants(&self, trace_decay: f64) -> Vec<f64> {
        let mut c = self.head.clone();
        c[DEVICE_TRACE_DECAY] = trace_decay;
        c
    }

    /// A power-law rule's ([`super::power_law::StdpPl`]).
    pub(crate) fn power_law(w: &super::power_law::PowerLaw, table: &DecayTable) -> Self {
        Self::new(
            DEVICE_POWER_LAW,
            Pairing::AllToAll,
            [w.lambda, w.alpha, w.w_max],
            &[&w.mu],
            table,
        )
    }
}

/// The scene names of the rules the device kernels run.
pub const DEVICE_RULES: [&str; 5] = [
    Stdp::NAME,
    StdpNnSymm::NAME,
    StdpNnPreCentered::NAME,
    StdpNnRestr::NAME,
    super::power_law::StdpPl::NAME,
];

/// What the device kernels read of a projection's prepared rule, if they run it.
pub fn device_rule_of(kernel: &dyn PlasticityKernel) -> Option<DeviceRule> {
    let any: &dyn std::any::Any = kernel;
    if let Some(r) = any.downcast_ref::<Stdp>() {
        Some(r.device_rule())
    } else if let Some(r) = any.downcast_ref::<StdpNnSymm>() {
        Some(r.device_rule())
    } else if let Some(r) = any.downcast_ref::<StdpNnPreCentered>() {
        Some(r.device_rule())
    } else if let Some(r) = any.downcast_ref::<StdpNnRestr>() {
        Some(r.device_rule())
    } else {
        any.downcast_ref::<super::power_law::StdpPl>()
            .map(|r| r.device_rule())
    }
}

impl PairStdp {
    fn device_rule(&self) -> DeviceRule {
        let w = &self.w;
        DeviceRule::new(
            DEVICE_BOUNDED,
            self.pairing,
            [w.lambda, w.alpha, w.w_max],
            &[&w.mu_plus, &w.mu_minus],
            &self.table,
        )
    }
}

/// Parameters shared by the family (and the power-law rule).
pub(crate) const TAU_PLUS: ParamSpec = ParamSpec::real(
    "tau_plus",
    "ms",
    20.0,
    Range::POSITIVE,
    "time constant of the presynaptic trace (facilitation)",
);
pub(crate) const TAU_MINUS: ParamSpec = ParamSpec::real(
    "tau_minus",
    "ms",
    20.0,
    Range::POSITIVE,
    "time constant of the postsynaptic trace (depression; in NEST a parameter of the target neuron)",
);

/// Step size of depression relative to facilitation (shared with the power-law rule).
pub(crate) const ALPHA: ParamSpec = ParamSpec::real(
    "alpha",
    "",
    1.0,
    Range::NON_NEGATIVE,
    "asymmetry: step size of depression relative to facilitation",
);

/// The parameter table of `stdp_synapse` and its nearest-neighbour variants (NEST's
/// defaults).
pub const PARAMETERS: &[ParamSpec] = &[
    TAU_PLUS,
    TAU_MINUS,
    ParamSpec::real(
        "lambda",
        "",
        0.01,
        Range::NON_NEGATIVE,
        "step size of facilitation",
    ),
    ALPHA,
    ParamSpec::real(
        "mu_plus",
        "",
        1.0,
        Range::NON_NEGATIVE,
        "weight dependence of facilitation: 0 additive, 1 multiplicative",
    ),
    ParamSpec::real(
        "mu_minus",
        "",
        1.0,
        Range::NON_NEGATIVE,
        "weight dependence of depression: 0 additive, 1 multiplicative",
    ),
    ParamSpec::real(
        "Wmax",
        "pA or mV",
        100.0,
        Range::ANY,
        "largest weight (weights lie between 0 and Wmax and share its sign)",
    ),
];

/// A rule of the pair-based STDP family, prepared from its parameters.
#[derive(Clone, Debug)]
pub struct PairStdp {
    w: Bounded,
    pairing: Pairing,
    tau_minus: f64,
    table: DecayTable,
}

impl PairStdp {
    fn new(p: &Params, dt: f64, pairing: Pairing) -> Result<Self, ParamIssue> {
        let w_max = p.get("Wmax");
        if w_max == 0.0 || !w_max.is_finite() {
            return Err(ParamIssue::new(
                "Wmax",
                format!("Wmax = {w_max} must be finite and non-zero"),
            ));
        }
        Ok(Self {
            w: Bounded {
                lambda: p.get("lambda"),
                alpha: p.get("alpha"),
                mu_plus: Power::new(p.get("mu_plus")),
                mu_minus: Power::new(p.get("mu_minus")),
                w_max,
            },
            pairing,
            tau_minus: p.get("tau_minus"),
            table: DecayTable::new(p.get("tau_plus"), dt),
        })
    }

    fn check_weights(&self, low: f64, high: f64) -> Result<(), String> {
        let w_max = self.w.w_max;
        let (lo, hi) = if w_max > 0.0 {
            (0.0, w_max)
        } else {
            (w_max, 0.0)
        };
        if low < lo || high > hi {
            return Err(format!(
                "weights must lie in [{lo}, {hi}] (between 0 and Wmax = {w_max}), but the weight distribution reaches [{low}, {high}]; bound a normal distribution with NormalRedraw(min, max)"
            ));
        }
        Ok(())
    }

    fn trace(&self) -> (TraceKind, f64) {
        let kind = if self.pairing == Pairing::AllToAll {
            TraceKind::AllToAll
        } else {
            TraceKind::Nearest
        };
        (kind, self.tau_minus)
    }
}

macro_rules! pair_rule {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $pairing:expr, $pre:expr, $syn:expr, $syn_init:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty(PairStdp);

        impl $ty {
            /// What the device kernels read of the rule (stdp.cu).
            pub fn device_rule(&self) -> DeviceRule {
                self.0.device_rule()
            }
        }

        impl PlasticityKernel for $ty {
            fn deliver(
                &self,
                at: PlasticStep<'_>,
                syn: &mut PlasticSynapses<'_>,
                pre: &PreView<'_>,
                post: &PostBlock<'_>,
                ring: &mut RingBlockMut<'_>,
            ) {
                let r = &self.0;
                deliver_with(&r.w, r.pairing, &r.table, at, syn, pre, post, ring);
            }

            fn after_delivery(&self, at: PlasticStep<'_>, state: &mut PlasticityState) {
                after_spikes(self.0.pairing, &self.0.table, at, state);
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
                let r = &self.0;
                catch_up_with(&r.w, r.pairing, &r.table, at, syn, pre, post);
            }

            fn after_catch_up(&self, at: PlasticStep<'_>, state: &mut PlasticityState) {
                caught_up(at, state);
            }
        }

        impl PlasticityRule for $ty {
            const NAME: &'static str = $name;
            const PARAMETERS: &'static [ParamSpec] = PARAMETERS;
            const SYNAPSE_STATE: &'static [VarSpec] = $syn;
            const PRE_STATE: &'static [VarSpec] = $pre;
            const PRE_STEPS: &'static [VarSpec] = PRE_STEPS;

            fn new(params: &Params, dt: f64) -> Result<Self, ParamIssue> {
                PairStdp::new(params, dt, $pairing).map(Self)
            }

            fn check_weights(&self, low: f64, high: f64) -> Result<(), String> {
                self.0.check_weights(low, high)
            }

            fn post_trace(&self) -> (TraceKind, f64) {
                self.0.trace()
            }

            fn initial_synapse(&self, _var: usize) -> f32 {
                $syn_init
            }
        }
    };
}

pair_rule!(
    /// `stdp`: NEST's `stdp_synapse`, all-to-all pairing.
    Stdp,
    "stdp",
    Pairing::AllToAll,
    PRE_KPLUS,
    &[],
    0.0
);

pair_rule!(
    /// `stdp_nn_symm`: NEST's `stdp_nn_symm_synapse`, symmetric nearest-neighbour pairing.
    StdpNnSymm,
    "stdp_nn_symm",
    Pairing::NearestSymmetric,
    &[],
    &[],
    0.0
);

pair_rule!(
    /// `stdp_nn_pre_centered`: NEST's `stdp_nn_pre_centered_synapse`, presynaptic-centred
    /// nearest-neighbour pairing (a presynaptic trace per synapse, reset by postsynaptic
    /// spikes).
    StdpNnPreCentered,
    "stdp_nn_pre_centered",
    Pairing::NearestPreCentered,
    &[],
    &[VarSpec {
        name: "Kplus",
        unit: "",
        doc: "presynaptic trace of the synapse (reset by a postsynaptic spike)",
    }],
    0.0
);

pair_rule!(
    /// `stdp_nn_restr`: NEST's `stdp_nn_restr_synapse`, restricted symmetric
    /// nearest-neighbour pairing.
    StdpNnRestr,
    "stdp_nn_restr",
    Pairing::NearestRestricted,
    &[],
    &[VarSpec {
        name: "post_seen",
        unit: "",
        doc: "1 when a postsynaptic spike reached the synapse since its last presynaptic spike",
    }],
    0.0
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open() {
        let h = [3, 5, 5, 8, 12];
        assert_eq!(window(&h, 3, 8), (1, 4));
        assert_eq!(window(&h, 0, 2), (0, 0));
        assert_eq!(window(&h, 12, 20), (5, 5));
        assert_eq!(window(&h, 0, 100), (0, 5));
    }

    #[test]
    fn bounded_weight_dependence_is_nests() {
        let b = Bounded {
            lambda: 0.01,
            alpha: 1.0,
            mu_plus: Power::new(1.0),
            mu_minus: Power::new(1.0),
            w_max: 100.0,
        };
        // NEST: norm_w = w/Wmax + lambda (1 - w/Wmax)^mu_plus kplus.
        let w: f64 = 40.0;
        assert_eq!(
            b.facilitate(w, 0.5),
            (w / 100.0 + 0.01 * (1.0 - w / 100.0) * 0.5) * 100.0
        );
        assert_eq!(b.facilitate(99.9, 1e6), 100.0, "capped at Wmax");
        assert_eq!(b.depress(1.0, 1e6), 0.0, "floored at 0");
        let dt = 0.1;
        let t = DecayTable::new(20.0, dt);
        assert_eq!(t.get(7), (-(7.0) * (dt / 20.0)).exp());
        assert_eq!(t.get(u64::MAX / 2), 0.0);
    }
}
