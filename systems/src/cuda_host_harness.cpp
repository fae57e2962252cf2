// The driver of the host-compiled kernels (cuda_host_shim.h): runs one kernel on inputs
// given on the command line and stdin, and prints its results, floats in hexadecimal so
// the Rust side compares them bit for bit.
//
//   poisson SEED ELEMENT STEP N LAMBDA T1 T2 ...   counts of neurons 0..N, one per line
//   neuron MODEL STEPS   stdin: NREAL NINT NC, the initial real and integer state, the
//                        constants, then per step "EX IN CURRENT"; prints per step the real
//                        state, the integer state and whether the neuron spiked
int main(int argc, char** argv) {
    if (argc < 2) return 2;
    const std::string cmd = argv[1];
    if (cmd == "poisson") {
        const u64 seed = strtoull(argv[2], 0, 10);
        const u32 element = (u32)strtoul(argv[3], 0, 10);
        const u64 step = strtoull(argv[4], 0, 10);
        const u32 n = (u32)strtoul(argv[5], 0, 10);
        const double lambda = strtod(argv[6], 0);
        std::vector<u32> th;
        for (int a = 7; a < argc; ++a) th.push_back((u32)strtoul(argv[a], 0, 10));
        const u32 slots = 2, delay = 1;
        std::vector<float> ring((size_t)((n + MYELIN_BLOCK - 1) / MYELIN_BLOCK) * slots * MYELIN_CHANNELS * MYELIN_BLOCK);
        launch((n + 255) / 256, 256, poisson_input, seed, element, step, th.data(), (u32)th.size(), lambda, 1.0f,
               delay, ring.data(), slots, (const u32*)nullptr, n);
        const u32 slot = (u32)((step + delay) % slots);
        for (u32 i = 0; i < n; ++i) printf("%u\n", (u32)ring[ring_index(i, 0, slot, slots)]);
        return 0;
    }
    if (cmd == "neuron") {
        const std::string model = argv[2];
        const int steps = atoi(argv[3]);
        unsigned nreal, nint, nc;
        if (scanf("%u %u %u", &nreal, &nint, &nc) != 3) return 3;
        std::vector<float> real(nreal), c(nc);
        std::vector<u32> integer(std::max(nint, 1u));
        for (auto& v : real) scanf("%a", &v);
        for (u32 k = 0; k < nint; ++k) scanf("%u", &integer[k]);
        for (auto& v : c) scanf("%a", &v);
        const u32 slots = 2;
        std::vector<float> ring(slots * MYELIN_CHANNELS * MYELIN_BLOCK);
        u32 words[1] = {0};
        float current[1];
        auto kernel = model == "iaf_psc_exp"     ? iaf_psc_exp_update
                      : model == "iaf_psc_alpha" ? iaf_psc_alpha_update
                      : model == "iaf_psc_delta" ? iaf_psc_delta_update
                                                 : nullptr;
        if (!kernel) return 4;
        for (int s = 0; s < steps; ++s) {
            float ex, in;
            if (scanf("%a %a %a", &ex, &in, &current[0]) != 3) return 5;
            ring[ring_index(0, 0, s % slots, slots)] = ex;
            ring[ring_index(0, 1, s % slots, slots)] = in;
            launch(1, 32, kernel, (const float*)c.data(), real.data(), integer.data(), ring.data(), slots, (u64)s,
                   (const float*)current, 1u, words);
            for (auto v : real) printf("%a ", v);
            for (u32 k = 0; k < nint; ++k) printf("%u ", integer[k]);
            printf("%u\n", words[0] & 1u);
        }
        return 0;
    }
    return 2;
}
