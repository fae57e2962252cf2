// Myelin's device prelude: the types and layouts every kernel program shares. Compiled by
// NVRTC in front of each family's source (engine::backend::DEVICE_PRELUDE); it also
// compiles as host C++ (see tests/kernels/host_shim.h), so the CPU can check kernels
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
