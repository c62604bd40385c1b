// Thin typed wrappers over CBLAS (OpenBLAS) for the row-major products the MAF needs.
//
// nfcal does its own threading: BLAS runs single-threaded, and each product is split into
// fixed chunks of output rows that OpenMP threads take in turn. Chunk boundaries never depend
// on the thread count, so results are bit-identical whatever --threads says (OpenBLAS's own
// threading changes the blocking, and with it the rounding, from one thread count to another).
#pragma once

#include <cblas.h>
#include <omp.h>

#include <cstddef>
#include <mutex>

extern "C" void openblas_set_num_threads(int threads);

namespace nfcal::blas {

/// Output rows per chunk: large enough to keep BLAS efficient, small enough to share work.
constexpr int kChunkRows = 128;

/// Pins BLAS to one thread once per process (nfcal's own threads do the sharing).
inline void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

/// Runs body(first_row, rows) over [0, m) in chunks of kChunkRows, in parallel when the
/// product is large enough to pay for the threads and no parallel region is active.
template <typename Body>
void for_row_chunks(int m, double flops, Body body) {
  use_single_threaded_blas();
  const int chunks = (m + kChunkRows - 1) / kChunkRows;
  const bool parallel = chunks > 1 && flops > 4e6 && !omp_in_parallel();
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int chunk = 0; chunk < chunks; ++chunk) {
    const int first = chunk * kChunkRows;
    body(first, m - first < kChunkRows ? m - first : kChunkRows);
  }
}

/// C (m, n) = alpha * A (m, k) * B (n, k)^T + beta * C; all row-major with leading dims.
template <typename T>
void gemm_nt(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
             int ldc);
/// C (m, n) = alpha * A (m, k) * B (k, n) + beta * C.
template <typename T>
void gemm_nn(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
             int ldc);
/// C (m, n) = alpha * A (k, m)^T * B (k, n) + beta * C.
template <typename T>
void gemm_tn(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
             int ldc);

inline void raw_gemm_nt(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                        int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}
inline void raw_gemm_nt(int m, int n, int k, double alpha, const double* a, int lda,
                        const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

inline void raw_gemm_nn(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                        int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}
inline void raw_gemm_nn(int m, int n, int k, double alpha, const double* a, int lda,
                        const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

inline void raw_gemm_tn(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                        int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}
inline void raw_gemm_tn(int m, int n, int k, double alpha, const double* a, int lda,
                        const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

template <typename T>
void gemm_nt(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
             int ldc) {
  for_row_chunks(m, 2.0 * m * n * k, [&](int first, int rows) {
    raw_gemm_nt(rows, n, k, alpha, a + static_cast<std::size_t>(first) * lda, lda, b, ldb, beta,
                c + static_cast<std::size_t>(first) * ldc, ldc);
  });
}

template <typename T>
void gemm_nn(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
             int ldc) {
  for_row_chunks(m, 2.0 * m * n * k, [&](int first, int rows) {
    raw_gemm_nn(rows, n, k, alpha, a + static_cast<std::size_t>(first) * lda, lda, b, ldb, beta,
                c + static_cast<std::size_t>(first) * ldc, ldc);
  });
}

template <typename T>
void gemm_tn(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
             int ldc) {
  // Rows of C are columns of A: a chunk of them starts `first` columns into A.
  for_row_chunks(m, 2.0 * m * n * k, [&](int first, int rows) {
    raw_gemm_tn(rows, n, k, alpha, a + first, lda, b, ldb, beta,
                c + static_cast<std::size_t>(first) * ldc, ldc);
  });
}

}  // namespace nfcal::blas
