// Locally-connected 2-D layer (unshared-weight convolution): the CUDA kernels of the `lc` family.
// Reference (the definition): lcengine/ops/lc_ref.py. Launchers: lcengine/ops/lc_cuda.py.
// Benchmark: python benchmarks/bench_cuda.py            (tests: python -m pytest tests/test_ops_cuda.py)
//
// Letters: N batch, C in channels, H×W input, O out channels, P×Q output locations, kh×kw kernel,
// (sh, sw) stride, pads (top, left) (bottom/right padding is implied by P, Q), K = C·kh·kw,
// loc = p·Q + q, and k = (c·kh + i)·kw + j indexes one patch element.
//
//   forward          y[n,o,p,q]      = Σ_k W[p,q,o,k] · X[n,loc,k]
//   backward_input   dx[n,c,h,w]     = Σ_{p,q,o : window (p,q) covers (h,w)} W[p,q,o,c,i,j] · dy[n,o,p,q]
//                                      with i = h + top − p·sh, j = w + left − q·sw
//   backward_weight  dW[p,q,o,k]     = Σ_n dy[n,o,p,q] · X[n,loc,k]
//
// where X[n,loc,k] = x[n, c, p·sh + i − top, q·sw + j − left] (0 outside the image) is the patch.
// Every direction is one small GEMM per output location, computed without materialising X:
//
//   forward          (N × K)·(K × O)   A = X[.,loc,.]        B = W[loc]ᵀ         → y[., ., loc]
//   backward_input   (N × O)·(O × K)   A = dy[., ., loc]     B = W[loc]          → scatter into dx
//   backward_weight  (O × N)·(N × K)   A = dy[., ., loc]ᵀ    B = X[.,loc,.]      → dW[loc]
//
// Pointer layouts (all C-contiguous, the public layouts of lc_ref.py):
//   x, dx  (N, C, H, W)      W, dW  (P, Q, O, C, kh, kw) = (P·Q, O, K)      y, dy  (N, O, P, Q)
//
// Threads: grid (ceil(cols / 64), ceil(rows / 64), P·Q); block 256 threads = 16 × 16. Block z owns
// one location; it computes a 64 × 64 tile of that location's GEMM output, thread (ty, tx) the 4 × 4
// elements (ty + 16a, tx + 16b). The reduction dimension is walked in slices of 16: each slice of A
// and B is loaded once into shared memory by all 256 threads (patch elements gathered from x on the
// fly, zero in the padding), then every thread accumulates its 4 × 4 outputs from shared memory.
// Column index tx is the fastest-varying one, so the dW stores (contiguous in k) are coalesced.
//
// backward_input scatters with atomicAdd into a zeroed dx (the launcher zeroes it): it keeps the
// per-location GEMM (and its reuse of each W element across the batch), and contention is low —
// a pixel receives at most ceil(kh/sh)·ceil(kw/sw) adds, one per covering location. The price is a
// summation order that may differ between runs (float rounding only). A gather (one thread per
// input pixel, looping over covering locations) would be deterministic but loses the W reuse.
//
// Bounds policy: every load and store is bounds-checked (rows, cols, the reduction slice, the
// image border); no shape needs to be divisible by anything. Index arithmetic is int (the
// launcher checks every array has < 2³¹ elements).
//
// Two instantiations per direction, with distinct extern names: *_f32 (float) and *_f64 (double).

#define TILE 64
#define SLICE 16
#define THREADS 256

struct Geometry {
    int N, C, H, W, O, P, Q, kh, kw, sh, sw, top, left;
};

// x[n, c, p·sh + i − top, q·sw + j − left] for patch element k of location (p, q); 0 outside.
template <typename T>
__device__ __forceinline__ T patch_elem(const T* __restrict__ x, const Geometry& g,
                                        int n, int p, int q, int k) {
    const int c = k / (g.kh * g.kw);
    const int r = k - c * g.kh * g.kw;
    const int i = r / g.kw;
    const int j = r - i * g.kw;
    const int h = p * g.sh + i - g.top;
    const int w = q * g.sw + j - g.left;
    if (h < 0 || h >= g.H || w < 0 || w >= g.W) return T(0);
    return x[((n * g.C + c) * g.H + h) * g.W + w];
}

// One 64 × 64 tile of out[rows × cols] = Σ_r A(row, r) · B(r, col) over r < depth, left in acc.
// load_a(row, r) and load_b(r, col) are only called in bounds. A_R_FAST / B_R_FAST: whether the
// reduction index is the contiguous one in memory (decides which index consecutive threads take).
template <typename T, bool A_R_FAST, bool B_R_FAST, typename LoadA, typename LoadB>
__device__ __forceinline__ void tile_gemm(int rows, int cols, int depth, int row0, int col0,
                                          LoadA load_a, LoadB load_b, T acc[4][4]) {
    __shared__ T As[SLICE][TILE + 1];
    __shared__ T Bs[SLICE][TILE + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) acc[a][b] = T(0);

    for (int r0 = 0; r0 < depth; r0 += SLICE) {
        for (int e = threadIdx.x; e < SLICE * TILE; e += THREADS) {
            const int s = A_R_FAST ? e % SLICE : e / TILE;    // reduction index within the slice
            const int m = A_R_FAST ? e / SLICE : e % TILE;    // row within the tile
            const int row = row0 + m, r = r0 + s;
            As[s][m] = (row < rows && r < depth) ? load_a(row, r) : T(0);
        }
        for (int e = threadIdx.x; e < SLICE * TILE; e += THREADS) {
            const int s = B_R_FAST ? e % SLICE : e / TILE;
            const int m = B_R_FAST ? e / SLICE : e % TILE;    // column within the tile
            const int col = col0 + m, r = r0 + s;
            Bs[s][m] = (col < cols && r < depth) ? load_b(r, col) : T(0);
        }
        __syncthreads();
        for (int s = 0; s < SLICE; ++s) {
            T av[4], bv[4];
            for (int a = 0; a < 4; ++a) av[a] = As[s][ty + 16 * a];
            for (int b = 0; b < 4; ++b) bv[b] = Bs[s][tx + 16 * b];
            for (int a = 0; a < 4; ++a)
                for (int b = 0; b < 4; ++b) acc[a][b] += av[a] * bv[b];
        }
        __syncthreads();
    }
}

