// Static spike delivery on the device: deliver_block (delivery.rs) for every target block
// at once, a warp per (spiking source, target block) row. Lanes stride through the row and
// add each synapse's weight into the target's ring slot `delay` steps ahead with an atomic
// add: the sums are those of the CPU up to the order of the float additions.
//
// Connectivity is the projection's per-block CSR (components::SynapseBlock) laid end to end:
// block b's row offsets start at row_base[b] (n_source + 1 of them, relative to the block's
// synapses, which start at syn_base[b]).
// spikes: this step's spiking sources, ascending (compact_spikes); n_spikes: their number.
extern "C" __global__ void deliver_static(const u32* __restrict__ spikes, const u32* __restrict__ n_spikes,
                                          u32 n_blocks, const u64* __restrict__ row_base,
                                          const u32* __restrict__ row_ptr, const u64* __restrict__ syn_base,
                                          const unsigned short* __restrict__ target,
                                          const float* __restrict__ weight, const unsigned short* __restrict__ delay,
                                          float* __restrict__ ring, u32 slots, u64 step) {
    const u32 lane = threadIdx.x & 31u;
    const u64 warps = ((u64)gridDim.x * blockDim.x) >> 5;
    const u64 rows = (u64)(*n_spikes) * n_blocks;
    for (u64 w = (u64)global_thread() >> 5; w < rows; w += warps) {
        const u32 source = spikes[w / n_blocks];
        const u32 b = (u32)(w % n_blocks);
        const u32* rp = row_ptr + row_base[b];
        const u64 base = syn_base[b];
        const u32 end = rp[source + 1];
        for (u32 k = rp[source] + lane; k < end; k += 32u) {
            const float wt = weight[base + k];
            const u32 slot = (u32)((step + delay[base + k]) % slots);
            const u32 neuron = b * MYELIN_BLOCK + target[base + k];
            atomicAdd(&ring[ring_index(neuron, channel_of(wt), slot, slots)], wt);
        }
    }
}
