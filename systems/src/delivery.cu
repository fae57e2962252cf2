// Static spike delivery on the device: deliver_block (delivery.rs) for every projection and
// every target block at once, a warp per (spiking source, target block) row. Lanes stride
// through the row and add each synapse's weight into the target's ring slot `delay` steps
// ahead with an atomic add: the sums are those of the CPU up to the order of the float
// additions.

// One projection of the launch. The host (systems/src/cuda_step.rs, `projection_words`)
// writes it as nine 64-bit words, field after field. Its connectivity is the per-block CSR
// (components::SynapseBlock) laid end to end: block b's row offsets start at row_base[b]
// (n_source + 1 of them, relative to the block's synapses, which start at syn_base[b]).
struct DeliveryProjection {
    const u64* row_base;
    const u32* row_ptr;
    const u64* syn_base;
    const unsigned short* target;  // neuron within the target block
    const float* weight;
    const unsigned short* delay;   // [steps], at least 1
    float* ring;                   // the target population's SynapticInput
    u32 n_blocks;                  // target blocks
    u32 source;                    // the source population's index in compact_spikes' table
    u32 source_word;               // its first word in the spike bitmap
    u32 slots;                     // the target's ring slots
};
static_assert(sizeof(DeliveryProjection) == 72, "cuda_step.rs writes a DeliveryProjection as 9 words");

// The spikes of step *clock + k (k: its place in the batch), as compact_spikes wrote them:
// population p's are list[first[p]..first[p + 1]]. blockIdx.y is the projection.
extern "C" __global__ void deliver_static(const u32* __restrict__ first_of, const u32* __restrict__ spikes,
                                          const DeliveryProjection* __restrict__ projs,
                                          const u64* __restrict__ clock, u32 k) {
    const DeliveryProjection j = projs[blockIdx.y];
    const u64 step = *clock + k;
    const u32 first = first_of[j.source], count = first_of[j.source + 1u] - first;
    const u32* list = spikes + first;
    const u32 bit0 = j.source_word * 32u;
    const u32 lane = threadIdx.x & 31u;
    const u64 warps = ((u64)gridDim.x * blockDim.x) >> 5;
    const u64 rows = (u64)count * j.n_blocks;
    // This step's ring slot; a delay (at most slots - 1, as the rings are sized) moves it on
    // with one wrap at most.
    const u32 now = (u32)(step % j.slots);
    for (u64 w = (u64)global_thread() >> 5; w < rows; w += warps) {
        const u32 source = list[w / j.n_blocks] - bit0;
        const u32 b = (u32)(w % j.n_blocks);
        const u32* rp = j.row_ptr + j.row_base[b];
        const u64 base = j.syn_base[b];
        const u32 end = rp[source + 1];
        for (u32 k = rp[source] + lane; k < end; k += 32u) {
            const float wt = j.weight[base + k];
            u32 slot = now + j.delay[base + k];
            if (slot >= j.slots) slot -= j.slots;
            const u32 neuron = b * MYELIN_BLOCK + j.target[base + k];
            atomicAdd(&j.ring[ring_index(neuron, channel_of(wt), slot, j.slots)], wt);
        }
    }
}
