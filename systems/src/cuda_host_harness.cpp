// The driver of the host-compiled kernels (cuda_host_shim.h): runs one kernel on inputs
// given on the command line and stdin, and prints its results, floats in hexadecimal so
// the Rust side compares them bit for bit.
//
// Tables (NeuronPopulation, PoissonSource) arrive as the 64-bit words the host's
// cuda_tables.rs writes, in hexadecimal. Their pointer fields hold tags instead of
// addresses, 1-based indices into the buffers the harness allocates (0: null), so a field
// written in the wrong place points at the wrong buffer.
//
//   poisson SEED STEP N T1 T2 ...   stdin: a PoissonSource (thresholds 1, ring 2, neurons 0);
//                                   prints the counts of neurons 0..N, one per line
//   neuron MODEL STEPS   stdin: a NeuronPopulation (c 1, real 2, integer 3, ring 4,
//                        current 5, words 6), then NREAL NINT NC, the initial real and
//                        integer state, the constants, then per step "EX IN CURRENT";
//                        prints per step the real state, the integer state and whether the
//                        neuron spiked
//   compact              stdin: NPOPS, pop_word[0..=NPOPS], then the bitmap's words; runs
//                        compact_spikes as a later step of a batch (after 7 earlier spikes)
//                        and prints its offsets (from its own first spike), then its list
//                        (the step's spikes), one per line
//   deliver              stdin: NPOPS LEN and the step's offsets then list, as the compact
//                        command prints them; the ring's length; NPROJ;
//                        per projection a DeliveryProjection (tags 6k+1..6k+6 for row_base,
//                        row_ptr, syn_base, target, weight, delay of projection k; the ring
//                        after them), then those six arrays, each as its length and values
//                        (weights in %a); the step. Runs deliver_static on 2 blocks of 64
//                        threads per projection and prints the ring, one value per line
//   plastic STEPS        stdin: a PlasticProjection (tags 1..18 in field order: row_base ...
//                        status; source population 0, target 1), then its 18 arrays, each
//                        as its length and its values' bits in hexadecimal (status: one
//                        word), then per step "NPRE i... NPOST j..." (population-local
//                        neurons). Runs stdp_deliver, stdp_after_spikes, stdp_record_post,
//                        stdp_catch_up and stdp_catch_up_done per step and prints the ring
//                        slot of the next step, complete now, as "STEP NEURON CHANNEL BITS"
//                        per non-zero value (then clears it, as a neuron update would);
//                        then "end" and the final weight, syn_state, t_last, paired_until,
//                        kplus, history, hist_head, hist_len, trace and status arrays, a
//                        line each, values' bits in hexadecimal

// Reads a table row of type T written as 64-bit words.
template <class T>
static bool read_row(T* row) {
    static_assert(sizeof(T) % 8 == 0, "tables are whole words");
    u64 w[sizeof(T) / 8];
    for (auto& x : w)
        if (scanf("%llx", &x) != 1) return false;
    memcpy(row, w, sizeof(T));
    return true;
}