// ---- forward: rows = n (N), cols = o (O), depth = k (K) ----------------------------------------
template <typename T>
__device__ __forceinline__ void lc_forward(const T* __restrict__ x, const T* __restrict__ Wt,
                                           T* __restrict__ y, const Geometry g) {
    const int loc = blockIdx.z, p = loc / g.Q, q = loc - p * g.Q;
    const int K = g.C * g.kh * g.kw, PQ = g.P * g.Q;
    const T* Wl = Wt + (long long)loc * g.O * K;                       // (O, K) of this location
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    T acc[4][4];
    tile_gemm<T, true, true>(
        g.N, g.O, K, row0, col0,
        [&](int n, int k) { return patch_elem(x, g, n, p, q, k); },
        [&](int k, int o) { return Wl[o * K + k]; }, acc);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
            const int n = row0 + ty + 16 * a, o = col0 + tx + 16 * b;
            if (n < g.N && o < g.O) y[(n * g.O + o) * PQ + loc] = acc[a][b];
        }
}

// ---- backward_input: rows = n (N), cols = k (K), depth = o (O); scatter-add into dx ------------
template <typename T>
__device__ __forceinline__ void lc_backward_input(const T* __restrict__ dy, const T* __restrict__ Wt,
                                                  T* __restrict__ dx, const Geometry g) {
    const int loc = blockIdx.z, p = loc / g.Q, q = loc - p * g.Q;
    const int K = g.C * g.kh * g.kw, PQ = g.P * g.Q;
    const T* Wl = Wt + (long long)loc * g.O * K;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    T acc[4][4];
    tile_gemm<T, false, false>(
        g.N, K, g.O, row0, col0,
        [&](int n, int o) { return dy[(n * g.O + o) * PQ + loc]; },
        [&](int o, int k) { return Wl[o * K + k]; }, acc);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int b = 0; b < 4; ++b) {
        const int k = col0 + tx + 16 * b;
        if (k >= K) continue;
        const int c = k / (g.kh * g.kw);
        const int r = k - c * g.kh * g.kw;
        const int i = r / g.kw, j = r - i * g.kw;
        const int h = p * g.sh + i - g.top, w = q * g.sw + j - g.left;
        if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;         // lands in the padding
        for (int a = 0; a < 4; ++a) {
            const int n = row0 + ty + 16 * a;
            if (n < g.N) atomicAdd(&dx[((n * g.C + c) * g.H + h) * g.W + w], acc[a][b]);
        }
    }
}

// ---- backward_weight: rows = o (O), cols = k (K), depth = n (N) --------------------------------
template <typename T>
__device__ __forceinline__ void lc_backward_weight(const T* __restrict__ x, const T* __restrict__ dy,
                                                   T* __restrict__ dW, const Geometry g) {
    const int loc = blockIdx.z, p = loc / g.Q, q = loc - p * g.Q;
    const int K = g.C * g.kh * g.kw, PQ = g.P * g.Q;
    T* dWl = dW + (long long)loc * g.O * K;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    T acc[4][4];
    tile_gemm<T, false, false>(
        g.O, K, g.N, row0, col0,
        [&](int o, int n) { return dy[(n * g.O + o) * PQ + loc]; },
        [&](int n, int k) { return patch_elem(x, g, n, p, q, k); }, acc);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
            const int o = row0 + ty + 16 * a, k = col0 + tx + 16 * b;
            if (o < g.O && k < K) dWl[o * K + k] = acc[a][b];
        }
}

#define LC_GEOMETRY_ARGS int N, int C, int H, int W, int O, int P, int Q, int kh, int kw, \
                         int sh, int sw, int top, int left
#define LC_GEOMETRY Geometry{N, C, H, W, O, P, Q, kh, kw, sh, sw, top, left}

#define LC_INSTANTIATE(T, SUFFIX)                                                                  \
    extern "C" __global__ void __launch_bounds__(THREADS)                                          \
    lc_forward_##SUFFIX(const T* x, const T* Wt, T* y, LC_GEOMETRY_ARGS) {                         \
        lc_forward<T>(x, Wt, y, LC_GEOMETRY);                                                      \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(THREADS)                                          \
    lc_backward_input_##SUFFIX(const T* dy, const T* Wt, T* dx, LC_GEOMETRY_ARGS) {                \
        lc_backward_input<T>(dy, Wt, dx, LC_GEOMETRY);                                             \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(THREADS)                                          \
    lc_backward_weight_##SUFFIX(const T* x, const T* dy, T* dW, LC_GEOMETRY_ARGS) {                \
        lc_backward_weight<T>(x, dy, dW, LC_GEOMETRY);                                             \
    }

LC_INSTANTIATE(float, f32)
LC_INSTANTIATE(double, f64)
