#pragma once
// Integer dot products of ggml block weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) with
// activations quantized to int8 blocks of 32, the way llama.cpp multiplies these formats.
//
// Each token of x is cut into blocks of 32 values. Block b gets the scale
// dx = absmax / 127 and codes xq = round_half_even(x * (127 / absmax)) in [-127, 127],
// so |x - dx * xq| <= (1 + 2^-12) dx / 2 for every value (the 2^-12 covers f32
// rounding). A weight block w = dw * q + m (m = -8 dw for Q4_0, -16 dw for Q5_0, 0 for
// Q8_0) then contributes
//     dw * dx * sum(q * xq) + m * (dx * sum(xq))
// where sum(q * xq) is exact in int32. Internal to kernels/; the model reaches this
// through matvec and matmul with ActivationPrecision::kInt8.
//
// NOTE: results are not those of the exact f32 path. A row moves by up to
// sum over blocks of (1 + 2^-12) (dx / 2) sum |w|, which for activations with one large
// outlier in a block drops the small values of that block to a few codes. The kernel
// tests hold every path to that bound; model-level quality under kInt8 is unmeasured.
#include <cstdint>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/kernels/int8_int8.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

// Values per activation block; equal to the block of every format listed above.
inline constexpr int64_t kActivationBlock = 32;

// x (n_tokens, cols) after quantize_activation_blocks.
struct QuantizedActivations {
  int64_t n_tokens = 0;
  int64_t cols = 0;
  std::vector<int8_t> codes;        // (n_tokens, cols)
  std::vector<float> scales;        // (n_tokens, cols / 32): dx of each block
  std::vector<float> scaled_sums;   // (n_tokens, cols / 32): dx * sum of the block's codes
  // The same per group of 4 codes (one int32 lane of vpdpbusd), so a kernel loads them as
  // vectors: the group's sum of codes, its block's dx, and its block's scaled sum / 8.
  std::vector<int32_t> group_sums;  // (n_tokens, cols / 4)
  std::vector<float> group_scales;  // (n_tokens, cols / 4)
  std::vector<float> group_scaled_sums;  // (n_tokens, cols / 4)

  int64_t blocks_per_token() const { return cols / kActivationBlock; }
};

// Quantizes tokens [token_begin, token_end) of x (n_tokens, cols) into q, which must
// already be sized by resize_quantized_activations. cols must be a multiple of 32.
void quantize_activation_blocks(const float* x, int64_t token_begin, int64_t token_end, QuantizedActivations& q);

// Sizes q for x (n_tokens, cols), reusing its storage.
void resize_quantized_activations(int64_t n_tokens, int64_t cols, QuantizedActivations& q);

// The best integer path of this CPU for these kernels: kAvx512Vnni needs avx512vl as well
// (the kernels use 256-bit vpdpbusd), kAvx2 needs avx2 and fma.
Int8DotPath best_int8_activation_path();

// For r in [row_begin, row_end) and t in [token_begin, token_begin + n_tokens):
//   y[t * y_stride + r] = W (rows, cols)[r] . x'[t]
// where x' is x as quantized in q. W must be a format with has_int8_activation_kernel.
// Results depend on neither the row range nor the token range a call covers, so matvec
// and matmul give the same bits for a token.
void dot_rows_int8_activations(const WeightMatrix& w, int64_t row_begin, int64_t row_end,
                               const QuantizedActivations& q, int64_t token_begin, int64_t n_tokens, float* y,
                               int64_t y_stride, Int8DotPath path);

}  // namespace stepdown::kernels
