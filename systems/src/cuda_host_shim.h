// Compiles Myelin's CUDA kernel sources as host C++ (g++), for tests that run them on the
// CPU against their Rust twins where no GPU is at hand: the CUDA qualifiers vanish, the
// thread indices are globals that `launch` steps through one thread at a time, and atomics
// are plain additions. Kernels that synchronise the threads of a block (compact_spikes) are
// not run this way.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

struct Dim3 {
    unsigned x, y, z;
};
static Dim3 threadIdx, blockIdx, blockDim, gridDim;

static inline float atomicAdd(float* a, float v) {
    const float old = *a;
    *a = old + v;
    return old;
}
static inline unsigned __popc(unsigned x) { return (unsigned)__builtin_popcount(x); }
static inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
using std::min;

// Runs `kernel` on `grid` blocks of `block` threads, one thread after another.
template <class K, class... A>
static void launch(unsigned grid, unsigned block, K kernel, A... args) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b)
        for (unsigned t = 0; t < block; ++t) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            kernel(args...);
        }
}
