#include "stepdown/quant/rtn_int.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/stepdown_formats.h"
#include "stepdown/quant/fp8.h"
#include "stepdown/quant/outlier_split.h"

namespace stepdown::quant {

namespace {

bool is_per_row_int8(DType dtype) { return dtype == DType::INT8 || dtype == DType::INT8_W8A8; }

// Bits, symmetry and code range of an integer format.
struct CodeRange {
  kernels::GroupLayout layout;  // group == 0 for the per-row INT8 formats
  int lo = 0;
  int hi = 0;
};

CodeRange code_range(DType dtype) {
  CodeRange range;
  if (is_per_row_int8(dtype)) {
    range.layout.bits = 8;
  } else {
    range.layout = kernels::group_layout(dtype);
    if (range.layout.group == 0) {
      raise<InvalidArgument>("{} is not one of stepdown's integer formats (INT8, INT8_G128, INT4_G*, INT3_G*)",
                             dtype_name(dtype));
    }
  }
  const int levels = (1 << range.layout.bits) - 1;  // 255, 15 or 7
  if (range.layout.has_min) {
    range.hi = levels;
  } else {
    range.hi = levels / 2;  // 127, 7 or 3: symmetric codes never use the most negative value
    range.lo = -range.hi;
  }
  return range;
}

// round(x / scale) clamped to [lo, hi]; scale 0 gives 0.
int code_for(float x, float scale, int lo, int hi) {
  if (scale == 0.0f) return 0;
  return static_cast<int>(std::clamp(std::round(x / scale), static_cast<float>(lo), static_cast<float>(hi)));
}

// `value` rounded to f16 and back, with a value below FLT_MIN taken as 0 so tiny groups
// give zeros.
float f16_scale(float value) { return f16_to_f32(f32_to_f16(value >= FLT_MIN ? value : 0.0f)); }

uint16_t exact_f16_bits(float value, const char* field, DType dtype) {
  const uint16_t bits = f32_to_f16(value);
  if (f16_to_f32(bits) != value && !(std::isnan(value) && std::isnan(f16_to_f32(bits)))) {
    raise<InvalidArgument>("pack_group: {} {} is {}, which is not exactly an f16 value; take it from "
                           "choose_group_params or round it to f16 first",
                           dtype_name(dtype), field, value);
  }
  return bits;
}

void store_f16(std::byte* p, uint16_t bits) { std::memcpy(p, &bits, sizeof bits); }

int code_in_range(const CodeRange& range, const GroupParams& params, float x) {
  if (range.layout.has_min) return code_for(x - params.min, params.scale, range.lo, range.hi);
  return code_for(x, params.scale, range.lo, range.hi);
}

}  // namespace

int64_t quant_group_size(DType dtype, int64_t cols) {
  const CodeRange range = code_range(dtype);
  return range.layout.group == 0 ? cols : range.layout.group;
}

GroupParams choose_group_params(DType dtype, const float* values, int64_t n) {
  const CodeRange range = code_range(dtype);
  if (n <= 0) return {};
  if (range.layout.has_min) {
    float lo = values[0], hi = values[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = std::min(lo, values[i]);
      hi = std::max(hi, values[i]);
    }
    // A group whose values are all zero or subnormal decodes to exact zeros.
    if (std::max(std::fabs(lo), std::fabs(hi)) < FLT_MIN) lo = hi = 0.0f;
    return {f16_scale((hi - lo) / static_cast<float>(range.hi)), f16_to_f32(f32_to_f16(lo))};
  }
  float absmax = 0.0f;
  for (int64_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(values[i]));
  if (range.layout.group == 0) return {absmax >= FLT_MIN ? absmax / static_cast<float>(range.hi) : 0.0f, 0.0f};
  return {f16_scale(absmax / static_cast<float>(range.hi)), 0.0f};
}

int quantize_code(DType dtype, const GroupParams& params, float x) {
  return code_in_range(code_range(dtype), params, x);
}

float dequantize_code(DType dtype, const GroupParams& params, int code) {
  const CodeRange range = code_range(dtype);
  const float scaled = params.scale * static_cast<float>(code);
  // A separate statement, so the product is rounded before the add, as in dequantize_row.
  return range.layout.has_min ? scaled + params.min : scaled;
}

void pack_group(DType dtype, const GroupParams& params, const int* codes, int64_t n, std::byte* dst) {
  const CodeRange range = code_range(dtype);
  const kernels::GroupLayout& layout = range.layout;
  if (layout.group != 0 && n != layout.group) {
    raise<InvalidArgument>("pack_group: {} groups hold {} codes, {} were given", dtype_name(dtype), layout.group, n);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (codes[i] < range.lo || codes[i] > range.hi) {
      raise<InvalidArgument>("pack_group: {} code {} at index {} is outside [{}, {}]", dtype_name(dtype), codes[i], i,
                             range.lo, range.hi);
    }
  }

  if (layout.group == 0) {
    std::memcpy(dst, &params.scale, sizeof params.scale);
    auto* q = reinterpret_cast<int8_t*>(dst + 4);
    for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(codes[i]);
    return;
  }

  store_f16(dst, exact_f16_bits(params.scale, "scale", dtype));
  if (layout.has_min) store_f16(dst + 2, exact_f16_bits(params.min, "min", dtype));
  auto* out = reinterpret_cast<uint8_t*>(dst + layout.codes_offset());
  // Symmetric codes are stored with an offset that makes them non-negative: 8 for 4 bits,
  // 4 for 3 bits. Int8 codes are stored as they are.
  const int offset = layout.has_min || layout.bits == 8 ? 0 : (range.hi + 1);

  if (layout.bits == 8) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(static_cast<int8_t>(codes[i]));
    return;
  }
  if (layout.bits == 4) {
    const int64_t half = n / 2;
    for (int64_t j = 0; j < half; ++j) {
      out[j] = static_cast<uint8_t>((codes[j] + offset) | ((codes[j + half] + offset) << 4));
    }
    return;
  }

