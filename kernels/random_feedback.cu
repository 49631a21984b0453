/* DFA's seeded random feedback, B generated on the fly:   out = e Bᵀ
 *
 *   out[n, m] = Σ_k B[m, k] · e[n, k],   B[m, k] = scale · (2 · u(seed ⊕ (m·K + k)) − 1)
 *   u(z) = top 24 bits of splitmix64(z) / 2²⁴       (the same hash as lcengine/ops/feedback_ref.py)
 *
 * Layouts (row-major, contiguous): e (N, K); out (N, M).  M = units of the hidden layer,
 * K = classes, N = batch.
 * Thread mapping: one thread per unit m (blockDim.x = 128 along m, coalesced stores of out[n, m]);
 * blockIdx.y walks tiles of N_TILE examples, kept as N_TILE accumulators in registers; e is staged
 * through shared memory in (N_TILE × K_TILE) tiles. Each B[m, k] is hashed once per n-tile.
 * Bounds: m ≥ M threads load shared tiles but store nothing; partial n and k tiles are guarded.
 * Benchmark: python benchmarks/bench_cuda.py (DFA feedback rows).
 */
#define N_TILE 16
#define K_TILE 64

// 64-bit integers as unsigned long long: NVRTC (what CuPy compiles with) has no <stdint.h>
typedef unsigned long long u64;

__device__ __forceinline__ double uniform_pm1(u64 seed, u64 index) {
    u64 z = (index ^ seed) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    return 2.0 * ((double)(z >> 40) * (1.0 / 16777216.0)) - 1.0;
}

template <typename T>
__device__ void random_feedback(const T* __restrict__ e, T* __restrict__ out,
                                int N, int K, int M, unsigned long long seed, double scale) {
    __shared__ T e_tile[N_TILE][K_TILE];
    const int m = blockIdx.x * blockDim.x + threadIdx.x;
    const int n0 = blockIdx.y * N_TILE;
    T acc[N_TILE];
    for (int i = 0; i < N_TILE; ++i) acc[i] = T(0);

    for (int k0 = 0; k0 < K; k0 += K_TILE) {
        for (int idx = threadIdx.x; idx < N_TILE * K_TILE; idx += blockDim.x) {
            const int i = idx / K_TILE, kk = idx % K_TILE;
            const int n = n0 + i, k = k0 + kk;
            e_tile[i][kk] = (n < N && k < K) ? e[(size_t)n * K + k] : T(0);
        }
        __syncthreads();
        if (m < M) {
            const int k_end = min(K_TILE, K - k0);
            for (int kk = 0; kk < k_end; ++kk) {
                const T b = (T)(scale * uniform_pm1(seed, (u64)m * (u64)K + (u64)(k0 + kk)));
                for (int i = 0; i < N_TILE; ++i) acc[i] += b * e_tile[i][kk];
            }
        }
        __syncthreads();
    }
    if (m < M)
        for (int i = 0; i < N_TILE && n0 + i < N; ++i) out[(size_t)(n0 + i) * M + m] = acc[i];
}

extern "C" __global__ void random_feedback_f32(const float* e, float* out, int N, int K, int M,
                                               unsigned long long seed, double scale) {
    random_feedback<float>(e, out, N, K, M, seed, scale);
}

extern "C" __global__ void random_feedback_f64(const double* e, double* out, int N, int K, int M,
                                               unsigned long long seed, double scale) {
    random_feedback<double>(e, out, N, K, M, seed, scale);
}
