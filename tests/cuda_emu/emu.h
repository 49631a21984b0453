// Host emulation of the CUDA C subset our kernels use, to check their index logic on a machine
// with no GPU (tests/test_cuda_emulated.py). One std::thread per CUDA thread, a std::barrier per
// block for __syncthreads, blocks run one after another (so a function-static array is exactly
// one block's __shared__ memory), atomicAdd through std::atomic_ref. Semantics only: no timing,
// no warps, no memory model beyond what those give.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* emu_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

inline void __syncthreads() { emu_barrier->arrive_and_wait(); }

template <typename T>
T atomicAdd(T* address, T value) { return std::atomic_ref<T>(*address).fetch_add(value); }

using std::sqrt;

// Runs body() as every thread of every block of the grid.
inline void emu_launch(dim3 grid, dim3 block, const std::function<void()>& body) {
    gridDim = grid;
    blockDim = block;
    const unsigned n = block.x * block.y * block.z;
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                std::barrier<> bar(n);
                emu_barrier = &bar;
                std::vector<std::thread> threads;
                for (unsigned t = 0; t < n; ++t)
                    threads.emplace_back([&, t, x, y, z] {
                        threadIdx = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        blockIdx = dim3{x, y, z};
                        body();
                    });
                for (auto& th : threads) th.join();
            }
}
