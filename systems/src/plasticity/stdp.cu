// Pair-based STDP on the device: the CPU kernels of plasticity/stdp.rs (deliver_with,
// after_spikes, catch_up_with, caught_up) and of plasticity/mod.rs (record_post, the history
// cut of catch_up_projection), operation for operation, for both weight dependences
// (Bounded: stdp, stdp_nn_*; PowerLaw: stdp_pl) and the four pairings. Compiled without
// fused multiply-adds, the weights follow the CPU's bit for bit (see `stdp_decay` and
// `stdp_pow` for the two library calls whose last bit the GPU may round differently).
//
// A step of a plastic projection is four launches, in this order (as the CPU's systems):
//   stdp_deliver       a warp per (spiking source, target block) row: pairs each synapse
//                      with the postsynaptic spikes that reached it, depresses it, stores the
//                      weight and adds it into the target's ring slot `delay` steps ahead
//   stdp_after_spikes  a thread per spiking source: its trace, last spike and pairing stamp
//   stdp_record_post   a thread per target neuron: its spike enters the history, its trace
//                      delay line advances by one stamp
//   stdp_catch_up      on catch-up steps only (stamp a multiple of catch_up_period; the
//                      kernel checks): a warp per row of a stale source, pairs without a spike
//   stdp_catch_up_done then marks the stale sources paired and cuts the histories

// Weight dependences (PlasticProjection::dependence).
#define STDP_BOUNDED 0u
#define STDP_POWER_LAW 1u
// Pairings (PlasticProjection::pairing), as stdp.rs's pairing codes.
#define STDP_ALL_TO_ALL 0u
#define STDP_NEAREST_SYMMETRIC 1u
#define STDP_NEAREST_PRE_CENTERED 2u
#define STDP_NEAREST_RESTRICTED 3u

// The rule's constants (PlasticProjection::c), as cuda_tables.rs's `stdp_constants` writes
// them: lambda, alpha, Wmax, dt / tau_plus, the postsynaptic trace's decay per step, then one
// power table (math.rs's Power) per exponent: Bounded's mu_plus and mu_minus, PowerLaw's mu.
#define STDP_LAMBDA 0
#define STDP_ALPHA 1
#define STDP_W_MAX 2
#define STDP_STEPS_PER_TAU 3
#define STDP_TRACE_DECAY 4
#define STDP_POWER_0 5
// A power table: kind (0: x^0, 1: x^1, 2: tables), mu, the five Taylor coefficients,
// 2^(e mu) for e in -64..=64, then (m0^mu, 1/m0) for the 256 mantissa intervals.
#define STDP_POWER_E_RANGE 64
#define STDP_POWER_M_BITS 8
#define STDP_POWER_WORDS (7 + 2 * STDP_POWER_E_RANGE + 1 + 2 * (1 << STDP_POWER_M_BITS))

// One plastic projection. The host (cuda_tables.rs, `PlasticProjection::words`) writes it
// as 26 64-bit words, field after field. Its connectivity is laid out as DeliveryProjection's
// (delivery.cu); the per-synapse state beside the weights, likewise.
struct PlasticProjection {
    const u64* row_base;
    const u32* row_ptr;
    const u64* syn_base;
    const unsigned short* target;  // neuron within the target block
    float* weight;
    const unsigned short* delay;   // [steps], at least 1
    float* syn_state;              // per synapse: pre-centred Kplus or restricted post_seen (else null)
    u64* t_last;                   // per source: stamp of its last spike (0: none)
    u64* paired_until;             // per source: postsynaptic spikes paired up to this stamp
    double* kplus;                 // per source: presynaptic trace (all-to-all; else null)
    u64* history;                  // per target neuron, hist_cap stamps in a circle, ascending
    u32* hist_head;                // per target neuron: where its next stamp goes
    u32* hist_len;                 // per target neuron: stamps held
    double* trace;                 // postsynaptic trace, [block][tslots][neuron in block]
    const double* c;               // the rule's constants (STDP_LAMBDA ...)
    const double* decay;           // exp(-k dt / tau_plus) for k < n_decay (DecayTable)
    float* ring;                   // the target population's SynapticInput
    u32* status;                   // bit 0 set when a history overflowed hist_cap
    u64 catch_up_period;           // [steps]
    u32 n_decay;
    u32 pairing;
    u32 dependence;
    u32 n_blocks;                  // target blocks
    u32 source;                    // the source population's index in compact_spikes' table
    u32 source_word;               // its first word in the spike bitmap
    u32 target_pop;                // the target population's index in compact_spikes' table
    u32 target_word;               // its first word in the spike bitmap
    u32 n_source;
    u32 n_target;
    u32 slots;                     // the target's ring slots
    u32 tslots;                    // the trace delay line's slots (longest delay + 2)
    u32 hist_cap;                  // stamps a history holds
    u32 max_delay;                 // [steps]
};
static_assert(sizeof(PlasticProjection) == 208, "cuda_tables.rs writes a PlasticProjection as 26 words");

