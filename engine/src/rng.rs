//! Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
//!
//! Every draw in Myelin comes from a [`Stream`] keyed by the run's seed and a counter made of
//! a [`Purpose`], the stable id of a scene element, an index (neuron) and an auxiliary word
//! (time step or attribute). A stream needs no state shared with any other, so any split of
//! work over threads or ranks draws the same numbers, and a GPU kernel can draw them too.

/// What a stream is used for; part of the counter, so streams of different purposes never
/// overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// Presynaptic sources of one target neuron.
    Connect = 1,
    /// Weights of the synapses onto one target neuron.
    Weight = 2,
    /// Delays of the synapses onto one target neuron.
    Delay = 3,
    /// Initial state of one neuron.
    Init = 4,
    /// Poisson input of one neuron at one step.
    Poisson = 5,
    /// Per-target synapse counts (fixed_total_number) or per-source draws (fixed_outdegree).
    Count = 6,
}

#[cfg(target_arch = "x86_64")]
mod x86;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// The Philox4x32 bijection with 10 rounds: maps a 128-bit counter under a 64-bit key to
/// 128 random bits.
#[inline]
pub fn philox4x32_10(mut c: [u32; 4], mut k: [u32; 2]) -> [u32; 4] {
    for r in 0..10 {
        if r > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Number of streams [`uniforms_lanes`] computes at once.
pub const LANES: usize = 8;

/// Philox4x32-10 of [`LANES`] counters that differ only in word 1, in lock-step: the rounds
/// of the lanes are independent, so the compiler vectorises them (one latency chain for
/// eight draws). Returns the four output words of each lane.
#[inline]
fn philox_lanes(c0: u32, c1: [u32; LANES], c2: u32, c3: u32, k: [u32; 2]) -> [[u32; LANES]; 4] {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        #[expect(unsafe_code, reason = "calls an AVX2 function")]
        // SAFETY: the CPU has AVX2.
        return unsafe { x86::philox_lanes(c0, c1, c2, c3, k) };
    }
    philox_lanes_portable(c0, c1, c2, c3, k)
}

/// [`philox_lanes`] in portable Rust (what it runs on CPUs without AVX2).
#[inline]
fn philox_lanes_portable(
    c0: u32,
    c1: [u32; LANES],
    c2: u32,
    c3: u32,
    mut k: [u32; 2],
) -> [[u32; LANES]; 4] {
    let mut x0 = [c0; LANES];
    let mut x1 = c1;
    let mut x2 = [c2; LANES];
    let mut x3 = [c3; LANES];
    for r in 0..10 {
        if r > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        for l in 0..LANES {
            let p0 = u64::from(M0) * u64::from(x0[l]);
            let p1 = u64::from(M1) * u64::from(x2[l]);
            let (hi0, lo0, hi1, lo1) = ((p0 >> 32) as u32, p0 as u32, (p1 >> 32) as u32, p1 as u32);
            x0[l] = hi1 ^ x1[l] ^ k[0];
            x1[l] = lo1;
            x2[l] = hi0 ^ x3[l] ^ k[1];
            x3[l] = lo0;
        }
    }
    [x0, x1, x2, x3]
}

/// Neurons that share one Philox block in the grouped Poisson draws (one 32-bit word each).
pub const POISSON_WORDS: usize = 4;
/// Neurons per [`poisson_counts_lanes`] call.
pub const POISSON_BATCH: usize = LANES * POISSON_WORDS;
/// Block counter of the grouped Poisson draws: apart from every [`Stream`]'s blocks, which
/// count up from 0.
const GROUPED_BLOCK: u32 = 1 << 31;

/// The key and the fixed counter words of the grouped draws of `purpose`, `element` at `aux`.
#[inline]
fn grouped_key(seed: u64, purpose: Purpose, element: u32, aux: u64) -> ([u32; 2], u32, u32) {
    debug_assert!(element < (1 << 24), "element id {element} exceeds 24 bits");
    (
        [seed as u32, ((seed >> 32) as u32) ^ ((aux >> 32) as u32)],
        aux as u32,
        ((purpose as u32) << 24) | (element & 0x00FF_FFFF),
    )
}

/// The thresholds of a Poisson law of mean `lambda` for 32-bit uniforms: `T_k =
/// floor(F(k) 2^32)` with `F` the cumulative distribution, while `T_k < 2^32 - 1`. The count
/// of a uniform word `u` is the number of thresholds below it, `#{k : u > T_k}`, so
/// `P(count = k) = F(k) - F(k-1)` within `2^-32` for every `k`, and the last count stands for
/// itself and the tail beyond (whose mass is below `2^-32`). Counting needs no branch, so
/// [`poisson_counts_lanes`] counts 32 neurons in lock-step.
///
/// Empty for `lambda <= 0` and for `lambda >=` [`POISSON_INVERSION_MAX`] (PTRS then).
pub fn poisson_thresholds(lambda: f64) -> Vec<u32> {
    let mut t = Vec::new();
    if !(lambda > 0.0 && lambda < POISSON_INVERSION_MAX) {
        return t;
    }
    let top = f64::from(u32::MAX);
    let (mut p, mut f) = ((-lambda).exp(), (-lambda).exp());
    for k in 1.. {
        let x = (f * 4_294_967_296.0).floor();
        if x >= top {
            break;
        }
        t.push(x as u32);
        p *= lambda / f64::from(k);
        f += p;
    }
    t
}

/// The count of the uniform word `u` under `thresholds` ([`poisson_thresholds`]).
#[inline]
pub fn poisson_count(u: u32, thresholds: &[u32]) -> u32 {
    thresholds.iter().map(|&t| u32::from(u > t)).sum()
}

/// The Poisson counts of neurons `first..first + POISSON_BATCH` (`first` a multiple of
/// [`POISSON_WORDS`]) for `purpose`, `element` at step `aux`: neuron `i` takes word `i % 4`
/// of the Philox block with counter `(2^31, i / 4, aux, purpose | element)`. Equal to
/// [`poisson_count_grouped`] for each neuron; eight blocks run in lock-step.
#[inline]
pub fn poisson_counts_lanes(
    seed: u64,
    purpose: Purpose,
    element: u32,
    first: u32,
    aux: u64,
    thresholds: &[u32],
) -> [u32; POISSON_BATCH] {
    debug_assert!(first as usize % POISSON_WORDS == 0);
    let (key, c2, c3) = grouped_key(seed, purpose, element, aux);
    let g0 = first / POISSON_WORDS as u32;
    let c1 = std::array::from_fn(|l| g0.wrapping_add(l as u32));
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        #[expect(unsafe_code, reason = "calls an AVX2 function")]
        // SAFETY: the CPU has AVX2.
        return unsafe { x86::poisson_counts(c1, c2, c3, key, thresholds) };
    }
    poisson_counts_portable(c1, c2, c3, key, thresholds)
}

