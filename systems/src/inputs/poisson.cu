// poisson_generator on the device: poisson_inputs (inputs/mod.rs), one thread per target
// neuron. The count of a neuron is a function of (seed, input, neuron, step) alone, drawn by
// the generator of engine/src/rng.rs, so the GPU receives exactly the input the CPU does:
// bit for bit for means below rng::POISSON_INVERSION_MAX (the grouped draws, thresholds
// computed on the host), by the same PTRS arithmetic above.
//
// One poisson_generator of a launch. The host (systems/src/cuda_tables.rs) writes it as ten
// 64-bit words, field after field.
struct PoissonSource {
    const u32* thresholds;  // rng::poisson_thresholds of the mean (n_thresholds of them; none: PTRS)
    float* ring;            // the target population's SynapticInput
    const u32* neurons;     // the selected target neurons, ascending (null: neurons 0..n)
    double lambda;          // the mean count per step
    u64 start, stop;        // active in steps [start, stop)
    u32 n_thresholds;
    u32 element;            // the input's stable id, the generator's element
    u32 delay;              // [steps]
    u32 slots;              // the target's ring slots
    u32 n;                  // target neurons
    float weight;
    u32 first_block;        // its first thread block in the launch (row_of_block)
    u32 unused;
};
static_assert(sizeof(PoissonSource) == 80, "cuda_tables.rs writes a PoissonSource as 10 words");

// Every input of the table `inputs` at step *clock + k (k: the step's place in its batch),
// a thread per target neuron; the
// inputs' blocks lie one after another in one one-dimensional launch. Inputs with the same
// target must be in separate launches, in scene order (the CPU's order of the additions,
// and no two threads add to one slot).
extern "C" __global__ void poisson_input(u64 seed, const PoissonSource* __restrict__ inputs, u32 n_inputs,
                                         const u64* __restrict__ clock, u32 k) {
    const PoissonSource p = inputs[row_of_block(inputs, n_inputs, blockIdx.x)];
    const u64 step = *clock + k;
    if (step < p.start || step >= p.stop) return;
    const u32 i = (blockIdx.x - p.first_block) * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const u32 slot = (u32)((step + p.delay) % p.slots);
    const u32 neuron = p.neurons ? p.neurons[i] : i;
    u32 count;
    if (p.n_thresholds > 0) {
        count = poisson_count_grouped(seed, PURPOSE_POISSON, p.element, neuron, step, p.thresholds, p.n_thresholds);
    } else {
        Stream s = stream_new(seed, PURPOSE_POISSON, p.element, neuron, step);
        count = poisson_ptrs(&s, p.lambda);
    }
    p.ring[ring_index(neuron, channel_of(p.weight), slot, p.slots)] += (float)count * p.weight;
}

// dc_generator on the device: adds `amplitude` to the external current of the selected
// neurons (null: neurons 0..n) while the input is active, steps [start, stop), at step
// *clock + k. The host
// clears the currents at the start of each step, as dc_inputs does, and launches the
// inputs in scene order.
extern "C" __global__ void dc_input(float amplitude, float* __restrict__ current, const u32* __restrict__ neurons,
                                    u32 n, u64 start, u64 stop, const u64* __restrict__ clock, u32 k) {
    const u64 step = *clock + k;
    if (step < start || step >= stop) return;
    for (u32 i = global_thread(); i < n; i += gridDim.x * blockDim.x) current[neurons ? neurons[i] : i] += amplitude;
}
