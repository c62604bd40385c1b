// NFCAL_HD marks functions shared by the CPU backend and the CUDA kernels. Under nvcc they are
// compiled for both sides; under a plain C++ compiler the macro is empty, so the CPU tests
// exercise exactly the arithmetic the kernels run.
#pragma once

#if defined(__CUDACC__)
#define NFCAL_HD __host__ __device__ __forceinline__
#else
#define NFCAL_HD inline
#endif
