#pragma once
// Scalar references for the fast kernels: every weight row is decoded with dequantize_row
// and the products are summed in double, so the result is the exact dot product of the
// decoded weights with x up to about n * 2^-53 relative to sum |w_i x_i|. Tests hold the
// fast kernels against these; nothing in the product calls them.
#include <cstdint>
#include <span>

#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

double dot_f32_reference(const float* a, const float* b, int64_t n);

// W[row] . x (cols), and sum |W[row][i] * x[i]|, the scale of the rounding error of any
// f32 summation order.
struct RowDotReference {
  double dot = 0.0;
  double magnitude = 0.0;
};
RowDotReference dot_row_reference(const WeightMatrix& w, int64_t row, const float* x);

// y (rows) = W (rows, cols) @ x (cols), one thread.
void matvec_reference(const WeightMatrix& w, std::span<const float> x, std::span<float> y);

// Y (n_tokens, rows) = X (n_tokens, cols) @ W^T, one thread.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);

// W[row] . x' in double, where x' is x (cols) after the int8 block quantization of
// ActivationPrecision::kInt8 (x'[i] = dx * xq[i] per block of 32), and the weights are
// each block's scale * code + offset from BlockCodec, also in double.
struct Int8ActivationReference {
  double dot = 0.0;
  // Sum over elements of (|scale * code| + |offset|) * |x'[i]|: the size of the terms an
  // f32 kernel adds, which bounds its rounding error.
  double magnitude = 0.0;
  // Sum over blocks of (dx / 2) * sum |w[i]| with w from dequantize_row: a bound on
  // |W[row] . x' - W[row] . x| from rounding x to codes.
  double quantization_bound = 0.0;
};
Int8ActivationReference dot_row_int8_activation_reference(const WeightMatrix& w, int64_t row, const float* x);

}  // namespace stepdown::kernels
