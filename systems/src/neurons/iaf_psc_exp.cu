// iaf_psc_exp on the device: IafPscExp::update (iaf_psc_exp.rs) operation for operation,
// compiled without fused multiply-adds, one thread per neuron.
//
// c: IafPscExp::device_constants = theta, v_reset, i_e, ref_steps, p22, p20, p11_ex, p11_in,
//    p21_ex, p21_in.
// real: V_m, I_syn_ex, I_syn_in (n each, V_m relative to E_L); integer: refractory steps.
// ring: the population's SynapticInput; this step's slot is read and cleared.
// Steps neuron i and answers whether it spiked; MYELIN_NEURON_KERNEL (the prelude) makes the
// update kernel iaf_psc_exp_update of it.
__device__ __forceinline__ bool iaf_psc_exp_neuron(const float* __restrict__ c, float* __restrict__ real,
                                                   u32* __restrict__ integer, float* __restrict__ ring, u32 slots,
                                                   u64 step, const float* __restrict__ current, u32 n, u32 i) {
    bool spiked = false;
    const float theta = c[0], v_reset = c[1], i_e = c[2], p22 = c[4], p20 = c[5];
    const float p11_ex = c[6], p11_in = c[7], p21_ex = c[8], p21_in = c[9];
    const u32 ref_steps = (u32)c[3];
    float in_ex, in_in;
    take_input(ring, i, step, slots, &in_ex, &in_in);
    float v = real[i], i_ex = real[n + i], i_in = real[2 * n + i];
    u32 r = integer[i];
    if (r == 0) {
        v = v * p22 + i_ex * p21_ex + i_in * p21_in + (i_e + current[i]) * p20;
    } else {
        r -= 1;
    }
    i_ex = i_ex * p11_ex + in_ex;
    i_in = i_in * p11_in + in_in;
    if (v >= theta) {
        r = ref_steps;
        v = v_reset;
        spiked = true;
    }
    real[i] = v;
    real[n + i] = i_ex;
    real[2 * n + i] = i_in;
    integer[i] = r;
    return spiked;
}

MYELIN_NEURON_KERNEL(iaf_psc_exp)
