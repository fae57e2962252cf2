//! Philox4x32-10 on eight counters at once with AVX2, chosen at run time: the same words as
//! [`super::philox4x32_10`] on each counter, bit for bit (integer arithmetic only). The
//! portable lock-step code compiles to SSE2 only (two 32-bit products per instruction, and
//! register spills for eight lanes); with this module the microcircuit's Poisson input phase
//! took about half the time (docs/performance.md).
//!
//! Every function here needs AVX2; [`available`] says whether the CPU has it, and the
//! callers in [`super`] fall back to the portable code when it does not.
#![expect(
    unsafe_code,
    reason = "AVX2 intrinsics behind a run-time feature check"
)]

use std::arch::x86_64::{
    __m256i, _mm256_blend_epi32, _mm256_cmpgt_epi32, _mm256_loadu_si256, _mm256_mul_epu32,
    _mm256_or_si256, _mm256_permute2x128_si256, _mm256_set1_epi32, _mm256_setzero_si256,
    _mm256_slli_epi64, _mm256_srli_epi64, _mm256_storeu_si256, _mm256_sub_epi32,
    _mm256_testz_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32,
    _mm256_unpacklo_epi64, _mm256_xor_si256,
};

use super::{GROUPED_BLOCK, LANES, M0, M1, POISSON_BATCH, W0, W1};

/// Whether this CPU runs the functions of this module (checked once, then cached by std).
#[inline]
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The high and low halves of `m * x` for each of the eight 32-bit lanes of `x`.
#[inline]
#[target_feature(enable = "avx2")]
fn mulhilo(m: __m256i, x: __m256i) -> (__m256i, __m256i) {
    // Products of the even lanes, then of the odd lanes (moved down), as 64-bit lanes.
    let even = _mm256_mul_epu32(m, x);
    let odd = _mm256_mul_epu32(m, _mm256_srli_epi64::<32>(x));
    let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
    let lo = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
    (hi, lo)
}

/// The ten Philox rounds on eight counters held as four vectors of word 0, 1, 2 and 3.
#[inline]
#[target_feature(enable = "avx2")]
fn rounds(mut x: [__m256i; 4], key: [u32; 2]) -> [__m256i; 4] {
    let (m0, m1) = (_mm256_set1_epi32(M0 as i32), _mm256_set1_epi32(M1 as i32));
    let (mut k0, mut k1) = (key[0], key[1]);
    for r in 0..10 {
        if r > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(m0, x[0]);
        let (hi1, lo1) = mulhilo(m1, x[2]);
        x = [
            _mm256_xor_si256(_mm256_xor_si256(hi1, x[1]), _mm256_set1_epi32(k0 as i32)),
            lo1,
            _mm256_xor_si256(_mm256_xor_si256(hi0, x[3]), _mm256_set1_epi32(k1 as i32)),
            lo0,
        ];
    }
    x
}

/// Loads eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn load(v: &[u32; LANES]) -> __m256i {
    // SAFETY: `v` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Stores eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn store(x: __m256i) -> [u32; LANES] {
    let mut v = [0u32; LANES];
    // SAFETY: `v` is 32 writable bytes; the store is unaligned.
    unsafe { _mm256_storeu_si256(v.as_mut_ptr().cast(), x) };
    v
}

/// The rounds on the counters `(c0, c1[l], c2, c3)`.
#[inline]
#[target_feature(enable = "avx2")]
fn rounds_c1(c0: u32, c1: [u32; LANES], c2: u32, c3: u32, key: [u32; 2]) -> [__m256i; 4] {
    rounds(
        [
            _mm256_set1_epi32(c0 as i32),
            load(&c1),
            _mm256_set1_epi32(c2 as i32),
            _mm256_set1_epi32(c3 as i32),
        ],
        key,
    )
}

/// Stores four vectors, one after the other.
#[inline]
#[target_feature(enable = "avx2")]
fn store_all(v: [__m256i; 4]) -> [u32; 4 * LANES] {
    let mut out = [0u32; 4 * LANES];
    for (chunk, v) in out.chunks_exact_mut(LANES).zip(v) {
        chunk.copy_from_slice(&store(v));
    }
    out
}

