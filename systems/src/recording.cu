// Spike compaction on the device: turns the spike bitmap of every population into one
// ascending list of spiking neurons, which delivery reads and the host copies back (a batch
// of steps in one transfer). Population p owns words [pop_word[p], pop_word[p + 1]) of the
// bitmap, so its spikes are a contiguous run of the list.
//
// The steps of a batch append to one list: a step's spikes start where the previous step's
// end (*prev_end, its first[n_pops]; the batch's first step has prev_end null and starts at
// 0). first[0..=n_pops]: population p's spikes are list[first[p]..first[p + 1]], each as its
// bit in the bitmap (word * 32 + bit; population p's neuron i is bit pop_word[p] * 32 + i).
//
// One thread block: each thread counts the spikes of a contiguous run of words, a
// block-wide scan gives each run its place, each thread writes its neurons there (so the
// list is sorted without a sort), and then a binary search per population finds where its
// run starts. Launch with one block of COMPACT_THREADS threads.
#ifndef COMPACT_THREADS
#define COMPACT_THREADS 1024u
#endif

extern "C" __global__ void compact_spikes(const u32* __restrict__ words, const u32* __restrict__ pop_word,
                                          u32 n_pops, const u32* __restrict__ prev_end, u32* __restrict__ first,
                                          u32* __restrict__ all) {
    __shared__ u32 sums[COMPACT_THREADS];
    const u32 t = threadIdx.x;
    const u32 n_words = pop_word[n_pops];
    const u32 start = prev_end ? *prev_end : 0u;
    u32* list = all + start;
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
            list[pos++] = w * 32u + b;
            bits &= bits - 1u;
        }
    }
    __syncthreads();
    const u32 total = sums[COMPACT_THREADS - 1u];
    for (u32 p = t; p <= n_pops; p += COMPACT_THREADS) {
        // The first spike at or after the population's first bit.
        const u32 key = pop_word[p] * 32u;
        u32 a = 0, b = total;
        while (a < b) {
            const u32 m = a + (b - a) / 2u;
            if (list[m] < key)
                a = m + 1u;
            else
                b = m;
        }
        first[p] = start + a;
    }
}

// Moves the device's step counter on by the n steps of a batch: its last kernel.
extern "C" __global__ void advance_clock(u64* clock, u32 n) {
    if (global_thread() == 0u) *clock += n;
}