__device__ __forceinline__ double stdp_bits_to_double(u64 b) {
#ifdef __CUDACC__
    return __longlong_as_double((long long)b);
#else
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
#endif
}

__device__ __forceinline__ u64 stdp_double_to_bits(double x) {
#ifdef __CUDACC__
    return (u64)__double_as_longlong(x);
#else
    u64 b;
    memcpy(&b, &x, sizeof b);
    return b;
#endif
}

// x^mu as math.rs's Power::pow. The fallback (x zero, subnormal, huge, negative) is pow():
// the host's is the CPU's; a GPU's may differ in the last bit.
__device__ __forceinline__ double stdp_pow(const double* p, double x) {
    const double kind = p[0];
    if (kind == 0.0) return 1.0;
    if (kind == 1.0) return x;
    const u64 bits = stdp_double_to_bits(x);
    const long long e = (long long)((bits >> 52) & 0x7ffull) - 1023;
    if (e < -STDP_POWER_E_RANGE || e > STDP_POWER_E_RANGE || (bits >> 63) != 0) return pow(x, p[1]);
    const u64 frac = bits & 0x000fffffffffffffull;
    const u32 j = (u32)(frac >> (52 - STDP_POWER_M_BITS));
    const double m = stdp_bits_to_double(frac | 0x3ff0000000000000ull);
    const double* mant = p + 7 + 2 * STDP_POWER_E_RANGE + 1 + 2 * j;
    const double m0_mu = mant[0], inv_m0 = mant[1];
    const double m0 = 1.0 + ((double)j + 0.5) / (double)(1u << STDP_POWER_M_BITS);
    const double d = (m - m0) * inv_m0;
    const double c1 = p[2], c2 = p[3], c3 = p[4], c4 = p[5], c5 = p[6];
    const double poly = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * c5))));
    return p[7 + (int)(e + STDP_POWER_E_RANGE)] * (m0_mu + m0_mu * poly);
}

// exp(-k dt / tau_plus) as stdp.rs's DecayTable::get. Beyond the table (lags of more than
// two catch-up periods) exp(): the host's is the CPU's; a GPU's may differ in the last bit
// of a factor below exp(-2 CATCH_UP_MS / tau_plus).
__device__ __forceinline__ double stdp_decay(const PlasticProjection& j, u64 k) {
    if (k < (u64)j.n_decay) return j.decay[k];
    return exp(-(double)k * j.c[STDP_STEPS_PER_TAU]);
}

// The weight after facilitation by presynaptic trace kplus (WeightDependence::facilitate).
__device__ __forceinline__ double stdp_facilitate(const PlasticProjection& j, double w, double kplus) {
    const double* c = j.c;
    if (j.dependence == STDP_POWER_LAW) {
        const double new_w = w + (c[STDP_LAMBDA] * stdp_pow(c + STDP_POWER_0, w) * kplus);
        return new_w < c[STDP_W_MAX] ? new_w : c[STDP_W_MAX];
    }
    const double w_max = c[STDP_W_MAX];
    const double norm_w = (w / w_max) + (c[STDP_LAMBDA] * stdp_pow(c + STDP_POWER_0, 1.0 - (w / w_max)) * kplus);
    return norm_w < 1.0 ? norm_w * w_max : w_max;
}

// The weight after depression by postsynaptic trace kminus (WeightDependence::depress).
__device__ __forceinline__ double stdp_depress(const PlasticProjection& j, double w, double kminus) {
    const double* c = j.c;
    if (j.dependence == STDP_POWER_LAW) {
        const double new_w = w - (c[STDP_LAMBDA] * c[STDP_ALPHA] * w * kminus);
        return new_w > 0.0 ? new_w : 0.0;
    }
    const double w_max = c[STDP_W_MAX];
    const double norm_w =
        (w / w_max) - (c[STDP_ALPHA] * c[STDP_LAMBDA] * stdp_pow(c + STDP_POWER_0 + STDP_POWER_WORDS, w / w_max) * kminus);
    return norm_w > 0.0 ? norm_w * w_max : 0.0;
}