// The buffer a tag names.
template <class P>
static P* reloc(P* tag, const std::vector<void*>& arena) {
    const u64 k = (u64)tag;
    return k ? (P*)arena.at(k - 1) : nullptr;
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    const std::string cmd = argv[1];
    if (cmd == "poisson") {
        const u64 seed = strtoull(argv[2], 0, 10);
        u64 clock = strtoull(argv[3], 0, 10);
        const u32 n = (u32)strtoul(argv[4], 0, 10);
        std::vector<u32> th;
        for (int a = 5; a < argc; ++a) th.push_back((u32)strtoul(argv[a], 0, 10));
        PoissonSource src;
        if (!read_row(&src)) return 3;
        std::vector<float> ring((size_t)((n + MYELIN_BLOCK - 1) / MYELIN_BLOCK) * src.slots * MYELIN_CHANNELS *
                                MYELIN_BLOCK);
        const std::vector<void*> arena = {th.data(), ring.data()};
        src.thresholds = reloc(src.thresholds, arena);
        src.ring = reloc(src.ring, arena);
        src.neurons = reloc(src.neurons, arena);
        // The step as the device forms it, the batch's first step plus the step's place in it.
        const u64 base = clock - clock % 2;
        launch((n + 255) / 256, 1, 256, poisson_input, seed, (const PoissonSource*)&src, 1u, (const u64*)&base,
               (u32)(clock - base));
        const u32 slot = (u32)((clock + src.delay) % src.slots);
        for (u32 i = 0; i < n; ++i) printf("%u\n", (u32)ring[ring_index(i, 0, slot, src.slots)]);
        return 0;
    }
    if (cmd == "neuron") {
        const std::string model = argv[2];
        const int steps = atoi(argv[3]);
        NeuronPopulation pop;
        if (!read_row(&pop)) return 3;
        unsigned nreal, nint, nc;
        if (scanf("%u %u %u", &nreal, &nint, &nc) != 3) return 3;
        std::vector<float> real(nreal), c(nc);
        std::vector<u32> integer(std::max(nint, 1u));
        for (auto& v : real) scanf("%a", &v);
        for (u32 k = 0; k < nint; ++k) scanf("%u", &integer[k]);
        for (auto& v : c) scanf("%a", &v);
        std::vector<float> ring(pop.slots * MYELIN_CHANNELS * MYELIN_BLOCK);
        u32 words[1] = {0};
        float current[1];
        const std::vector<void*> arena = {c.data(), real.data(), integer.data(), ring.data(), current, words};
        pop.c = reloc(pop.c, arena);
        pop.real = reloc(pop.real, arena);
        pop.integer = reloc(pop.integer, arena);
        pop.ring = reloc(pop.ring, arena);
        pop.current = reloc(pop.current, arena);
        pop.words = reloc(pop.words, arena);
        auto kernel = model == "iaf_psc_exp"     ? iaf_psc_exp_update
                      : model == "iaf_psc_alpha" ? iaf_psc_alpha_update
                      : model == "iaf_psc_delta" ? iaf_psc_delta_update
                                                 : nullptr;
        if (!kernel) return 4;
        for (int s = 0; s < steps; ++s) {
            float ex, in;
            if (scanf("%a %a %a", &ex, &in, &current[0]) != 3) return 5;
            ring[ring_index(0, 0, s % pop.slots, pop.slots)] = ex;
            ring[ring_index(0, 1, s % pop.slots, pop.slots)] = in;
            const u64 clock = (u64)(s - s % 2);
            launch(1, 1, 32, kernel, (const NeuronPopulation*)&pop, 1u, &clock, (u32)(s % 2));
            for (auto v : real) printf("%a ", v);
            for (u32 k = 0; k < nint; ++k) printf("%u ", integer[k]);
            printf("%u\n", words[0] & 1u);
        }
        return 0;
    }
    if (cmd == "compact") {
        u32 n_pops;
        if (scanf("%u", &n_pops) != 1) return 3;
        std::vector<u32> pop_word(n_pops + 1);
        for (auto& w : pop_word)
            if (scanf("%u", &w) != 1) return 3;
        std::vector<u32> words(std::max(pop_word[n_pops], 1u));
        for (u32 k = 0; k < pop_word[n_pops]; ++k)
            if (scanf("%x", &words[k]) != 1) return 3;
        // As a later step of a batch: the list already holds `before` spikes of earlier steps.
        const u32 before = 7;
        std::vector<u32> first(n_pops + 1), list(before + 32 * words.size());
        launch_synced(1, COMPACT_THREADS, compact_spikes, (const u32*)words.data(), (const u32*)pop_word.data(),
                      n_pops, &before, first.data(), list.data());
        for (u32 p = 0; p <= n_pops; ++p) printf("%u\n", first[p] - before);
        for (u32 k = before; k < first[n_pops]; ++k) printf("%u\n", list[k]);
        return 0;
    }
    if (cmd == "deliver") {
        u32 n_pops, len;
        if (scanf("%u %u", &n_pops, &len) != 2) return 3;
        std::vector<u32> spikes(len);
        for (auto& v : spikes) scanf("%u", &v);
        size_t ring_len;
        u32 n_proj;
        if (scanf("%zu %u", &ring_len, &n_proj) != 2) return 3;
        std::vector<float> ring(ring_len);
        std::vector<DeliveryProjection> projs(n_proj);
        std::vector<std::vector<u64>> u64s;
        std::vector<std::vector<u32>> u32s;
        std::vector<std::vector<unsigned short>> u16s;
        std::vector<std::vector<float>> f32s;
        auto array = [](auto& into, const char* fmt) {
            size_t n;
            if (scanf("%zu", &n) != 1) exit(3);
            into.emplace_back(n);
            for (auto& x : into.back()) {
                if (scanf(fmt, &x) != 1) exit(3);
            }
        };
        for (auto& j : projs) {
            if (!read_row(&j)) return 3;
            array(u64s, "%llu");
            array(u32s, "%u");
            array(u64s, "%llu");
            array(u16s, "%hu");
            array(f32s, "%a");
            array(u16s, "%hu");
        }
        std::vector<void*> arena;
        for (u32 k = 0; k < n_proj; ++k) {
            arena.push_back(u64s[2 * k].data());
            arena.push_back(u32s[k].data());
            arena.push_back(u64s[2 * k + 1].data());
            arena.push_back(u16s[2 * k].data());
            arena.push_back(f32s[k].data());
            arena.push_back(u16s[2 * k + 1].data());
        }
        arena.push_back(ring.data());
        for (auto& j : projs) {
            j.row_base = reloc(j.row_base, arena);
            j.row_ptr = reloc(j.row_ptr, arena);
            j.syn_base = reloc(j.syn_base, arena);
            j.target = reloc(j.target, arena);
            j.weight = reloc(j.weight, arena);
            j.delay = reloc(j.delay, arena);
            j.ring = reloc(j.ring, arena);
        }
        u64 clock;
        if (scanf("%llu", &clock) != 1) return 3;
        const u64 base = clock - clock % 2;
        launch(2, n_proj, 64, deliver_static, (const u32*)spikes.data(), (const u32*)spikes.data() + n_pops + 1,
               (const DeliveryProjection*)projs.data(), (const u64*)&base, (u32)(clock - base));
        for (auto v : ring) printf("%a\n", v);
        return 0;
    }
    if (cmd == "plastic") {
        const int steps = atoi(argv[2]);
        PlasticProjection j;
        if (!read_row(&j)) return 3;
        // Bytes per value of the arrays the tags 1..18 name, in field order.
        const size_t size[18] = {8, 4, 8, 2, 4, 2, 4, 8, 8, 8, 8, 4, 4, 8, 8, 8, 4, 4};
        std::vector<std::vector<unsigned char>> bufs(18);
        size_t count[18];
        for (int a = 0; a < 18; ++a) {
            size_t& n = count[a];
            if (scanf("%zu", &n) != 1) return 3;
            bufs[a].resize(std::max<size_t>(n, 1) * size[a]);
            for (size_t i = 0; i < n; ++i) {
                u64 x;
                if (scanf("%llx", &x) != 1) return 3;
                memcpy(bufs[a].data() + i * size[a], &x, size[a]);
            }
        }
        std::vector<void*> arena;
        for (auto& b : bufs) arena.push_back(b.data());
        j.row_base = reloc(j.row_base, arena);
        j.row_ptr = reloc(j.row_ptr, arena);
        j.syn_base = reloc(j.syn_base, arena);
        j.target = reloc(j.target, arena);
        j.weight = reloc(j.weight, arena);
        j.delay = reloc(j.delay, arena);
        j.syn_state = reloc(j.syn_state, arena);
        j.t_last = reloc(j.t_last, arena);
        j.paired_until = reloc(j.paired_until, arena);
        j.kplus = reloc(j.kplus, arena);
        j.history = reloc(j.history, arena);
        j.hist_head = reloc(j.hist_head, arena);
        j.hist_len = reloc(j.hist_len, arena);
        j.trace = reloc(j.trace, arena);
        j.c = reloc(j.c, arena);
        j.decay = reloc(j.decay, arena);
        j.ring = reloc(j.ring, arena);
        j.status = reloc(j.status, arena);
        for (int s = 0; s < steps; ++s) {
            // The step's spikes as compact_spikes lists them: the source's, then the target's.
            std::vector<u32> first(3, 0), list;
            for (int p = 0; p < 2; ++p) {
                u32 n;
                if (scanf("%u", &n) != 1) return 5;
                for (u32 q = 0; q < n; ++q) {
                    u32 i;
                    if (scanf("%u", &i) != 1) return 5;
                    list.push_back((p == 0 ? j.source_word : j.target_word) * 32u + i);
                }
                first[p + 1] = (u32)list.size();
            }
            list.push_back(0);
            const u64 base = (u64)(s - s % 2);
            const u32 k = (u32)(s % 2);
            const PlasticProjection* projs = &j;
            launch(2, 1, 64, stdp_deliver, (const u32*)first.data(), (const u32*)list.data(), projs, (const u64*)&base, k);
            launch(2, 1, 64, stdp_after_spikes, (const u32*)first.data(), (const u32*)list.data(), projs,
                   (const u64*)&base, k);
            launch(2, 1, 64, stdp_record_post, (const u32*)first.data(), (const u32*)list.data(), projs,
                   (const u64*)&base, k);
            launch(2, 1, 64, stdp_catch_up, projs, (const u64*)&base, k);
            launch(2, 1, 64, stdp_catch_up_done, projs, (const u64*)&base, k);
            const u32 slot = (u32)((s + 1) % j.slots);
            for (u32 i = 0; i < j.n_blocks * MYELIN_BLOCK; ++i)
                for (u32 ch = 0; ch < MYELIN_CHANNELS; ++ch) {
                    float& v = j.ring[ring_index(i, ch, slot, j.slots)];
                    u32 bits;
                    memcpy(&bits, &v, 4);
                    if (bits != 0) printf("%d %u %u %x\n", s, i, ch, bits);
                    v = 0.0f;
                }
        }
        printf("end\n");
        for (int a : {5, 7, 8, 9, 10, 11, 12, 13, 14, 18}) {
            for (size_t i = 0; i < count[a - 1]; ++i) {
                u64 x = 0;
                memcpy(&x, bufs[a - 1].data() + i * size[a - 1], size[a - 1]);
                printf("%llx ", x);
            }
            printf("\n");
        }
        return 0;
    }
    return 2;
}
