#pragma once
// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers", 2022): quantizes the columns of W one at a time and spreads
// each column's rounding error over the columns not yet quantized, weighted by the
// inverse Hessian of the layer's squared output error, H = 2 X^T X / n over the
// calibration inputs X (n, cols).
//
// Steps, for W (rows, cols) and H (cols, cols):
//   1. Dead inputs (H_ii = 0, a channel that is always zero) get H_ii = 1 and a zero
//      weight column, so H stays invertible and the column costs nothing.
//   2. Act-order (optional): columns are visited in decreasing H_ii. Group grids are
//      then chosen from the weights before any update ("static groups"), so each group
//      stays contiguous in storage; without act-order a group's grid is chosen from the
//      updated weights when its first column is reached.
//   3. Damping: H += damp * mean(diag H) * I. When the Cholesky factorization fails,
//      damp is multiplied by 10 (with a warning) up to kMaxDamp.
//   4. U = upper Cholesky factor of H^-1 (LAPACKE dpotrf, dpotri, dpotrf).
//   5. Columns in blocks of block_size: each column is rounded on its group's grid, its
//      error e = (w - q) / U_ii updates the rest of the block at once, and the block's
//      errors update the columns after it in one matrix product (lazy batch update).
//
// Everything runs in float64 except the grid arithmetic, which is the format's own f32.
// The bytes are packed from the codes and grids, then decoded with
// kernels::dequantize_row and checked to equal the dequantized weights bit for bit.
#include <cstdint>
#include <span>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/core/thread_pool.h"

namespace stepdown::quant {

// The largest damp tried before giving up on a Hessian.
inline constexpr double kMaxDamp = 10.0;

struct GptqOptions {
  double damp = 0.01;       // fraction of mean(diag H) added to the diagonal
  int64_t block_size = 128; // columns per lazy batch update
  bool act_order = false;
  // Choose each group's grid with GptqGrid::choose_clipped, weighted by H_ii, instead of
  // RTN's rule.
  bool clip_search = false;
  // Used by the "gptq" method, not by gptq_quantize: calibrate a block's linears in
  // forward order, each on inputs computed with the linears before it quantized.
  bool true_sequential = true;
};

struct GptqResult {
  std::vector<float> dequantized;  // (rows, cols): what `bytes` decode to
  std::vector<std::byte> bytes;    // rows * dtype_bytes(dtype, cols)
  double damp = 0.0;               // the damp the Cholesky factorization accepted
  int64_t dead_columns = 0;
  // sum over rows of (w - q)^T H (w - q) / 2 with H undamped: the squared output error
  // summed over calibration tokens divided by n, for comparing against RTN.
  double output_error = 0.0;
};

// True when GPTQ can write `dtype` (see gptq_grid.h for the list).
bool gptq_supports(DType dtype);

// Quantizes W (rows, cols) f32 to `dtype` against H (cols, cols), taken by value because
// it is damped and factorized in place. Throws InvalidArgument when the sizes disagree,
// cols is not a whole number of groups, W or H is not finite, or damp or block_size is not
// positive; Unsupported for a format GPTQ cannot write; Error when the Cholesky
// factorization fails even at kMaxDamp.
GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::vector<double> h, DType dtype,
                         const GptqOptions& options, ThreadPool& pool);

}  // namespace stepdown::quant
