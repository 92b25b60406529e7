#include "stepdown/quant/rtn_int.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/stepdown_formats.h"
#include "stepdown/quant/fp8.h"

namespace stepdown::quant {

namespace {

// round(x / scale) clamped to [lo, hi]; scale 0 gives 0.
int code_for(float x, float scale, int lo, int hi) {
  if (scale == 0.0f) return 0;
  return static_cast<int>(std::clamp(std::round(x / scale), static_cast<float>(lo), static_cast<float>(hi)));
}

// f16 bits of `value`, with a value below FLT_MIN taken as 0 so tiny groups give zeros.
uint16_t f16_scale(float value) { return f32_to_f16(value >= FLT_MIN ? value : 0.0f); }

void store_f16(std::byte* p, uint16_t bits) { std::memcpy(p, &bits, sizeof bits); }

void quantize_group_symmetric(const kernels::GroupLayout& layout, const float* src, std::byte* block) {
  float absmax = 0.0f;
  for (int64_t i = 0; i < layout.group; ++i) absmax = std::max(absmax, std::fabs(src[i]));
  const int max_code = layout.bits == 8 ? 127 : 7;
  const uint16_t d_bits = f16_scale(absmax / static_cast<float>(max_code));
  const float d = f16_to_f32(d_bits);
  store_f16(block, d_bits);
  if (layout.bits == 8) {
    auto* q = reinterpret_cast<int8_t*>(block + 2);
    for (int64_t i = 0; i < layout.group; ++i) q[i] = static_cast<int8_t>(code_for(src[i], d, -127, 127));
    return;
  }
  auto* qs = reinterpret_cast<uint8_t*>(block + 2);
  const int64_t half = layout.group / 2;
  for (int64_t j = 0; j < half; ++j) {
    const int low = code_for(src[j], d, -7, 7) + 8;
    const int high = code_for(src[j + half], d, -7, 7) + 8;
    qs[j] = static_cast<uint8_t>(low | (high << 4));
  }
}

void quantize_group_asymmetric(const kernels::GroupLayout& layout, const float* src, std::byte* block) {
  float lo = src[0], hi = src[0];
  for (int64_t i = 1; i < layout.group; ++i) {
    lo = std::min(lo, src[i]);
    hi = std::max(hi, src[i]);
  }
  // A group whose values are all zero or subnormal decodes to exact zeros.
  if (std::max(std::fabs(lo), std::fabs(hi)) < FLT_MIN) lo = hi = 0.0f;
  const uint16_t d_bits = f16_scale((hi - lo) / 15.0f);
  const uint16_t m_bits = f32_to_f16(lo);
  const float d = f16_to_f32(d_bits);
  const float m = f16_to_f32(m_bits);
  store_f16(block, d_bits);
  store_f16(block + 2, m_bits);
  auto* qs = reinterpret_cast<uint8_t*>(block + 4);
  const int64_t half = layout.group / 2;
  for (int64_t j = 0; j < half; ++j) {
    const int low = code_for(src[j] - m, d, 0, 15);
    const int high = code_for(src[j + half] - m, d, 0, 15);
    qs[j] = static_cast<uint8_t>(low | (high << 4));
  }
}

}  // namespace

void quantize_row_int8(const float* src, std::byte* dst, int64_t n) {
  float absmax = 0.0f;
  for (int64_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(src[i]));
  const float scale = absmax >= FLT_MIN ? absmax / 127.0f : 0.0f;
  std::memcpy(dst, &scale, sizeof scale);
  auto* q = reinterpret_cast<int8_t*>(dst + 4);
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(code_for(src[i], scale, -127, 127));
}

void quantize_row_int_groups(DType dtype, const float* src, std::byte* dst, int64_t n) {
  const kernels::GroupLayout layout = kernels::group_layout(dtype);
  if (layout.group == 0) {
    raise<InvalidArgument>("quantize_row_int_groups: {} is not a group-wise format", dtype_name(dtype));
  }
  for (int64_t b = 0; b < n / layout.group; ++b) {
    const float* group = src + b * layout.group;
    std::byte* block = dst + b * layout.bytes;
    if (layout.has_min) {
      quantize_group_asymmetric(layout, group, block);
    } else {
      quantize_group_symmetric(layout, group, block);
    }
  }
}

void quantize_row_stepdown(DType dtype, const float* src, std::byte* dst, int64_t n) {
  switch (dtype) {
    case DType::INT8:
    case DType::INT8_W8A8: return quantize_row_int8(src, dst, n);
    case DType::FP8_E4M3: return quantize_row_fp8(src, dst, n);
    default: return quantize_row_int_groups(dtype, src, dst, n);
  }
}

std::vector<std::byte> quantize_tensor_stepdown(std::string_view tensor_name, DType dtype,
                                                std::span<const float> data, int64_t rows, int64_t cols) {
  if (!is_stepdown_format(dtype)) {
    raise<InvalidArgument>("tensor '{}': {} is not one of stepdown's own formats", tensor_name, dtype_name(dtype));
  }
  if (rows < 0 || cols < 0 || static_cast<int64_t>(data.size()) != rows * cols) {
    raise<InvalidArgument>("tensor '{}': {} values given for shape ({}, {})", tensor_name, data.size(), rows, cols);
  }
  const int64_t group = dtype_info(dtype).block_elems;
  if (cols % group != 0) {
    raise<InvalidArgument>("tensor '{}': row length {} is not a multiple of {}'s group of {} values", tensor_name,
                           cols, dtype_name(dtype), group);
  }
  for (size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) {
      raise<InvalidArgument>("tensor '{}': element ({}, {}) is {}; quantization needs finite weights", tensor_name,
                             static_cast<int64_t>(i) / cols, static_cast<int64_t>(i) % cols,
                             std::isnan(data[i]) ? "NaN" : "infinite");
    }
  }
  const size_t row_bytes = dtype_bytes(dtype, cols);
  std::vector<std::byte> out(row_bytes * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row_stepdown(dtype, data.data() + r * cols, out.data() + static_cast<size_t>(r) * row_bytes, cols);
  }
  return out;
}

}  // namespace stepdown::quant