/// [`poisson_counts_lanes`] in portable Rust, after its key.
#[inline]
fn poisson_counts_portable(
    c1: [u32; LANES],
    c2: u32,
    c3: u32,
    key: [u32; 2],
    thresholds: &[u32],
) -> [u32; POISSON_BATCH] {
    let w = philox_lanes_portable(GROUPED_BLOCK, c1, c2, c3, key);
    let words: [u32; POISSON_BATCH] =
        std::array::from_fn(|i| w[i % POISSON_WORDS][i / POISSON_WORDS]);
    let mut out = [0u32; POISSON_BATCH];
    for &t in thresholds {
        for (o, &u) in out.iter_mut().zip(&words) {
            *o += u32::from(u > t);
        }
    }
    out
}

/// The Poisson count of neuron `neuron` as [`poisson_counts_lanes`] draws it, alone.
#[inline]
pub fn poisson_count_grouped(
    seed: u64,
    purpose: Purpose,
    element: u32,
    neuron: u32,
    aux: u64,
    thresholds: &[u32],
) -> u32 {
    let (key, c2, c3) = grouped_key(seed, purpose, element, aux);
    let w = philox4x32_10([GROUPED_BLOCK, neuron / POISSON_WORDS as u32, c2, c3], key);
    poisson_count(w[neuron as usize % POISSON_WORDS], thresholds)
}

/// The first uniform of the streams `Stream::new(seed, purpose, element, first + i, aux)`
/// for `i` in `0..LANES`, computed together: exactly the values `Stream::uniform` gives
/// each of them, at a fraction of the cost.
#[inline]
pub fn uniforms_lanes(
    seed: u64,
    purpose: Purpose,
    element: u32,
    first: u32,
    aux: u64,
) -> [f64; LANES] {
    let key = [seed as u32, ((seed >> 32) as u32) ^ ((aux >> 32) as u32)];
    let c1 = std::array::from_fn(|i| first.wrapping_add(i as u32));
    let [w0, w1, ..] = philox_lanes(
        0,
        c1,
        aux as u32,
        ((purpose as u32) << 24) | (element & 0x00FF_FFFF),
        key,
    );
    std::array::from_fn(|i| u01_open(w0[i], w1[i]))
}

