// iaf_psc_alpha on the device: IafPscAlpha::update (iaf_psc_alpha.rs) operation for
// operation, compiled without fused multiply-adds, one thread per neuron.
//
// c: IafPscAlpha::device_constants = theta, v_reset, i_e, ref_steps, p33, p30, then for the
//    excitatory and the inhibitory channel each: p11, p21, p31, p32, initial.
// real: V_m, I_syn_ex, dI_syn_ex, I_syn_in, dI_syn_in (n each); integer: refractory steps.
// Steps neuron i and answers whether it spiked; MYELIN_NEURON_KERNEL (the prelude) makes the
// update kernel iaf_psc_alpha_update of it.
__device__ __forceinline__ bool iaf_psc_alpha_neuron(const float* __restrict__ c, float* __restrict__ real,
                                                     u32* __restrict__ integer, float* __restrict__ ring, u32 slots,
                                                     u64 step, const float* __restrict__ current, u32 n, u32 i) {
    bool spiked = false;
    const float theta = c[0], v_reset = c[1], i_e = c[2], p33 = c[4], p30 = c[5];
    const float e11 = c[6], e21 = c[7], e31 = c[8], e32 = c[9], e_init = c[10];
    const float h11 = c[11], h21 = c[12], h31 = c[13], h32 = c[14], h_init = c[15];
    const u32 ref_steps = (u32)c[3];
    float in_ex, in_in;
    take_input(ring, i, step, slots, &in_ex, &in_in);
    float v = real[i], i_ex = real[n + i], di_ex = real[2 * n + i];
    float i_in = real[3 * n + i], di_in = real[4 * n + i];
    u32 r = integer[i];
    if (r == 0) {
        v = (i_e + current[i]) * p30 + e31 * di_ex + e32 * i_ex + h31 * di_in + h32 * i_in + p33 * v;
    } else {
        r -= 1;
    }
    i_ex = e21 * di_ex + e11 * i_ex;
    di_ex = di_ex * e11 + e_init * in_ex;
    i_in = h21 * di_in + h11 * i_in;
    di_in = di_in * h11 + h_init * in_in;
    if (v >= theta) {
        r = ref_steps;
        v = v_reset;
        spiked = true;
    }
    real[i] = v;
    real[n + i] = i_ex;
    real[2 * n + i] = di_ex;
    real[3 * n + i] = i_in;
    real[4 * n + i] = di_in;
    integer[i] = r;
    return spiked;
}

MYELIN_NEURON_KERNEL(iaf_psc_alpha)
