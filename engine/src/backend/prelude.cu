// Myelin's device prelude: the types and layouts every kernel program shares. Compiled by
// NVRTC in front of each family's source (engine::backend::DEVICE_PRELUDE); it also
// compiles as host C++ (see systems/src/cuda_host_shim.h), so the CPU can check kernels
// against their Rust twins without a GPU.

typedef unsigned int u32;
typedef unsigned long long u64;

// Synaptic channels per neuron: 0 excitatory (weight >= 0), 1 inhibitory (weight < 0).
#define MYELIN_CHANNELS 2u
// Neurons per delivery block (components::DELIVERY_BLOCK).
#define MYELIN_BLOCK 1024u

// The channel of a weight, as components::channel_of.
__device__ __forceinline__ u32 channel_of(float w) { return w < 0.0f ? 1u : 0u; }

// Index into a population's ring buffers (components::SynapticInput, layout
// [block][slot][channel][neuron in block]) of neuron i, channel ch, slot slot.
__device__ __forceinline__ u64 ring_index(u32 i, u32 ch, u32 slot, u32 slots) {
    return ((u64)(i / MYELIN_BLOCK) * slots + slot) * (MYELIN_CHANNELS * MYELIN_BLOCK) +
           (u64)ch * MYELIN_BLOCK + i % MYELIN_BLOCK;
}

// The global index of this thread in a one-dimensional launch.
__device__ __forceinline__ u32 global_thread() { return blockIdx.x * blockDim.x + threadIdx.x; }

// Records whether neuron i spiked in the population's spike bitmap (bit i % 32 of word
// i / 32). On the device every thread of a warp must call it (threads past the population's
// end with spiked = false): the warp's ballot is the word. On the host it sets or clears the
// bit.
__device__ __forceinline__ void record_spike_bit(u32* words, u32 i, u32 n, bool spiked) {
#ifdef __CUDACC__
    const u32 word = __ballot_sync(0xFFFFFFFFu, spiked);
    if ((threadIdx.x & 31u) == 0u && i < n) words[i / 32u] = word;
#else
    if (i >= n) return;
    if (spiked)
        words[i / 32u] |= 1u << (i % 32u);
    else
        words[i / 32u] &= ~(1u << (i % 32u));
#endif
}

// Reads and clears neuron i's ring slot of this step on both channels.
__device__ __forceinline__ void take_input(float* ring, u32 i, u64 step, u32 slots, float* ex, float* in) {
    const u32 slot = (u32)(step % slots);
    const u64 ke = ring_index(i, 0u, slot, slots), ki = ring_index(i, 1u, slot, slots);
    *ex = ring[ke];
    *in = ring[ki];
    ring[ke] = 0.0f;
    ring[ki] = 0.0f;
}

// One population of a neuron-update launch. The host (systems/src/cuda_step.rs,
// `population_words`) writes it as seven 64-bit words, field after field.
struct NeuronPopulation {
    const float* c;        // the model's device constants (NeuronModel::device_constants)
    float* real;           // real state, variable after variable (n each)
    u32* integer;          // integer state, likewise
    float* ring;           // the population's SynapticInput; this step's slot is read and cleared
    const float* current;  // external current per neuron
    u32* words;            // the population's words of the spike bitmap (record_spike_bit)
    u32 n;                 // neurons
    u32 slots;             // ring slots
    u32 first_block;       // its first thread block in the launch (row_of_block)
    u32 unused;
};
static_assert(sizeof(NeuronPopulation) == 64, "cuda_tables.rs writes a NeuronPopulation as 8 words");

// The row of a table that thread block b works for, in a launch that gives each row
// ceil(n / blockDim.x) blocks one after another: the last row whose first_block is at or
// before b (rows in ascending first_block from 0; an empty row shares its successor's).
template <typename Row>
__device__ __forceinline__ u32 row_of_block(const Row* rows, u32 n_rows, u32 b) {
    u32 lo = 0, hi = n_rows;
    while (hi - lo > 1u) {
        const u32 m = lo + (hi - lo) / 2u;
        if (rows[m].first_block <= b)
            lo = m;
        else
            hi = m;
    }
    return lo;
}

// The update kernel of a neuron model: `model##_update(pops, n_pops, clock, k)` steps every
// population of the table `pops` at the step `*clock + k` (k: the step's place in its
// batch), a thread per neuron, and records the
// spikes in the bitmap. The populations' blocks lie one after another in one
// one-dimensional launch (NeuronPopulation::first_block), so no block idles. The model
// writes only the neuron:
//
//   __device__ bool model##_neuron(const float* c, float* real, u32* integer, float* ring,
//                                  u32 slots, u64 step, const float* current, u32 n, u32 i)
//
// which steps neuron i < n and answers whether it spiked. Every thread of a block reaches
// record_spike_bit's ballot (blockDim.x is a multiple of 32).
#define MYELIN_NEURON_KERNEL(model)                                                                      \
    extern "C" __global__ void model##_update(const NeuronPopulation* __restrict__ pops, u32 n_pops,     \
                                              const u64* __restrict__ clock, u32 k) {                    \
        const NeuronPopulation p = pops[row_of_block(pops, n_pops, blockIdx.x)];                         \
        const u64 step = *clock + k;                                                                     \
        const u32 i = (blockIdx.x - p.first_block) * blockDim.x + threadIdx.x;                           \
        const bool spiked =                                                                              \
            i < p.n && model##_neuron(p.c, p.real, p.integer, p.ring, p.slots, step, p.current, p.n, i); \
        record_spike_bit(p.words, i, p.n, spiked);                                                       \
    }