/// The count of a Poisson law of mean `lambda` for the uniform `u`, from the table `cdf`
/// of [`PoissonTable`] (non-empty): what [`poisson_tabulated`] returns when its stream's
/// first uniform is `u`.
#[inline]
pub fn poisson_from_uniform(u: f64, cdf: &[f64]) -> u32 {
    let mut k = 0;
    while k + 1 < cdf.len() && u > cdf[k] {
        k += 1;
    }
    if u > cdf[k] { k as u32 + 1 } else { k as u32 }
}

/// Converts two 32-bit words to a double in the open interval (0, 1) with 53 random bits.
#[inline]
pub fn u01_open(a: u32, b: u32) -> f64 {
    let x = (u64::from(a) << 21) ^ u64::from(b >> 11);
    (x as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Layers of the normal ziggurat.
const ZIGGURAT_LAYERS: usize = 128;
/// Start of the normal ziggurat's tail (Marsaglia & Tsang 2000, 128 layers).
const ZIGGURAT_R: f64 = 3.442_619_855_899;
/// Area of each layer of the normal ziggurat (for `exp(-x^2 / 2)`, unnormalised).
const ZIGGURAT_V: f64 = 9.912_563_035_262_17e-3;

/// The normal ziggurat's layer edges `x` (`x[0] = V / f(R)`, `x[1] = R`, ..., `x[128] = 0`)
/// and the ratios `x[i + 1] / x[i]` below which a draw is inside layer `i`'s rectangle.
struct Ziggurat {
    x: [f64; ZIGGURAT_LAYERS + 1],
    ratio: [f64; ZIGGURAT_LAYERS],
}

fn ziggurat() -> &'static Ziggurat {
    static Z: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    Z.get_or_init(|| {
        let f = |x: f64| (-0.5 * x * x).exp();
        let mut x = [0.0; ZIGGURAT_LAYERS + 1];
        x[0] = ZIGGURAT_V / f(ZIGGURAT_R);
        x[1] = ZIGGURAT_R;
        for i in 2..ZIGGURAT_LAYERS {
            x[i] = (-2.0 * (ZIGGURAT_V / x[i - 1] + f(x[i - 1])).ln()).sqrt();
        }
        x[ZIGGURAT_LAYERS] = 0.0;
        let ratio = std::array::from_fn(|i| x[i + 1] / x[i]);
        Ziggurat { x, ratio }
    })
}

/// Philox blocks a [`Stream`] computes at a time.
const STREAM_BLOCKS: usize = LANES;
/// Words a [`Stream`] buffers.
const STREAM_WORDS: usize = 4 * STREAM_BLOCKS;

/// A stream of random numbers: Philox4x32-10 in counter mode. The words are those of the
/// blocks with counters `(0, index, aux, purpose | element)`, `(1, ...)`, ... in order; the
/// stream computes eight blocks at a time (in lock-step, with AVX2 where the CPU has it).
#[derive(Clone, Debug)]
pub struct Stream {
    key: [u32; 2],
    ctr: [u32; 4],
    buf: [u32; STREAM_WORDS],
    pos: usize,
}

impl Stream {
    /// The stream of `purpose` for scene element `element` (< 2^24), index `index` and
    /// auxiliary word `aux` (a time step, or an attribute number), under `seed`.
    #[inline]
    pub fn new(seed: u64, purpose: Purpose, element: u32, index: u32, aux: u64) -> Self {
        debug_assert!(element < (1 << 24), "element id {element} exceeds 24 bits");
        Self {
            key: [seed as u32, ((seed >> 32) as u32) ^ ((aux >> 32) as u32)],
            ctr: [
                0,
                index,
                aux as u32,
                ((purpose as u32) << 24) | (element & 0x00FF_FFFF),
            ],
            buf: [0; STREAM_WORDS],
            pos: STREAM_WORDS,
        }
    }

    /// The next 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == STREAM_WORDS {
            self.refill();
        }
        let v = self.buf[self.pos];
        self.pos += 1;
        v
    }

    /// Computes the next [`STREAM_BLOCKS`] blocks into the buffer.
    #[inline(never)]
    fn refill(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            #[expect(unsafe_code, reason = "calls an AVX2 function")]
            // SAFETY: the CPU has AVX2.
            let words = unsafe { x86::stream_words(self.ctr, self.key) };
            self.buf = words;
            self.ctr[0] = self.ctr[0].wrapping_add(STREAM_BLOCKS as u32);
            self.pos = 0;
            return;
        }
        self.refill_portable();
    }

    /// [`Self::refill`] one block at a time (what CPUs without AVX2 run).
    fn refill_portable(&mut self) {
        for chunk in self.buf.chunks_exact_mut(4) {
            chunk.copy_from_slice(&philox4x32_10(self.ctr, self.key));
            self.ctr[0] = self.ctr[0].wrapping_add(1);
        }
        self.pos = 0;
    }

    /// A uniform double in (0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        let a = self.next_u32();
        let b = self.next_u32();
        u01_open(a, b)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift with rejection; unbiased).
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        if (m as u32) < n {
            let t = n.wrapping_neg() % n;
            while (m as u32) < t {
                m = u64::from(self.next_u32()) * u64::from(n);
            }
        }
        (m >> 32) as u32
    }

    /// A standard normal deviate: the ziggurat method (Marsaglia & Tsang 2000) in Doornik's
    /// form (2005), with 128 layers and independent bits for the layer and the abscissa.
    /// About 98.8 % of draws take one 64-bit draw and a multiplication; the rest evaluate
    /// `exp` (wedges) or sample the tail beyond `ZIGGURAT_R` (Marsaglia's method).
    #[inline(always)]
    pub fn normal(&mut self) -> f64 {
        let z = ziggurat();
        let (u, i) = self.ziggurat_draw();
        if u.abs() < z.ratio[i] {
            return u * z.x[i];
        }
        self.normal_rejected(u, i)
    }

    /// One draw of the ziggurat: 53 bits for a uniform in (-1, 1), 7 other bits for the
    /// layer.
    #[inline(always)]
    fn ziggurat_draw(&mut self) -> (f64, usize) {
        let a = self.next_u32();
        let b = self.next_u32();
        (2.0 * u01_open(a, b) - 1.0, (b & 0x7f) as usize)
    }

    /// [`Self::normal`] after a draw `(u, i)` outside layer `i`'s rectangle: the wedge or
    /// tail test, and new draws until one is accepted (kept out of line: about 1.2 % of
    /// draws get here).
    #[cold]
    #[inline(never)]
    fn normal_rejected(&mut self, mut u: f64, mut i: usize) -> f64 {
        let z = ziggurat();
        loop {
            if u.abs() < z.ratio[i] {
                return u * z.x[i];
            }
            if i == 0 {
                // The base layer's tail beyond R.
                let r = ZIGGURAT_R;
                loop {
                    let x = -self.uniform().ln() / r;
                    let y = -self.uniform().ln();
                    if y + y >= x * x {
                        return if u < 0.0 { -(r + x) } else { r + x };
                    }
                }
            }
            let x = u * z.x[i];
            let f0 = (-0.5 * (z.x[i] * z.x[i] - x * x)).exp();
            let f1 = (-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x)).exp();
            if f1 + self.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
            (u, i) = self.ziggurat_draw();
        }
    }

    /// A Poisson deviate with mean `lambda` (see [`poisson`]).
    #[inline]
    pub fn poisson(&mut self, lambda: f64, exp_neg_lambda: f64) -> u32 {
        poisson(self, lambda, exp_neg_lambda)
    }
}