// The stamp k-th from the end (k = 0: the latest) of target neuron t's history.
__device__ __forceinline__ u64 stdp_hist_back(const PlasticProjection& j, u32 t, u32 k) {
    const u32 head = j.hist_head[t];
    const u32 at = head >= k + 1u ? head - k - 1u : head + j.hist_cap - k - 1u;
    return j.history[(u64)t * j.hist_cap + at];
}

// The pairings of one synapse (stdp.rs's `pair`) with target neuron t's spikes in (lo, hi]
// (stdp.rs's `window`), and the depression by kminus where `depress`; returns the new weight.
__device__ __forceinline__ double stdp_pair(const PlasticProjection& j, double w, u32 t, u64 lo, u64 hi, u64 d,
                                            u64 t_last, double kplus, float* syn_state, bool depress,
                                            double kminus) {
    const u32 len = j.hist_len[t];
    u32 e = 0;  // spikes after hi, counted from the end
    while (e < len && stdp_hist_back(j, t, e) > hi) ++e;
    u32 b = e;  // spikes after lo, counted from the end
    while (b < len && stdp_hist_back(j, t, b) > lo) ++b;
    // The window, oldest first: back indices b - 1 down to e.
    switch (j.pairing) {
        case STDP_ALL_TO_ALL:
            for (u32 k = b; k > e; --k) w = stdp_facilitate(j, w, kplus * stdp_decay(j, stdp_hist_back(j, t, k - 1u) + d - t_last));
            if (depress) w = stdp_depress(j, w, kminus);
            break;
        case STDP_NEAREST_SYMMETRIC:
            for (u32 k = b; k > e; --k) w = stdp_facilitate(j, w, stdp_decay(j, stdp_hist_back(j, t, k - 1u) + d - t_last));
            if (depress) w = stdp_depress(j, w, kminus);
            break;
        case STDP_NEAREST_PRE_CENTERED:
            if (b > e) {
                // A zero trace facilitates by nothing (NEST skips the call).
                if (*syn_state != 0.0f)
                    w = stdp_facilitate(j, w, (double)*syn_state * stdp_decay(j, stdp_hist_back(j, t, b - 1u) + d - t_last));
                *syn_state = 0.0f;
            }
            if (depress) w = stdp_depress(j, w, kminus);
            break;
        default:
            if (b > e && *syn_state == 0.0f) {
                w = stdp_facilitate(j, w, stdp_decay(j, stdp_hist_back(j, t, b - 1u) + d - t_last));
                *syn_state = 1.0f;
            }
            if (depress && *syn_state != 0.0f) w = stdp_depress(j, w, kminus);
            break;
    }
    return w;
}

