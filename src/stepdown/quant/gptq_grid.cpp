#include "stepdown/quant/gptq_grid.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/stepdown_formats.h"
#include "stepdown/quant/rtn_int.h"

namespace stepdown::quant {
namespace {

// f32 value of the f16 a scale is stored as; a value below FLT_MIN (zero or subnormal)
// is stored as 0, as rtn_int.cpp does, so the group decodes to exact zeros (or its min).
float stored_f16(float value) { return f16_to_f32(f32_to_f16(std::fabs(value) >= FLT_MIN ? value : 0.0f)); }

void put_f16(std::byte* p, float value) {
  const uint16_t bits = f32_to_f16(value);
  std::memcpy(p, &bits, sizeof bits);
}

// Packs G codes already offset to [0, 15] (or 31): element j in the low nibble of byte j
// and element j + G/2 in its high nibble; bit 4 of element i goes to bit i of *qh.
void pack_nibbles(const int8_t* q, int64_t group, int offset, std::byte* qs, std::byte* qh) {
  const int64_t half = group / 2;
  uint32_t high = 0;
  for (int64_t j = 0; j < half; ++j) {
    const int low = q[j] + offset;
    const int up = q[j + half] + offset;
    qs[j] = static_cast<std::byte>((low & 0x0f) | ((up & 0x0f) << 4));
  }
  if (qh == nullptr) return;
  for (int64_t i = 0; i < group; ++i) high |= static_cast<uint32_t>(((q[i] + offset) >> 4) & 1) << i;
  std::memcpy(qh, &high, sizeof high);
}

}  // namespace

std::optional<GptqGrid> GptqGrid::for_dtype(DType dtype) {
  switch (dtype) {
    case DType::Q8_0: return GptqGrid(dtype, 32, -127, 127, false, false);
    case DType::Q4_0: return GptqGrid(dtype, 32, -8, 7, false, true);
    case DType::Q5_0: return GptqGrid(dtype, 32, -16, 15, false, true);
    case DType::Q4_1: return GptqGrid(dtype, 32, 0, 15, true, false);
    case DType::Q5_1: return GptqGrid(dtype, 32, 0, 31, true, false);
    case DType::INT8:
    case DType::INT8_W8A8: return GptqGrid(dtype, 0, -127, 127, false, false);
    default: break;
  }
  // stepdown's group formats go through rtn_int.h's group functions (see choose below),
  // so the code range here is informational.
  const kernels::GroupLayout layout = kernels::group_layout(dtype);
  if (layout.group == 0) return std::nullopt;
  const int levels = 1 << layout.bits;
  if (layout.has_min) return GptqGrid(dtype, layout.group, 0, levels - 1, true, false);
  return GptqGrid(dtype, layout.group, -(levels / 2 - 1), levels / 2 - 1, false, false);
}

GroupGrid GptqGrid::choose(const float* x, int64_t n) const {
  if (is_stepdown_format(dtype_)) {
    const GroupParams params = choose_group_params(dtype_, x, n);
    return {params.scale, params.min};
  }
  if (affine_) {
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    if (std::max(std::fabs(lo), std::fabs(hi)) < FLT_MIN) lo = hi = 0.0f;
    return {stored_f16((hi - lo) / static_cast<float>(max_code_)), f16_to_f32(f32_to_f16(lo))};
  }
  if (signed_max_) {
    // The value of largest magnitude maps to the most negative code, so the grid reaches
    // one step further on that value's side.
    float best = x[0];
    for (int64_t i = 1; i < n; ++i) {
      if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
    }
    return {stored_f16(best / static_cast<float>(min_code_)), 0.0f};
  }
  float absmax = 0.0f;
  for (int64_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(x[i]));
  if (group_ == 0) return {absmax >= FLT_MIN ? absmax / static_cast<float>(max_code_) : 0.0f, 0.0f};
  return {stored_f16(absmax / static_cast<float>(max_code_)), 0.0f};
}

GroupGrid GptqGrid::choose_clipped(const float* x, const double* importance, int64_t n) const {
  constexpr int kSteps = 16;        // p = 1 - 0.02 * step
  constexpr float kStepSize = 0.02f;
  std::vector<float> shrunk(static_cast<size_t>(n));
  GroupGrid best = choose(x, n);
  double best_error = -1.0;
  for (int step = 0; step < kSteps; ++step) {
    const float p = 1.0f - kStepSize * static_cast<float>(step);
    for (int64_t i = 0; i < n; ++i) shrunk[static_cast<size_t>(i)] = p * x[i];
    const GroupGrid candidate = step == 0 ? best : choose(shrunk.data(), n);
    double error = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double e = static_cast<double>(x[i]) - value(code(x[i], candidate), candidate);
      error += importance[i] * e * e;
    }
    if (best_error < 0.0 || error < best_error) {
      best = candidate;
      best_error = error;
    }
  }
  return best;
}

