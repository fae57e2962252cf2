// Compiles Myelin's CUDA kernel sources as host C++ (g++), for tests that run them on the
// CPU against their Rust twins where no GPU is at hand: the CUDA qualifiers vanish, the
// thread indices are thread-local globals that `launch` steps through one thread at a time,
// and atomics are plain additions. Kernels that synchronise the threads of a block
// (compact_spikes) run with `launch_synced`: a thread of the host per thread of the block,
// meeting at a barrier in __syncthreads.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <barrier>
#include <string>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

struct Dim3 {
    unsigned x, y, z;
};
static thread_local Dim3 threadIdx, blockIdx;
static Dim3 blockDim, gridDim;
static std::barrier<>* block_barrier = nullptr;
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }

static inline float atomicAdd(float* a, float v) {
    const float old = *a;
    *a = old + v;
    return old;
}
static inline unsigned atomicOr(unsigned* a, unsigned v) {
    const unsigned old = *a;
    *a = old | v;
    return old;
}
static inline unsigned __popc(unsigned x) { return (unsigned)__builtin_popcount(x); }
static inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
using std::min;

// Runs `kernel` on a grid of gx * gy blocks of `block` threads, one thread after another.
template <class K, class... A>
static void launch(unsigned gx, unsigned gy, unsigned block, K kernel, A... args) {
    gridDim = {gx, gy, 1};
    blockDim = {block, 1, 1};
    for (unsigned y = 0; y < gy; ++y)
        for (unsigned b = 0; b < gx; ++b)
            for (unsigned t = 0; t < block; ++t) {
                blockIdx = {b, y, 0};
                threadIdx = {t, 0, 0};
                kernel(args...);
            }
}

// Runs `kernel` on `grid` blocks of `block` threads, the threads of a block at once.
template <class K, class... A>
static void launch_synced(unsigned grid, unsigned block, K kernel, A... args) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        std::barrier<> bar((std::ptrdiff_t)block);
        block_barrier = &bar;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; ++t)
            threads.emplace_back([=] {
                blockIdx = {b, 0, 0};
                threadIdx = {t, 0, 0};
                kernel(args...);
            });
        for (auto& th : threads) th.join();
        block_barrier = nullptr;
    }
}
