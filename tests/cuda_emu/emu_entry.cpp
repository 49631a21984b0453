// C entry points (for ctypes) that run the kernels of kernels/lc.cu and kernels/adam.cu under
// emu.h. Compiled by tests/test_cuda_emulated.py with -include emu.h and -I <repo>/kernels.
#include "lc.cu"
#include "adam.cu"

#include <cstring>

extern "C" int emu_lc(const char* name, int gx, int gy, int gz, void* a, void* b, void* out,
                      const int* g) {
    const dim3 grid{(unsigned)gx, (unsigned)gy, (unsigned)gz}, block{THREADS, 1, 1};
#define EMU_LC_CASE(KERNEL, T)                                                                  \
    if (std::strcmp(name, #KERNEL) == 0) {                                                       \
        emu_launch(grid, block, [&] {                                                            \
            KERNEL((T*)a, (T*)b, (T*)out, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8],  \
                   g[9], g[10], g[11], g[12]);                                                   \
        });                                                                                      \
        return 0;                                                                                \
    }
    EMU_LC_CASE(lc_forward_f32, float)
    EMU_LC_CASE(lc_forward_f64, double)
    EMU_LC_CASE(lc_backward_input_f32, float)
    EMU_LC_CASE(lc_backward_input_f64, double)
    EMU_LC_CASE(lc_backward_weight_f32, float)
    EMU_LC_CASE(lc_backward_weight_f64, double)
    return 1;
}

extern "C" void emu_adam_f32(int blocks, int threads, float* p, const float* g, float* m, float* v,
                             long long n, const float* s) {
    emu_launch(dim3{(unsigned)blocks, 1, 1}, dim3{(unsigned)threads, 1, 1},
               [&] { adam_update_f32(p, g, m, v, n, s[0], s[1], s[2], s[3], s[4], s[5]); });
}

extern "C" void emu_adam_f64(int blocks, int threads, double* p, const double* g, double* m,
                             double* v, long long n, const double* s) {
    emu_launch(dim3{(unsigned)blocks, 1, 1}, dim3{(unsigned)threads, 1, 1},
               [&] { adam_update_f64(p, g, m, v, n, s[0], s[1], s[2], s[3], s[4], s[5]); });
}