/// [`super::philox_lanes`]: counters `(c0, c1[l], c2, c3)`, the four output words of each
/// lane.
#[target_feature(enable = "avx2")]
pub(super) fn philox_lanes(
    c0: u32,
    c1: [u32; LANES],
    c2: u32,
    c3: u32,
    key: [u32; 2],
) -> [[u32; LANES]; 4] {
    let x = rounds_c1(c0, c1, c2, c3, key);
    x.map(|v| store(v))
}

/// The blocks of counters `(c0 + l, c1, c2, c3)` for `l` in `0..8`, in counter order (the
/// four words of block `c0`, then of `c0 + 1`, ...): the next 32 words of a [`super::Stream`]
/// whose next block is `c0`.
#[target_feature(enable = "avx2")]
pub(super) fn stream_words(c: [u32; 4], key: [u32; 2]) -> [u32; 4 * LANES] {
    let c0: [u32; LANES] = std::array::from_fn(|l| c[0].wrapping_add(l as u32));
    let x = rounds(
        [
            load(&c0),
            _mm256_set1_epi32(c[1] as i32),
            _mm256_set1_epi32(c[2] as i32),
            _mm256_set1_epi32(c[3] as i32),
        ],
        key,
    );
    let t = transpose(x);
    store_all(t)
}

/// Turns four vectors of word 0..3 of eight blocks into the blocks' words in block order:
/// `[b0w0 b0w1 b0w2 b0w3 b1w0 .. b1w3]`, then blocks 2 and 3, 4 and 5, 6 and 7.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose(x: [__m256i; 4]) -> [__m256i; 4] {
    let t0 = _mm256_unpacklo_epi32(x[0], x[1]); // b0w0 b0w1 b1w0 b1w1 | b4.. b5..
    let t1 = _mm256_unpackhi_epi32(x[0], x[1]); // b2w0 b2w1 b3w0 b3w1 | b6.. b7..
    let t2 = _mm256_unpacklo_epi32(x[2], x[3]); // b0w2 b0w3 b1w2 b1w3 | b4.. b5..
    let t3 = _mm256_unpackhi_epi32(x[2], x[3]); // b2w2 b2w3 b3w2 b3w3 | b6.. b7..
    let u0 = _mm256_unpacklo_epi64(t0, t2); // b0 | b4
    let u1 = _mm256_unpackhi_epi64(t0, t2); // b1 | b5
    let u2 = _mm256_unpacklo_epi64(t1, t3); // b2 | b6
    let u3 = _mm256_unpackhi_epi64(t1, t3); // b3 | b7
    [
        _mm256_permute2x128_si256::<0x20>(u0, u1),
        _mm256_permute2x128_si256::<0x20>(u2, u3),
        _mm256_permute2x128_si256::<0x31>(u0, u1),
        _mm256_permute2x128_si256::<0x31>(u2, u3),
    ]
}

/// [`super::poisson_counts_lanes`] after its key: the counts of the 32 neurons whose words
/// are those of the blocks `(GROUPED_BLOCK, c1[l], c2, c3)`, neuron `4 l + w` taking word
/// `w` of block `l`. Stops counting at the first threshold that no word exceeds (thresholds
/// ascend).
#[target_feature(enable = "avx2")]
pub(super) fn poisson_counts(
    c1: [u32; LANES],
    c2: u32,
    c3: u32,
    key: [u32; 2],
    thresholds: &[u32],
) -> [u32; POISSON_BATCH] {
    let x = rounds_c1(GROUPED_BLOCK, c1, c2, c3, key);
    // Neuron order, and the sign bit flipped so that a signed comparison orders the words
    // as unsigned numbers.
    let bias = _mm256_set1_epi32(i32::MIN);
    let u = transpose(x).map(|v| _mm256_xor_si256(v, bias));
    let mut n = [_mm256_setzero_si256(); 4];
    for &t in thresholds {
        let t = _mm256_set1_epi32((t ^ 0x8000_0000) as i32);
        let above = u.map(|v| _mm256_cmpgt_epi32(v, t));
        let any = _mm256_or_si256(
            _mm256_or_si256(above[0], above[1]),
            _mm256_or_si256(above[2], above[3]),
        );
        if _mm256_testz_si256(any, any) != 0 {
            break;
        }
        // A true comparison is -1: subtracting it counts one.
        for (n, a) in n.iter_mut().zip(above) {
            *n = _mm256_sub_epi32(*n, a);
        }
    }
    store_all(n)
}
