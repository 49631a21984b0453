// 2-D convolution as GEMM: the im2col / col2im kernels of the `conv` family's CUDA face. The GEMMs
// themselves run on cuBLAS (cupy.matmul) in the launcher.
// Reference (the definition): lcengine/ops/conv_ref.py. Launchers: lcengine/ops/conv_cuda.py.
// Benchmark: none on a GPU yet (none was available); the CPU face: python benchmarks/bench_conv.py
// Tests: python -m pytest tests/test_ops_conv.py (these kernels under the host CUDA emulation too)
//
// Letters: N batch, C in channels, H×W input, O out channels, P×Q output, kh×kw kernel, (sh, sw)
// stride, (top, left) padding (bottom/right padding is implied by P, Q), R = C·kh·kw, and a chunk
// of nb examples n0 .. n0 + nb − 1 of the batch.
//
//   im2col   cols[c,i,j, n,p,q] = x[n0 + n, c, p·sh + i − top, q·sw + j − left]   (0 outside x)
//   col2im   dx[n0 + n, c, h, w] = Σ_{i,j : p = (h + top − i)/sh, q = (w + left − j)/sw integral,
//                                          0 ≤ p < P, 0 ≤ q < Q}  cols[c,i,j, n,p,q]
//
// so that, with K as the (O, R) matrix and dyᵀ the (O, nb·P·Q) chunk of dy:
//   forward          yᵀ  = K @ cols
//   backward_input   dx  = col2im(Kᵀ @ dyᵀ)
//   backward_weight  dK += dyᵀ @ colsᵀ
//
// Pointer layouts (C-contiguous): x, dx (N, C, H, W); cols (C, kh, kw, nb, P, Q) = (R, nb·P·Q).
//
// Threads: grid-stride loops, one output element per step. im2col: element e of cols, q fastest
// (stores coalesced, loads strided by sw). col2im: element e of dx[n0 : n0 + nb], w fastest; each
// thread gathers its ≤ ceil(kh/sh)·ceil(kw/sw) contributions and writes once — no atomics, so the
// result is deterministic and dx needs no zeroing (every chunk writes its own examples once).
//
// Bounds policy: every index is checked (the loop bound, the image border in im2col, the window
// range in col2im); no shape needs to be divisible by anything. Index arithmetic is int; the
// launcher checks every array has < 2³¹ elements.
//
// Two instantiations per kernel, with distinct extern names: *_f32 (float) and *_f64 (double).

struct ConvGeometry {
    int nb, C, H, W, P, Q, kh, kw, sh, sw, top, left;
};

template <typename T>
__device__ __forceinline__ void conv_im2col(const T* __restrict__ x, T* __restrict__ cols, int n0,
                                            const ConvGeometry g) {
    const int total = g.C * g.kh * g.kw * g.nb * g.P * g.Q;
    // e is 64-bit: e + the grid's stride would overflow an int when total is near INT32_MAX
    for (long long e = blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int r = (int)e;
        const int q = r % g.Q;  r /= g.Q;
        const int p = r % g.P;  r /= g.P;
        const int n = r % g.nb; r /= g.nb;
        const int j = r % g.kw; r /= g.kw;
        const int i = r % g.kh;
        const int c = r / g.kh;
        const int h = p * g.sh + i - g.top;
        const int w = q * g.sw + j - g.left;
        T v = T(0);
        if (h >= 0 && h < g.H && w >= 0 && w < g.W)
            v = x[(((n0 + n) * g.C + c) * g.H + h) * g.W + w];
        cols[e] = v;
    }
}

template <typename T>
__device__ __forceinline__ void conv_col2im(const T* __restrict__ cols, T* __restrict__ dx,
                                            int n0, const ConvGeometry g) {
    const int total = g.nb * g.C * g.H * g.W;
    const int plane = g.nb * g.P * g.Q;                       // stride of one (c, i, j) row
    // e is 64-bit: e + the grid's stride would overflow an int when total is near INT32_MAX
    for (long long e = blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int r = (int)e;
        const int w = r % g.W;  r /= g.W;
        const int h = r % g.H;  r /= g.H;
        const int c = r % g.C;
        const int n = r / g.C;
        T sum = T(0);
        for (int i = (h + g.top) % g.sh; i < g.kh; i += g.sh) {  // (h + top − i) divisible by sh
            const int p = (h + g.top - i) / g.sh;
            if (p >= g.P) continue;
            if (p < 0) break;
            for (int j = (w + g.left) % g.sw; j < g.kw; j += g.sw) {
                const int q = (w + g.left - j) / g.sw;
                if (q >= g.Q) continue;
                if (q < 0) break;
                sum += cols[((c * g.kh + i) * g.kw + j) * plane + (n * g.P + p) * g.Q + q];
            }
        }
        dx[(n0 * g.C) * g.H * g.W + e] = sum;
    }
}

#define CONV_GEOMETRY_ARGS int n0, int nb, int C, int H, int W, int P, int Q, int kh, int kw, \
                           int sh, int sw, int top, int left
#define CONV_GEOMETRY ConvGeometry{nb, C, H, W, P, Q, kh, kw, sh, sw, top, left}
#define CONV_INSTANTIATE(T, SUFFIX)                                                                \
    extern "C" __global__ void conv_im2col_##SUFFIX(const T* x, T* cols, CONV_GEOMETRY_ARGS) {    \
        conv_im2col<T>(x, cols, n0, CONV_GEOMETRY);                                                \
    }                                                                                              \
    extern "C" __global__ void conv_col2im_##SUFFIX(const T* cols, T* dx, CONV_GEOMETRY_ARGS) {   \
        conv_col2im<T>(cols, dx, n0, CONV_GEOMETRY);                                               \
    }

CONV_INSTANTIATE(float, f32)
CONV_INSTANTIATE(double, f64)
