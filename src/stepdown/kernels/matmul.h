#pragma once
// Matrix-vector and matrix-matrix products over weights in any stored format. The model
// calls these with a format descriptor and a pointer; it never sees an intrinsic.
#include <cstddef>
#include <cstdint>
#include <span>

#include "stepdown/core/dtype.h"
#include "stepdown/core/thread_pool.h"

namespace stepdown::kernels {

// A weight matrix W (rows, cols) stored row by row in `dtype`; row r starts at
// data + r * row_stride bytes.
struct WeightMatrix {
  DType dtype = DType::F32;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_stride = 0;
};

// Throws InvalidArgument naming the format and both numbers unless n is a whole number of
// `dtype` blocks.
void check_row_length(DType dtype, int64_t n);

// dst (n) = src row of n values in `dtype`, decoded bit for bit as ggml's dequantize_row_*.
// n must be a whole number of blocks (InvalidArgument otherwise).
void dequantize_row(DType dtype, const std::byte* src, float* dst, int64_t n);

// Sum of a[i] * b[i] over n floats.
float dot_f32(const float* a, const float* b, int64_t n);

// Sum of a[i] over n floats, streaming a at full vector width (the bandwidth probe's read).
float sum_f32(const float* a, int64_t n);

// y (rows) = W (rows, cols) @ x (cols), threads over rows. Each row is decoded block by
// block in registers (never to an f32 row), to the same values dequantize_row gives, so
// results differ from an f32 reference only by summation order. Throws InvalidArgument on
// mismatched sizes or a row length that is not a whole number of blocks.
void matvec(const WeightMatrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool);

// Y (n_tokens, rows) = X (n_tokens, cols) @ W^T, threads over rows. For prefill: each
// decoded weight vector is multiplied into a tile of up to 8 tokens, and row blocks small
// enough for L2 are revisited per tile, so weights come from memory about once per call.
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

}  // namespace stepdown::kernels
