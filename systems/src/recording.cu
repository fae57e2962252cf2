// Spike compaction on the device: turns a population's spike bitmap (record_spike_bit) into
// the ascending list of its spiking neurons, which delivery reads and recording copies back
// to the host (the only per-step transfer). One thread block: each thread counts the spikes
// of a contiguous run of words, a block-wide scan gives each run its place, and each thread
// writes its neurons there, so the list is sorted without a sort.
//
// Launch with one block of COMPACT_THREADS threads.
#define COMPACT_THREADS 1024u

extern "C" __global__ void compact_spikes(const u32* __restrict__ words, u32 n_words, u32* __restrict__ out,
                                          u32* __restrict__ count) {
    __shared__ u32 sums[COMPACT_THREADS];
    const u32 t = threadIdx.x;
    const u32 per = (n_words + COMPACT_THREADS - 1u) / COMPACT_THREADS;
    const u32 lo = min(t * per, n_words), hi = min(lo + per, n_words);
    u32 mine = 0;
    for (u32 w = lo; w < hi; ++w) mine += __popc(words[w]);
    sums[t] = mine;
    __syncthreads();
    for (u32 off = 1; off < COMPACT_THREADS; off <<= 1) {
        const u32 v = t >= off ? sums[t - off] : 0u;
        __syncthreads();
        sums[t] += v;
        __syncthreads();
    }
    u32 pos = sums[t] - mine;
    for (u32 w = lo; w < hi; ++w) {
        u32 bits = words[w];
        while (bits) {
            const u32 b = (u32)(__ffs(bits) - 1);
            out[pos++] = w * 32u + b;
            bits &= bits - 1u;
        }
    }
    if (t == COMPACT_THREADS - 1u) *count = sums[t];
}