// The spikes of step *clock + k (k: its place in the batch), as compact_spikes wrote them:
// population p's are list[first[p]..first[p + 1]]. blockIdx.y is the projection.
extern "C" __global__ void stdp_deliver(const u32* __restrict__ first_of, const u32* __restrict__ spikes,
                                        const PlasticProjection* __restrict__ projs, const u64* __restrict__ clock,
                                        u32 k) {
    const PlasticProjection j = projs[blockIdx.y];
    const u64 step = *clock + k, stamp = step + 1u;
    const u32 first = first_of[j.source], count = first_of[j.source + 1u] - first;
    const u32* list = spikes + first;
    const u32 bit0 = j.source_word * 32u;
    const u32 lane = threadIdx.x & 31u;
    const u64 warps = ((u64)gridDim.x * blockDim.x) >> 5;
    const u64 rows = (u64)count * j.n_blocks;
    const u32 now = (u32)(step % j.slots);
    // The trace at stamp `stamp - d` is in slot (stamp - d) % tslots (d < tslots).
    const u64 s_slot = stamp % j.tslots;
    for (u64 w = (u64)global_thread() >> 5; w < rows; w += warps) {
        const u32 source = list[w / j.n_blocks] - bit0;
        const u32 b = (u32)(w % j.n_blocks);
        const u32* rp = j.row_ptr + j.row_base[b];
        const u64 base = j.syn_base[b];
        const u32 end = rp[source + 1];
        const u64 tl = j.t_last[source], fr = j.paired_until[source];
        const double kp = j.kplus ? j.kplus[source] : 0.0;
        for (u32 s = rp[source] + lane; s < end; s += 32u) {
            const u64 at = base + s;
            const u32 t = b * MYELIN_BLOCK + j.target[at];
            const u64 d = j.delay[at];
            const u64 lo = fr > d ? fr - d : 0u, hi = stamp > d ? stamp - d : 0u;
            double kminus = 0.0;
            if (stamp > d) {
                u64 sl = s_slot + j.tslots - d;
                if (sl >= j.tslots) sl -= j.tslots;
                kminus = j.trace[((u64)b * j.tslots + sl) * MYELIN_BLOCK + j.target[at]];
            }
            float* state = j.syn_state ? j.syn_state + at : nullptr;
            const float wt = (float)stdp_pair(j, (double)j.weight[at], t, lo, hi, d, tl, kp, state, true, kminus);
            j.weight[at] = wt;
            // After the pairing, the per-synapse state takes the new presynaptic spike.
            if (j.pairing == STDP_NEAREST_PRE_CENTERED)
                *state = (float)((double)*state * stdp_decay(j, stamp - tl) + 1.0);
            else if (j.pairing == STDP_NEAREST_RESTRICTED)
                *state = 0.0f;
            u32 slot = now + (u32)d;
            if (slot >= j.slots) slot -= j.slots;
            atomicAdd(&j.ring[ring_index(t, channel_of(wt), slot, j.slots)], wt);
        }
    }
}

// After stdp_deliver: every spiking source's trace (all-to-all) takes the spike, and its
// last spike and pairing stamp become the spike's (stdp.rs's after_spikes).
extern "C" __global__ void stdp_after_spikes(const u32* __restrict__ first_of, const u32* __restrict__ spikes,
                                             const PlasticProjection* __restrict__ projs,
                                             const u64* __restrict__ clock, u32 k) {
    const PlasticProjection j = projs[blockIdx.y];
    const u64 stamp = *clock + k + 1u;
    const u32 first = first_of[j.source], count = first_of[j.source + 1u] - first;
    const u32 bit0 = j.source_word * 32u;
    for (u32 n = global_thread(); n < count; n += gridDim.x * blockDim.x) {
        const u32 i = spikes[first + n] - bit0;
        if (j.pairing == STDP_ALL_TO_ALL) j.kplus[i] = j.kplus[i] * stdp_decay(j, stamp - j.t_last[i]) + 1.0;
        j.t_last[i] = stamp;
        j.paired_until[i] = stamp;
    }
}

// Whether neuron bit `bit` is in the ascending list[0..count].
__device__ __forceinline__ bool stdp_listed(const u32* list, u32 count, u32 bit) {
    u32 lo = 0, hi = count;
    while (lo < hi) {
        const u32 m = lo + (hi - lo) / 2u;
        if (list[m] < bit)
            lo = m + 1u;
        else
            hi = m;
    }
    return lo < count && list[lo] == bit;
}

// After stdp_after_spikes: every target neuron that spiked this step gets stamp step + 1 in
// its history, and its trace at stamp step + 2 follows from the one at step + 1 and the spike
// (plasticity/mod.rs's record_post). A thread per neuron of the trace's blocks.
extern "C" __global__ void stdp_record_post(const u32* __restrict__ first_of, const u32* __restrict__ spikes,
                                            const PlasticProjection* __restrict__ projs,
                                            const u64* __restrict__ clock, u32 k) {
    const PlasticProjection j = projs[blockIdx.y];
    const u64 stamp = *clock + k + 1u;
    const u32 first = first_of[j.target_pop], count = first_of[j.target_pop + 1u] - first;
    const u32 bit0 = j.target_word * 32u;
    const u32 from = (u32)(stamp % j.tslots), to = (u32)((stamp + 1u) % j.tslots);
    const double decay = j.c[STDP_TRACE_DECAY];
    const u32 n = j.n_blocks * MYELIN_BLOCK;
    for (u32 i = global_thread(); i < n; i += gridDim.x * blockDim.x) {
        const bool spiked = i < j.n_target && stdp_listed(spikes + first, count, bit0 + i);
        if (spiked) {
            if (j.hist_len[i] == j.hist_cap)
                atomicOr(j.status, 1u);  // the oldest stamp is lost
            else
                j.hist_len[i] += 1u;
            const u32 head = j.hist_head[i];
            j.history[(u64)i * j.hist_cap + head] = stamp;
            j.hist_head[i] = head + 1u == j.hist_cap ? 0u : head + 1u;
        }
        const u64 base = (u64)(i / MYELIN_BLOCK) * j.tslots * MYELIN_BLOCK + i % MYELIN_BLOCK;
        const double prev = j.trace[base + (u64)from * MYELIN_BLOCK];
        double next = decay * prev;
        if (spiked) next = j.pairing == STDP_ALL_TO_ALL ? decay * (prev + 1.0) : decay;
        j.trace[base + (u64)to * MYELIN_BLOCK] = next;
    }
}