  // 3 bits: a high-bit plane of n / 8 bytes, then a plane of two low bits of n / 4 bytes.
  uint8_t* hi = out;
  uint8_t* lo = out + n / 8;
  const int64_t quarter = n / 4;
  std::fill(out, out + 3 * n / 8, uint8_t{0});
  for (int64_t e = 0; e < n; ++e) {
    const int c = codes[e] + offset;
    lo[e % quarter] = static_cast<uint8_t>(lo[e % quarter] | ((c & 3) << (2 * (e / quarter))));
    hi[e / 8] = static_cast<uint8_t>(hi[e / 8] | ((c >> 2) << (e % 8)));
  }
}

void quantize_row_int8(const float* src, std::byte* dst, int64_t n) {
  const GroupParams params = choose_group_params(DType::INT8, src, n);
  std::memcpy(dst, &params.scale, sizeof params.scale);
  auto* q = reinterpret_cast<int8_t*>(dst + 4);
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(code_for(src[i], params.scale, -127, 127));
}

void quantize_row_int_groups(DType dtype, const float* src, std::byte* dst, int64_t n) {
  const kernels::GroupLayout layout = kernels::group_layout(dtype);
  if (layout.group == 0) {
    raise<InvalidArgument>("quantize_row_int_groups: {} is not a group-wise format", dtype_name(dtype));
  }
  const CodeRange range = code_range(dtype);
  std::vector<int> codes(static_cast<size_t>(layout.group));
  for (int64_t b = 0; b < n / layout.group; ++b) {
    const float* group = src + b * layout.group;
    const GroupParams params = choose_group_params(dtype, group, layout.group);
    for (int64_t i = 0; i < layout.group; ++i) codes[static_cast<size_t>(i)] = code_in_range(range, params, group[i]);
    pack_group(dtype, params, codes.data(), layout.group, dst + b * layout.bytes);
  }
}

void quantize_row_stepdown(DType dtype, const float* src, std::byte* dst, int64_t n) {
  switch (dtype) {
    case DType::INT8:
    case DType::INT8_W8A8: return quantize_row_int8(src, dst, n);
    case DType::FP8_E4M3: return quantize_row_fp8(src, dst, n);
    // RTN keeps no outlier columns; the "outlier" method chooses them from calibration.
    case DType::INT8_OUTLIER: return quantize_row_int8_outlier(src, {}, dst, n);
    case DType::FP8_E4M3_A8:
      raise<InvalidArgument>("fp8-a8 needs an activation scale from calibration, which round-to-nearest does not "
                             "compute: run --method fp8 with --calib FILE");
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
