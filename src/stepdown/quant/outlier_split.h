#pragma once
// The "outlier" method: an LLM.int8()-style split into the INT8_OUTLIER format
// (kernels/int8_outlier.h). Input channels whose calibrated max|x| exceeds a threshold
// keep their weights in f32; the other columns are INT8 with per-token int8 activations.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/method.h"

namespace stepdown::quant {

// dst (dtype_bytes(INT8_OUTLIER, n)) = src (n) with the weights at `columns` (at most
// kernels::kMaxOutlierColumns, each < n and < 0xffff) kept in f32 and the rest as INT8:
// scale = absmax over the other columns / 127, codes round(x / scale) ties away from zero.
// Throws InvalidArgument for too many or out-of-range columns.
void quantize_row_int8_outlier(const float* src, std::span<const uint16_t> columns, std::byte* dst, int64_t n);

// W (rows, cols) -> rows * dtype_bytes(INT8_OUTLIER, cols) bytes, every row with `columns`.
std::vector<std::byte> quantize_matrix_int8_outlier(const FloatMatrix& w, std::span<const uint16_t> columns);

// The columns whose max_abs_input exceeds `threshold`, largest first, at most
// kernels::kMaxOutlierColumns; `dropped` receives how many more exceeded it.
std::vector<uint16_t> select_outlier_columns(std::span<const float> max_abs_input, float threshold, int64_t& dropped);

// Parameters: threshold (6.0, on calibrated max|x| per input channel). Needs every block
// matrix planned as INT8_OUTLIER: `stepdown quantize --scheme int8-outlier`, or
// quantize_model_in_memory with that block dtype.
QuantMethod outlier_method();

}  // namespace stepdown::quant
