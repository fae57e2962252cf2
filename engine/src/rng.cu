// The counter-based generator of engine/src/rng.rs on the device: Philox4x32-10 and the
// draws built on it, operation for operation, so a kernel draws exactly the numbers the CPU
// draws for the same (seed, purpose, element, index, step).

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// Purposes (rng::Purpose).
#define PURPOSE_POISSON 5u

// Block counter of the grouped Poisson draws (rng::GROUPED_BLOCK).
#define GROUPED_BLOCK 0x80000000u
// Neurons sharing one Philox block in the grouped draws (rng::POISSON_WORDS).
#define POISSON_WORDS 4u

__device__ __forceinline__ u32 mulhi32(u32 a, u32 b) {
#ifdef __CUDACC__
    return __umulhi(a, b);
#else
    return (u32)(((u64)a * b) >> 32);
#endif
}

struct Philox4 {
    u32 v[4];
};

// rng::philox4x32_10.
__device__ __forceinline__ Philox4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const u32 hi0 = mulhi32(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        const u32 hi1 = mulhi32(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        const u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    Philox4 out;
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

// rng::poisson_count_grouped: the Poisson count of `neuron` for input `element` at step
// `aux`, by the input's thresholds (rng::poisson_thresholds, computed on the host).
__device__ __forceinline__ u32 poisson_count_grouped(u64 seed, u32 purpose, u32 element, u32 neuron,
                                                     u64 aux, const u32* thresholds, u32 n_thresholds) {
    const u32 k0 = (u32)seed, k1 = (u32)(seed >> 32) ^ (u32)(aux >> 32);
    const Philox4 w = philox4x32_10(GROUPED_BLOCK, neuron / POISSON_WORDS, (u32)aux,
                                    (purpose << 24) | (element & 0x00FFFFFFu), k0, k1);
    const u32 u = w.v[neuron % POISSON_WORDS];
    u32 k = 0;
    for (u32 t = 0; t < n_thresholds; ++t) k += u > thresholds[t] ? 1u : 0u;
    return k;
}

// rng::Stream: the numbers of one (seed, purpose, element, index, aux) in order.
struct Stream {
    u32 key[2];
    u32 ctr[4];
    u32 buf[4];
    u32 pos;
};

__device__ __forceinline__ Stream stream_new(u64 seed, u32 purpose, u32 element, u32 index, u64 aux) {
    Stream s;
    s.key[0] = (u32)seed;
    s.key[1] = (u32)(seed >> 32) ^ (u32)(aux >> 32);
    s.ctr[0] = 0;
    s.ctr[1] = index;
    s.ctr[2] = (u32)aux;
    s.ctr[3] = (purpose << 24) | (element & 0x00FFFFFFu);
    s.pos = 4;
    return s;
}

__device__ __forceinline__ u32 stream_next_u32(Stream* s) {
    if (s->pos == 4) {
        const Philox4 b = philox4x32_10(s->ctr[0], s->ctr[1], s->ctr[2], s->ctr[3], s->key[0], s->key[1]);
        for (int i = 0; i < 4; ++i) s->buf[i] = b.v[i];
        s->ctr[0] += 1;
        s->pos = 0;
    }
    return s->buf[s->pos++];
}

// rng::u01_open: 53 bits of two words, in (0, 1).
__device__ __forceinline__ double u01_open(u32 a, u32 b) {
    const u64 x = ((u64)a << 21) ^ (u64)(b >> 11);
    return ((double)x + 0.5) * (1.0 / 9007199254740992.0);
}

__device__ __forceinline__ double stream_uniform(Stream* s) {
    const u32 a = stream_next_u32(s);
    const u32 b = stream_next_u32(s);
    return u01_open(a, b);
}

// rng::ln_factorial.
__device__ __forceinline__ double ln_factorial(double k) {
    if (k < 16.0) {
        double f = 1.0;
        for (double i = 2.0; i <= k; i += 1.0) f *= i;
        return log(f);
    }
    const double n = k + 1.0, inv = 1.0 / n, inv2 = inv * inv;
    return (n - 0.5) * log(n) - n + 0.5 * log(6.283185307179586) +
           inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
}

// rng::poisson for means at or above rng::POISSON_INVERSION_MAX: Hörmann's PTRS on the
// neuron's own stream. The same operations as the CPU; the device's log and exp may round
// the last bit differently from the host's, so this path agrees with the CPU statistically,
// and the grouped path (means below 30, integers only) bit for bit.
__device__ __forceinline__ u32 poisson_ptrs(Stream* s, double lambda) {
    const double slam = sqrt(lambda), loglam = log(lambda);
    const double b = 0.931 + 2.53 * slam;
    const double a = -0.059 + 0.02483 * b;
    const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        const double u = stream_uniform(s) - 0.5;
        const double v = stream_uniform(s);
        const double us = 0.5 - fabs(u);
        const double k = floor((2.0 * a / us + b) * u + lambda + 0.43);
        if (us >= 0.07 && v <= vr) return (u32)k;
        if (k < 0.0 || (us < 0.013 && v > us)) continue;
        if (log(v) + log(invalpha) - log(a / (us * us) + b) <= -lambda + k * loglam - ln_factorial(k))
            return (u32)k;
    }
}
