// Fused Adam update of one parameter tensor, in place: the CUDA kernel of the `adam` family.
// Reference (the definition): lcengine/ops/adam_ref.py. Launcher: lcengine/ops/adam_cuda.py.
// Benchmark: python benchmarks/bench_cuda.py --op adam        (tests: tests/test_ops_cuda.py)
//
//   m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²;   p ← p − step · m / (√v + ε̂)
//
// with the bias corrections folded into the scalars by the caller: step = lr·√(1 − β2ᵗ)/(1 − β1ᵗ),
// ε̂ = ε·√(1 − β2ᵗ). One pass: each element of p, g, m, v is read once and p, m, v written once
// (7 transfers per element), instead of the ~12 array passes of the NumPy expression.
//
// one_m_beta1 = 1 − β1 and one_m_beta2 = 1 − β2 are computed in double by the launcher and then
// rounded to T, as NumPy does with the reference's Python-float scalars.
// Pointer layouts: p, g, m, v — n elements each, contiguous, the same dtype (the scalars too:
// float for *_f32, double for *_f64, so float32 rounding matches the reference's float32 math).
// Threads: a grid-stride loop; thread t handles elements t, t + gridDim·blockDim, ... .
// Bounds policy: every index is checked against n (a long long: tensors may exceed 2³¹ elements).

template <typename T>
__device__ __forceinline__ void adam_update(T* __restrict__ p, const T* __restrict__ g,
                                            T* __restrict__ m, T* __restrict__ v, long long n,
                                            T step, T beta1, T one_m_beta1, T beta2, T one_m_beta2,
                                            T eps_hat) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride) {
        const T ge = g[e];
        const T me = beta1 * m[e] + one_m_beta1 * ge;
        const T ve = beta2 * v[e] + one_m_beta2 * (ge * ge);
        m[e] = me;
        v[e] = ve;
        p[e] -= step * me / (sqrt(ve) + eps_hat);
    }
}

#define ADAM_INSTANTIATE(T, SUFFIX)                                                                \
    extern "C" __global__ void adam_update_##SUFFIX(T* p, const T* g, T* m, T* v, long long n,    \
                                                    T step, T beta1, T one_m_beta1, T beta2,       \
                                                    T one_m_beta2, T eps_hat) {                    \
        adam_update<T>(p, g, m, v, n, step, beta1, one_m_beta1, beta2, one_m_beta2, eps_hat);      \
    }

ADAM_INSTANTIATE(float, f32)
ADAM_INSTANTIATE(double, f64)
