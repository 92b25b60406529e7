#pragma once
// INT8_OUTLIER: the LLM.int8() split (Dettmers et al. 2022, arXiv:2208.07339) as a per-row
// weight format. A few input columns whose activations are outliers stay in f32; the
// rest are INT8 codes multiplied with per-token int8 activations, as INT8_W8A8.
//
//   row: f32 scale; f32 value[8]; u16 column[8]; int8 q[cols]     (52-byte header)
//   w[j] = value[k] where column[k] == j, else scale * q[j]
//
// Unused slots have column 0xffff and value 0. q is 0 at outlier columns and in
// [-127, 127] elsewhere. Every row of a matrix lists the same columns, in the same
// order, because the activations are split by column once per token. The header costs
// 48 bytes per row more than INT8_W8A8: 8% of a 576-wide row, 3% of a 1536-wide one.
//
// Product, per token t and row r, with the outlier columns O:
//   qx, sx = per-token int8 quantization of x[t] with the columns in O set to 0
//   y[t][r] = float(sum_j q[r][j] * qx[j]) * (scale[r] * sx) + sum_{k in O} value[r][k] * x[t][column[k]]
// The int32 sum is exact for cols < 2^31 / 127^2 (checked per call); the outlier sum is
// in f32 in slot order.
#include <cstddef>
#include <cstdint>

#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

inline constexpr int kMaxOutlierColumns = 8;
inline constexpr uint16_t kNoOutlierColumn = 0xffff;

// The header of one INT8_OUTLIER row, copied out of the row bytes.
struct OutlierRowHeader {
  float scale = 0.0f;
  float values[kMaxOutlierColumns] = {};
  uint16_t columns[kMaxOutlierColumns] = {};
};

OutlierRowHeader read_outlier_header(const std::byte* row);
void write_outlier_header(const OutlierRowHeader& header, std::byte* row);

// dst (n) = the decoded weights of one row.
void dequantize_row_int8_outlier(const std::byte* src, float* dst, int64_t n);

// Y (n_tokens, rows) = X (n_tokens, cols) @ W^T for W in INT8_OUTLIER, threads over rows,
// on the best int8 dot path of this CPU. matvec and matmul call this for INT8_OUTLIER.
// Throws InvalidArgument when rows list different outlier columns or a column is out of
// range.
void matmul_int8_outlier(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// The same product with plain scalar loops, one thread: the reference the fused kernel
// must equal bit for bit.
void matmul_int8_outlier_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);

}  // namespace stepdown::kernels
