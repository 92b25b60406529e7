// Scalar decoding of stepdown's own formats; the layouts are in stepdown_formats.h.
#include "stepdown/kernels/stepdown_formats.h"

#include <cstring>

#include "stepdown/core/error.h"
#include "stepdown/core/fp8.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/fp8_static_act.h"
#include "stepdown/kernels/int8_outlier.h"

namespace stepdown::kernels {

namespace {

float load_f32(const std::byte* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float load_f16(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return f16_to_f32(h);
}

void dequantize_int3_group(const GroupLayout& layout, const uint8_t* block, float d, float* dst) {
  const uint8_t* planes = block + layout.codes_offset();
  if (layout.has_min) {
    const float m = load_f16(reinterpret_cast<const std::byte*>(block + 2));
    for (int64_t e = 0; e < layout.group; ++e) {
      // Two statements, so the product is rounded before the add (no FMA contraction).
      const float scaled = d * static_cast<float>(int3_code(planes, layout.group, e));
      dst[e] = scaled + m;
    }
    return;
  }
  for (int64_t e = 0; e < layout.group; ++e) dst[e] = d * static_cast<float>(int3_code(planes, layout.group, e) - 4);
}

void dequantize_groups(const GroupLayout& layout, const std::byte* src, float* dst, int64_t n) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(src);
  const int64_t half = layout.group / 2;
  for (int64_t b = 0; b < n / layout.group; ++b, bytes += layout.bytes, dst += layout.group) {
    const float d = load_f16(reinterpret_cast<const std::byte*>(bytes));
    if (layout.bits == 8) {
      const auto* q = reinterpret_cast<const int8_t*>(bytes + 2);
      for (int64_t i = 0; i < layout.group; ++i) dst[i] = d * static_cast<float>(q[i]);
      continue;
    }
    if (layout.bits == 3) {
      dequantize_int3_group(layout, bytes, d, dst);
      continue;
    }
    const uint8_t* qs = bytes + layout.codes_offset();
    if (layout.has_min) {
      const float m = load_f16(reinterpret_cast<const std::byte*>(bytes + 2));
      for (int64_t j = 0; j < half; ++j) {
        // Two statements, so the product is rounded before the add (no FMA contraction).
        const float low = d * static_cast<float>(qs[j] & 0x0f);
        const float high = d * static_cast<float>(qs[j] >> 4);
        dst[j] = low + m;
        dst[j + half] = high + m;
      }
    } else {
      for (int64_t j = 0; j < half; ++j) {
        dst[j] = d * static_cast<float>((qs[j] & 0x0f) - 8);
        dst[j + half] = d * static_cast<float>((qs[j] >> 4) - 8);
      }
    }
  }
}

}  // namespace

GroupLayout group_layout(DType dtype) {
  switch (dtype) {
    case DType::INT8_G128: return {128, 130, 8, false};
    case DType::INT4_G32: return {32, 18, 4, false};
    case DType::INT4_G64: return {64, 34, 4, false};
    case DType::INT4_G128: return {128, 66, 4, false};
    case DType::INT4_G32_ASYM: return {32, 20, 4, true};
    case DType::INT4_G64_ASYM: return {64, 36, 4, true};
    case DType::INT4_G128_ASYM: return {128, 68, 4, true};
    case DType::INT3_G64: return {64, 26, 3, false};
    case DType::INT3_G128: return {128, 50, 3, false};
    case DType::INT3_G64_ASYM: return {64, 28, 3, true};
    case DType::INT3_G128_ASYM: return {128, 52, 3, true};
    default: return {};
  }
}

void dequantize_row_stepdown(DType dtype, const std::byte* src, float* dst, int64_t n) {
  switch (dtype) {
    case DType::INT8:
    case DType::INT8_W8A8: {
      const float scale = load_f32(src);
      const auto* q = reinterpret_cast<const int8_t*>(src + 4);
      for (int64_t i = 0; i < n; ++i) dst[i] = scale * static_cast<float>(q[i]);
      return;
    }
    case DType::INT8_OUTLIER:
      return dequantize_row_int8_outlier(src, dst, n);
    case DType::FP8_E4M3_A8:
      return dequantize_row_fp8_a8(src, dst, n);
    case DType::FP8_E4M3: {
      const float scale = load_f32(src);
      const auto* codes = reinterpret_cast<const uint8_t*>(src + 4);
      for (int64_t i = 0; i < n; ++i) dst[i] = scale * fp8_e4m3_to_f32(codes[i]);
      return;
    }
    default:
      break;
  }
  const GroupLayout layout = group_layout(dtype);
  if (layout.group == 0) raise<Unsupported>("dequantize_row: weight format {} is not supported", dtype_name(dtype));
  dequantize_groups(layout, src, dst, n);
}

}  // namespace stepdown::kernels
