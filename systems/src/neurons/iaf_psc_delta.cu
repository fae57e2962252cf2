// iaf_psc_delta on the device: IafPscDelta::update (iaf_psc_delta.rs) operation for
// operation, compiled without fused multiply-adds, one thread per neuron.
//
// c: IafPscDelta::device_constants = theta, v_reset, i_e, ref_steps, p33, p30.
// real: V_m (relative to E_L); integer: refractory steps.
// Steps neuron i and answers whether it spiked; MYELIN_NEURON_KERNEL (the prelude) makes the
// update kernel iaf_psc_delta_update of it.
__device__ __forceinline__ bool iaf_psc_delta_neuron(const float* __restrict__ c, float* __restrict__ real,
                                                     u32* __restrict__ integer, float* __restrict__ ring, u32 slots,
                                                     u64 step, const float* __restrict__ current, u32 n, u32 i) {
    bool spiked = false;
    const float theta = c[0], v_reset = c[1], i_e = c[2], p33 = c[4], p30 = c[5];
    const u32 ref_steps = (u32)c[3];
    float in_ex, in_in;
    take_input(ring, i, step, slots, &in_ex, &in_in);
    float v = real[i];
    u32 r = integer[i];
    if (r == 0) {
        v = p30 * (i_e + current[i]) + p33 * v + (in_ex + in_in);
    } else {
        r -= 1;
    }
    if (v >= theta) {
        r = ref_steps;
        v = v_reset;
        spiked = true;
    }
    real[i] = v;
    integer[i] = r;
    return spiked;
}

MYELIN_NEURON_KERNEL(iaf_psc_delta)
