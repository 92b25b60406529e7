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

// y[i] += alpha * x[i] over n floats (attention's weighted sum of values).
void axpy_f32(float alpha, const float* x, float* y, int64_t n);

// Sum of a[i] over n floats, streaming a at full vector width (the bandwidth probe's read).
float sum_f32(const float* a, int64_t n);

// The treatment of the f32 activations x in matvec and matmul.
enum class ActivationPrecision {
  // Exact: weights are decoded to the values dequantize_row gives and multiplied into f32
  // x, so results differ from an f32 reference only by summation order.
  kF32,
  // For Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 weights, x is quantized once per call to int8
  // blocks of 32 (scale absmax / 127) and multiplied with integer dot products, as
  // llama.cpp does. Each x value moves by at most half its block's scale, so a row's
  // result moves by at most sum over blocks of (scale / 2) * sum |w|. Other formats ignore
  // this and take the exact path.
  kInt8,
};

// True for the formats that ActivationPrecision::kInt8 sends to integer kernels.
bool has_int8_activation_kernel(DType dtype);

// y (rows) = W (rows, cols) @ x (cols), threads over rows. With kF32, each row is decoded
// block by block in registers (never to an f32 row), to the same values dequantize_row
// gives. Throws InvalidArgument on mismatched sizes or a row length that is not a whole
// number of blocks.
void matvec(const WeightMatrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool,
            ActivationPrecision precision = ActivationPrecision::kF32);

// Y (n_tokens, rows) = X (n_tokens, cols) @ W^T, threads over rows. For prefill: each
// decoded weight vector is multiplied into a tile of tokens, and row blocks small enough
// for L2 are revisited per tile, so weights come from memory about once per call. For one
// token and the same precision, the result equals matvec's bit for bit.
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            ActivationPrecision precision = ActivationPrecision::kF32);

// One product of a group: Y (n_tokens, w->rows) = X @ W^T is written to y.
struct MatmulProduct {
  const WeightMatrix* w = nullptr;
  float* y = nullptr;
};

// Every product of the group with the same X (n_tokens, cols), for example the q, k and v
// projections, in one parallel loop over the rows of all matrices: one wait for the
// threads instead of one per matrix, and x is quantized once for kInt8. Each y equals what
// matmul gives for its matrix, bit for bit. Throws InvalidArgument when the matrices differ
// in cols, or as matmul does.
void matmul_group(std::span<const MatmulProduct> products, const float* x, int64_t n_tokens, ThreadPool& pool,
                  ActivationPrecision precision = ActivationPrecision::kF32);

}  // namespace stepdown::kernels
