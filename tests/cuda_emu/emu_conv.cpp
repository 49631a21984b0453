// C entry points (for ctypes) that run the kernels of kernels/conv.cu under emu.h. Compiled by
// tests/test_ops_conv.py with -include emu.h and -I <repo>/kernels.
#include "conv.cu"

#include <cstring>

extern "C" int emu_conv(const char* name, int blocks, int threads, void* a, void* out,
                        const int* g) {
    const dim3 grid{(unsigned)blocks, 1, 1}, block{(unsigned)threads, 1, 1};
#define EMU_CONV_CASE(KERNEL, T)                                                                 \
    if (std::strcmp(name, #KERNEL) == 0) {                                                       \
        emu_launch(grid, block, [&] {                                                            \
            KERNEL((const T*)a, (T*)out, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8],   \
                   g[9], g[10], g[11], g[12]);                                                   \
        });                                                                                      \
        return 0;                                                                                \
    }
    EMU_CONV_CASE(conv_im2col_f32, float)
    EMU_CONV_CASE(conv_im2col_f64, double)
    EMU_CONV_CASE(conv_col2im_f32, float)
    EMU_CONV_CASE(conv_col2im_f64, double)
    return 1;
}