impl rand_core::RngCore for Stream {
    fn next_u32(&mut self) -> u32 {
        Stream::next_u32(self)
    }
    fn next_u64(&mut self) -> u64 {
        let lo = u64::from(Stream::next_u32(self));
        (u64::from(Stream::next_u32(self)) << 32) | lo
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(4) {
            let v = Stream::next_u32(self).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Means below this are sampled by inversion, above by PTRS.
pub const POISSON_INVERSION_MAX: f64 = 30.0;

/// A Poisson deviate with mean `lambda`; `exp_neg_lambda` is `exp(-lambda)`, precomputed by
/// the caller.
///
/// For `lambda < 30` sequential inversion of one uniform (exact up to rounding, one Philox
/// call); above, Hörmann's transformed rejection with squeeze (PTRS, 1993). Both are plain
/// arithmetic that a GPU kernel reproduces.
#[inline]
pub fn poisson(s: &mut Stream, lambda: f64, exp_neg_lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < POISSON_INVERSION_MAX {
        let u = s.uniform();
        let mut k = 0u32;
        let mut p = exp_neg_lambda;
        let mut f = p;
        while u > f {
            k += 1;
            p *= lambda / f64::from(k);
            let next = f + p;
            if next == f {
                break; // the tail no longer changes the sum: u lies in the rounding gap below 1
            }
            f = next;
        }
        return k;
    }
    let slam = lambda.sqrt();
    let loglam = lambda.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let invalpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = s.uniform() - 0.5;
        let v = s.uniform();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u32;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + invalpha.ln() - (a / (us * us) + b).ln()
            <= -lambda + k * loglam - ln_factorial(k)
        {
            return k as u32;
        }
    }
}

/// The cumulative distribution of a Poisson law, tabulated with the same arithmetic as the
/// inversion in [`poisson`], so that [`PoissonTable::sample`] returns exactly what
/// [`poisson`] would for the same uniform, without a division per event. For means below
/// [`POISSON_INVERSION_MAX`]; above, it defers to PTRS.
#[derive(Clone, Debug, PartialEq)]
pub struct PoissonTable {
    lambda: f64,
    cdf: Vec<f64>,
}

impl PoissonTable {
    /// The table for mean `lambda` [events per draw].
    pub fn new(lambda: f64) -> Self {
        let e = (-lambda).exp();
        let mut cdf = Vec::new();
        if lambda > 0.0 && lambda < POISSON_INVERSION_MAX {
            let (mut p, mut f) = (e, e);
            cdf.push(f);
            for k in 1.. {
                p *= lambda / f64::from(k);
                let next = f + p;
                if next == f {
                    break;
                }
                f = next;
                cdf.push(f);
            }
        }
        Self { lambda, cdf }
    }

    /// The mean.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The tabulated cumulative distribution (empty when the mean is 0 or large).
    pub fn cdf(&self) -> &[f64] {
        &self.cdf
    }

    /// The table's cumulative distribution, for plain-data components.
    pub fn into_cdf(self) -> Vec<f64> {
        self.cdf
    }

    /// A Poisson deviate drawn from `s`.
    #[inline]
    pub fn sample(&self, s: &mut Stream) -> u32 {
        poisson_tabulated(s, self.lambda, &self.cdf)
    }
}

/// A Poisson deviate with mean `lambda` from the table `cdf` of [`PoissonTable`] (equal to
/// [`poisson`] for the same stream); with an empty table, PTRS or zero.
#[inline]
pub fn poisson_tabulated(s: &mut Stream, lambda: f64, cdf: &[f64]) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if cdf.is_empty() {
        return poisson(s, lambda, (-lambda).exp());
    }
    // Past the table's end u lies in the rounding gap below 1: the last count.
    poisson_from_uniform(s.uniform(), cdf)
}

/// `ln(k!)` for integral `k >= 0`: a table below 16, Stirling's series above
/// (relative error below 1e-15).
pub fn ln_factorial(k: f64) -> f64 {
    if k < 16.0 {
        let mut f = 1.0f64;
        let mut i = 2.0;
        while i <= k {
            f *= i;
            i += 1.0;
        }
        return f.ln();
    }
    let n = k + 1.0;
    let inv = 1.0 / n;
    let inv2 = inv * inv;
    (n - 0.5) * n.ln() - n
        + 0.5 * (std::f64::consts::TAU).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn streams_of_distinct_keys_differ_and_equal_keys_repeat() {
        let a: Vec<u32> = {
            let mut s = Stream::new(1, Purpose::Poisson, 3, 7, 11);
            (0..8).map(|_| s.next_u32()).collect()
        };
        let b: Vec<u32> = {
            let mut s = Stream::new(1, Purpose::Poisson, 3, 7, 11);
            (0..8).map(|_| s.next_u32()).collect()
        };
        assert_eq!(a, b, "the same key must give the same stream");
        for (p, e, i, x) in [
            (Purpose::Connect, 3, 7, 11),
            (Purpose::Poisson, 4, 7, 11),
            (Purpose::Poisson, 3, 8, 11),
            (Purpose::Poisson, 3, 7, 12),
        ] {
            let mut s = Stream::new(1, p, e, i, x);
            let c: Vec<u32> = (0..8).map(|_| s.next_u32()).collect();
            assert_ne!(a, c, "changing any key word must change the stream");
        }
        let mut s = Stream::new(2, Purpose::Poisson, 3, 7, 11);
        assert_ne!(
            a,
            (0..8).map(|_| s.next_u32()).collect::<Vec<_>>(),
            "the seed must change the stream"
        );
    }

    /// The mean of n uniforms has standard deviation sqrt(1/12/n); 5 sigma is a false alarm
    /// rate below 1e-6.
    #[test]
    fn uniform_and_below_are_unbiased() {
        let n = 200_000;
        let mut s = Stream::new(5, Purpose::Init, 0, 0, 0);
        let mean: f64 = (0..n).map(|_| s.uniform()).sum::<f64>() / n as f64;
        assert!(
            (mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n as f64).sqrt(),
            "uniform mean {mean}"
        );
        let mut counts = [0u32; 7];
        for _ in 0..n {
            counts[s.below(7) as usize] += 1;
        }
        let expect = n as f64 / 7.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expect).powi(2) / expect)
            .sum();
        // chi-square with 6 degrees of freedom: P(chi2 > 27.9) < 1e-4.
        assert!(chi2 < 27.9, "below(7) chi2 {chi2}, counts {counts:?}");
    }

    #[test]
    fn normal_has_unit_variance() {
        let n = 200_000;
        let mut s = Stream::new(9, Purpose::Init, 1, 2, 3);
        let xs: Vec<f64> = (0..n).map(|_| s.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // sd(mean) = 1/sqrt(n); sd(var) ~ sqrt(2/n); 5 sigma each.
        assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "normal mean {mean}");
        assert!(
            (var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
            "normal variance {var}"
        );
    }

    /// Poisson deviates on both sides of the inversion/PTRS switch: mean and variance equal
    /// lambda within 5 standard errors.
    #[test]
    fn poisson_mean_and_variance_match_lambda() {
        for &lambda in &[0.01f64, 0.5, 2.32, 12.0, 29.9, 30.0, 75.0, 1000.0] {
            let n = 100_000;
            let e = (-lambda).exp();
            let mut s = Stream::new(17, Purpose::Poisson, 0, 0, lambda.to_bits());
            let xs: Vec<f64> = (0..n).map(|_| f64::from(s.poisson(lambda, e))).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let se_mean = (lambda / n as f64).sqrt();
            // Var of the sample variance for Poisson: (lambda + 2 lambda^2) / n.
            let se_var = ((lambda + 2.0 * lambda * lambda) / n as f64).sqrt();
            assert!(
                (mean - lambda).abs() < 5.0 * se_mean,
                "lambda {lambda}: mean {mean}"
            );
            assert!(
                (var - lambda).abs() < 5.0 * se_var,
                "lambda {lambda}: variance {var}"
            );
        }
    }

    /// Lock-step lanes give exactly each stream's own first uniform.
    #[test]
    fn lanes_equal_single_streams() {
        for &(seed, element, first, aux) in &[
            (0u64, 0u32, 0u32, 0u64),
            (12345, 7, 1016, 99_999),
            (u64::MAX, 0xFF_FFFF, u32::MAX - 3, 1 << 40),
        ] {
            let lanes = uniforms_lanes(seed, Purpose::Poisson, element, first, aux);
            for (i, &u) in lanes.iter().enumerate() {
                let single = Stream::new(
                    seed,
                    Purpose::Poisson,
                    element,
                    first.wrapping_add(i as u32),
                    aux,
                )
                .uniform();
                assert_eq!(
                    u.to_bits(),
                    single.to_bits(),
                    "lane {i} of seed {seed}, first {first}"
                );
            }
        }
    }

    /// The table gives exactly the inversion's count for the same uniform.
    #[test]
    fn poisson_table_equals_inversion_bit_for_bit() {
        for &lambda in &[1e-4f64, 0.3, 2.32, 9.7, 29.0, 45.0] {
            let t = PoissonTable::new(lambda);
            for i in 0..20_000 {
                let mut a = Stream::new(3, Purpose::Poisson, 1, i, 9);
                let mut b = a.clone();
                assert_eq!(
                    t.sample(&mut a),
                    poisson(&mut b, lambda, (-lambda).exp()),
                    "lambda {lambda}, draw {i}"
                );
            }
        }
    }

    /// The probability of each count under the thresholds, `(T_k - T_(k-1)) / 2^32`, is the
    /// Poisson probability within `2^-32` (plus the f64 rounding of the cumulative sum,
    /// `1e-15`), and the last count holds the tail.
    #[test]
    fn poisson_thresholds_give_the_poisson_law_to_32_bits() {
        for lambda in [1e-3, 0.5, 1.6, 2.0, 8.0, 29.9] {
            let t = poisson_thresholds(lambda);
            assert!(!t.is_empty());
            assert!(t.windows(2).all(|w| w[0] <= w[1]), "ascending");
            let two32 = 4_294_967_296.0f64;
            let mut prev = -1.0f64; // P(count <= -1) 2^32 - 1: u > T never below 0
            let mut pmf = (-lambda).exp();
            for (k, &tk) in t.iter().enumerate() {
                let p = (f64::from(tk) - prev) / two32;
                assert!(
                    (p - pmf).abs() <= 1.0 / two32 + 1e-15,
                    "lambda {lambda}, k {k}: {p} vs {pmf}"
                );
                prev = f64::from(tk);
                pmf *= lambda / (k + 1) as f64;
            }
            // The last count m = t.len(): everything above the last threshold, P(K >= m),
            // which is P(K = m) plus a tail below 2^-32.
            let last = (f64::from(u32::MAX) - prev) / two32;
            assert!(
                (last - pmf).abs() <= 2.0 / two32 + 1e-15,
                "lambda {lambda}: last count {last} vs {pmf}"
            );
        }
        assert!(poisson_thresholds(0.0).is_empty());
        assert!(poisson_thresholds(POISSON_INVERSION_MAX).is_empty());
        assert_eq!(poisson_count(0, &poisson_thresholds(1.0)), 0);
    }

    #[test]
    fn grouped_lanes_equal_single_neurons() {
        let t = poisson_thresholds(1.6);
        for first in [0u32, 32, 1024, 4_000_000] {
            let c = poisson_counts_lanes(11, Purpose::Poisson, 3, first, 123_456_789_012, &t);
            for (i, &k) in c.iter().enumerate() {
                let n = first + i as u32;
                assert_eq!(
                    k,
                    poisson_count_grouped(11, Purpose::Poisson, 3, n, 123_456_789_012, &t)
                );
            }
        }
        // Other steps, elements and seeds draw other numbers.
        let a = poisson_counts_lanes(11, Purpose::Poisson, 3, 0, 5, &t);
        assert_ne!(a, poisson_counts_lanes(11, Purpose::Poisson, 3, 0, 6, &t));
        assert_ne!(a, poisson_counts_lanes(11, Purpose::Poisson, 4, 0, 5, &t));
        assert_ne!(a, poisson_counts_lanes(12, Purpose::Poisson, 3, 0, 5, &t));
    }

    /// Pearson's chi-square of 256,000 grouped counts (lambda 1.6, 8,000 neurons over 32
    /// steps) against the Poisson law, counts above 6 pooled (7 degrees of freedom): the
    /// 1e-6 upper quantile of chi-square(7) is 38.5, so a correct generator fails once in a
    /// million seeds (this seed is fixed).
    #[test]
    fn grouped_counts_pass_a_chi_square_test() {
        let lambda = 1.6;
        let t = poisson_thresholds(lambda);
        let mut h = [0u64; 8];
        for step in 0..32u64 {
            for first in (0..8000u32).step_by(POISSON_BATCH) {
                for k in poisson_counts_lanes(2024, Purpose::Poisson, 1, first, step, &t) {
                    h[(k as usize).min(7)] += 1;
                }
            }
        }
        let n: u64 = h.iter().sum();
        let mut pmf = (-lambda).exp();
        let mut cum = 0.0;
        let mut chi2 = 0.0;
        for (k, &o) in h.iter().enumerate() {
            let p = if k < 7 { pmf } else { 1.0 - cum };
            cum += pmf;
            pmf *= lambda / (k + 1) as f64;
            let e = p * n as f64;
            chi2 += (o as f64 - e).powi(2) / e;
        }
        assert!(
            chi2 < 38.5,
            "chi-square {chi2} with 7 degrees of freedom: {h:?}"
        );
    }

    /// The standard normal CDF from the Taylor series of erf (|x| <= 4: error below 1e-10).
    fn phi(x: f64) -> f64 {
        let z = x / std::f64::consts::SQRT_2;
        let (mut term, mut sum) = (z, z);
        for n in 1..200 {
            term *= -z * z / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        0.5 + sum / std::f64::consts::PI.sqrt()
    }

    /// Pearson's chi-square of 1,000,000 ziggurat deviates in 18 bins (edges every 0.5 from
    /// -4 to 4, and the two tails) against the normal law: 17 degrees of freedom, whose 1e-6
    /// upper quantile is 60.1. The tail beyond the ziggurat's R = 3.4426 (probability
    /// 5.76e-4, sampled by its own method) is checked too, within 5 standard deviations.
    #[test]
    fn ziggurat_normals_pass_a_chi_square_test() {
        let n = 1_000_000usize;
        let mut s = Stream::new(77, Purpose::Weight, 5, 6, 7);
        let edges: Vec<f64> = (-8..=8).map(|k| f64::from(k) * 0.5).collect();
        let mut h = vec![0u64; edges.len() + 1];
        let mut tail = 0u64;
        for _ in 0..n {
            let z = s.normal();
            h[edges.partition_point(|&e| e <= z)] += 1;
            tail += u64::from(z.abs() > ZIGGURAT_R);
        }
        let mut chi2 = 0.0;
        for (k, &o) in h.iter().enumerate() {
            let lo = if k == 0 { 0.0 } else { phi(edges[k - 1]) };
            let hi = if k == edges.len() { 1.0 } else { phi(edges[k]) };
            let e = (hi - lo) * n as f64;
            chi2 += (o as f64 - e).powi(2) / e;
        }
        assert!(
            chi2 < 60.1,
            "chi-square {chi2} with 17 degrees of freedom: {h:?}"
        );
        let p = 2.0 * (1.0 - phi(ZIGGURAT_R));
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (tail as f64 - n as f64 * p).abs() < 5.0 * sd,
            "{tail} deviates beyond R, expected {}",
            n as f64 * p
        );
    }

    #[test]
    fn ziggurat_layers_have_equal_areas() {
        let z = ziggurat();
        let f = |x: f64| (-0.5 * x * x).exp();
        // Layer i >= 1 spans x[i] wide and f(x[i + 1]) - f(x[i]) high.
        for i in 1..ZIGGURAT_LAYERS {
            let area = z.x[i] * (f(z.x[i + 1]) - f(z.x[i]));
            assert!((area - ZIGGURAT_V).abs() < 1e-9, "layer {i}: area {area}");
        }
        assert_eq!(z.x[ZIGGURAT_LAYERS], 0.0);
    }

    #[test]
    fn ln_factorial_matches_direct_product() {
        let mut f = 0.0f64;
        for k in 1..60 {
            f += (k as f64).ln();
            let got = ln_factorial(k as f64);
            assert!(
                (got - f).abs() < 1e-12 * f.max(1.0),
                "ln({k}!) = {got}, expected {f}"
            );
        }
    }

    /// A stream's words are the Philox blocks of its counters in order, on the AVX2 path and
    /// on the portable one, across refills and across the wrap of the block counter.
    #[test]
    fn stream_words_are_the_blocks_in_counter_order() {
        for start in [0u32, u32::MAX - 5] {
            let mut fast = Stream::new(0x1234_5678_9abc, Purpose::Weight, 77, 5, 0xdead_beef_f00d);
            fast.ctr[0] = start;
            let mut portable = fast.clone();
            let (ctr, key) = (fast.ctr, fast.key);
            for b in 0..3 * STREAM_BLOCKS as u32 {
                let block = philox4x32_10([start.wrapping_add(b), ctr[1], ctr[2], ctr[3]], key);
                for w in block {
                    assert_eq!(fast.next_u32(), w, "block {b} from {start}");
                    if portable.pos == STREAM_WORDS {
                        portable.refill_portable();
                    }
                    assert_eq!(
                        portable.buf[portable.pos], w,
                        "portable block {b} from {start}"
                    );
                    portable.pos += 1;
                }
            }
        }
    }

    /// The Poisson counts of the AVX2 path equal the portable ones, threshold by threshold
    /// (means from tiny to the inversion limit, so the early stop is exercised).
    #[test]
    fn poisson_counts_are_the_same_on_every_path() {
        for lambda in [1e-3, 0.3, 1.6, 7.5, POISSON_INVERSION_MAX * 0.99] {
            let th = poisson_thresholds(lambda);
            for first in (0..4096).step_by(POISSON_BATCH) {
                let (key, c2, c3) = grouped_key(99, Purpose::Poisson, 12, 1 << 33 | 77);
                let g0 = first / POISSON_WORDS as u32;
                let c1 = std::array::from_fn(|l| g0 + l as u32);
                assert_eq!(
                    poisson_counts_lanes(99, Purpose::Poisson, 12, first, 1 << 33 | 77, &th),
                    poisson_counts_portable(c1, c2, c3, key, &th),
                    "mean {lambda}, neurons from {first}"
                );
            }
        }
    }
}
