// poisson_generator on the device: poisson_inputs (inputs/mod.rs), one thread per target
// neuron. The count of a neuron is a function of (seed, input, neuron, step) alone, drawn by
// the generator of engine/src/rng.rs, so the GPU receives exactly the input the CPU does:
// bit for bit for means below rng::POISSON_INVERSION_MAX (the grouped draws, thresholds
// computed on the host), by the same PTRS arithmetic above. Launch the inputs of one target
// population in scene order (the CPU's order of the additions).
//
// neurons: the selected target neurons, ascending (null: neurons 0..n).
extern "C" __global__ void poisson_input(u64 seed, u32 element, u64 step, const u32* __restrict__ thresholds,
                                         u32 n_thresholds, double lambda, float weight, u32 delay,
                                         float* __restrict__ ring, u32 slots, const u32* __restrict__ neurons,
                                         u32 n) {
    const u32 i = global_thread();
    if (i >= n) return;
    const u32 neuron = neurons ? neurons[i] : i;
    u32 k;
    if (n_thresholds > 0) {
        k = poisson_count_grouped(seed, PURPOSE_POISSON, element, neuron, step, thresholds, n_thresholds);
    } else {
        Stream s = stream_new(seed, PURPOSE_POISSON, element, neuron, step);
        k = poisson_ptrs(&s, lambda);
    }
    const u32 slot = (u32)((step + delay) % slots);
    ring[ring_index(neuron, channel_of(weight), slot, slots)] += (float)k * weight;
}

// dc_generator on the device: adds `amplitude` to the external current of the selected
// neurons while the input is active (the host clears the currents at the start of each
// step, as dc_inputs does, and launches the active inputs in scene order).
extern "C" __global__ void dc_input(float amplitude, float* __restrict__ current, const u32* __restrict__ neurons,
                                    u32 n) {
    const u32 i = global_thread();
    if (i >= n) return;
    current[neurons ? neurons[i] : i] += amplitude;
}