// After stdp_record_post, on the last step of a catch-up period: pairs every synapse of a
// source not paired since the period began with the postsynaptic spikes that reached it up
// to stamp step + 1, without depression (stdp.rs's catch_up_with). A warp per (source,
// target block) row.
extern "C" __global__ void stdp_catch_up(const PlasticProjection* __restrict__ projs, const u64* __restrict__ clock,
                                         u32 k) {
    const PlasticProjection j = projs[blockIdx.y];
    const u64 until = *clock + k + 1u;
    if (until % j.catch_up_period != 0u) return;
    const u64 before = until - j.catch_up_period;
    const u32 lane = threadIdx.x & 31u;
    const u64 warps = ((u64)gridDim.x * blockDim.x) >> 5;
    const u64 rows = (u64)j.n_source * j.n_blocks;
    for (u64 w = (u64)global_thread() >> 5; w < rows; w += warps) {
        const u32 source = (u32)(w / j.n_blocks);
        const u64 fr = j.paired_until[source];
        if (fr >= before) continue;
        const u32 b = (u32)(w % j.n_blocks);
        const u32* rp = j.row_ptr + j.row_base[b];
        const u64 base = j.syn_base[b];
        const u32 end = rp[source + 1];
        const u64 tl = j.t_last[source];
        const double kp = j.kplus ? j.kplus[source] : 0.0;
        for (u32 s = rp[source] + lane; s < end; s += 32u) {
            const u64 at = base + s;
            const u32 t = b * MYELIN_BLOCK + j.target[at];
            const u64 d = j.delay[at];
            const u64 lo = fr > d ? fr - d : 0u, hi = until > d ? until - d : 0u;
            // Nothing to pair: the weight is not stored again (the CPU skips it too).
            const u32 len = j.hist_len[t];
            u32 e = 0;
            while (e < len && stdp_hist_back(j, t, e) > hi) ++e;
            if (e == len || stdp_hist_back(j, t, e) <= lo) continue;
            float* state = j.syn_state ? j.syn_state + at : nullptr;
            j.weight[at] = (float)stdp_pair(j, (double)j.weight[at], t, lo, hi, d, tl, kp, state, false, 0.0);
        }
    }
}

// After stdp_catch_up: the stale sources are paired up to stamp step + 1 (stdp.rs's
// caught_up), and every history drops the stamps no later pairing reads, those at or before
// one period plus the longest delay ago (plasticity/mod.rs's catch_up_projection). A thread
// per source and per target neuron.
extern "C" __global__ void stdp_catch_up_done(const PlasticProjection* __restrict__ projs,
                                              const u64* __restrict__ clock, u32 k) {
    const PlasticProjection j = projs[blockIdx.y];
    const u64 until = *clock + k + 1u;
    if (until % j.catch_up_period != 0u) return;
    const u64 before = until - j.catch_up_period;
    const u64 keep_after = before > j.max_delay ? before - j.max_delay : 0u;
    const u32 n = j.n_source > j.n_target ? j.n_source : j.n_target;
    for (u32 i = global_thread(); i < n; i += gridDim.x * blockDim.x) {
        if (i < j.n_source && j.paired_until[i] < before) j.paired_until[i] = until;
        if (i < j.n_target) {
            u32 len = j.hist_len[i];
            while (len > 0u && stdp_hist_back(j, i, len - 1u) <= keep_after) --len;
            j.hist_len[i] = len;
        }
    }
}