int GptqGrid::code(float x, const GroupGrid& grid) const {
  if (is_stepdown_format(dtype_)) return quantize_code(dtype_, {grid.scale, grid.min}, x);
  if (grid.scale == 0.0f) return 0;
  const float q = std::round((x - grid.min) / grid.scale);
  return static_cast<int>(std::clamp(q, static_cast<float>(min_code_), static_cast<float>(max_code_)));
}

float GptqGrid::value(int code, const GroupGrid& grid) const {
  if (is_stepdown_format(dtype_)) return dequantize_code(dtype_, {grid.scale, grid.min}, code);
  // Two statements, so the product is rounded before the add, as the decoders do.
  const float product = grid.scale * static_cast<float>(code);
  if (!affine_) return product;
  return product + grid.min;
}

void GptqGrid::pack_row(std::span<const int8_t> codes, std::span<const GroupGrid> grids, std::byte* dst) const {
  const int64_t cols = static_cast<int64_t>(codes.size());
  const int64_t group = group_size(cols);
  if (group == 0 || cols % group != 0 || static_cast<int64_t>(grids.size()) != cols / group) {
    raise<InvalidArgument>("GPTQ pack_row: {} codes and {} grids do not fit groups of {} in {}", cols, grids.size(),
                           group, dtype_name(dtype_));
  }
  const int64_t block_bytes = static_cast<int64_t>(dtype_bytes(dtype_, group));
  if (is_stepdown_format(dtype_)) {
    std::vector<int> group_codes(static_cast<size_t>(group));
    for (int64_t g = 0; g < cols / group; ++g) {
      std::copy(codes.begin() + g * group, codes.begin() + (g + 1) * group, group_codes.begin());
      const GroupGrid& grid = grids[static_cast<size_t>(g)];
      pack_group(dtype_, {grid.scale, grid.min}, group_codes.data(), group, dst + g * block_bytes);
    }
    return;
  }
  for (int64_t g = 0; g < cols / group; ++g) {
    const int8_t* q = codes.data() + g * group;
    const GroupGrid& grid = grids[static_cast<size_t>(g)];
    std::byte* block = dst + g * block_bytes;
    put_f16(block, grid.scale);
    switch (dtype_) {
      case DType::Q8_0:
      case DType::INT8_G128:
        std::memcpy(block + 2, q, static_cast<size_t>(group));
        break;
      case DType::Q4_0: pack_nibbles(q, group, 8, block + 2, nullptr); break;
      case DType::Q5_0: pack_nibbles(q, group, 16, block + 6, block + 2); break;
      case DType::Q4_1:
        put_f16(block + 2, grid.min);
        pack_nibbles(q, group, 0, block + 4, nullptr);
        break;
      case DType::Q5_1:
        put_f16(block + 2, grid.min);
        pack_nibbles(q, group, 0, block + 8, block + 4);
        break;
      default:
        if (affine_) {
          put_f16(block + 2, grid.min);
          pack_nibbles(q, group, 0, block + 4, nullptr);
        } else {
          pack_nibbles(q, group, 8, block + 2, nullptr);
        }
        break;
    }
  }
}

}  // namespace stepdown::quant
