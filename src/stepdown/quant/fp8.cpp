#include "stepdown/quant/fp8.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "stepdown/core/error.h"
#include "stepdown/core/fp8.h"

namespace stepdown::quant {

void quantize_row_fp8(const float* src, std::byte* dst, int64_t n) {
  float absmax = 0.0f;
  for (int64_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(src[i]));
  const float scale = absmax >= FLT_MIN ? absmax / kFp8E4M3Max : 0.0f;
  std::memcpy(dst, &scale, sizeof scale);
  auto* codes = reinterpret_cast<uint8_t*>(dst + 4);
  for (int64_t i = 0; i < n; ++i) {
    if (scale == 0.0f) {
      codes[i] = 0;
      continue;
    }
    // x / scale can round just past 448 when x is the absmax; clamp before the cast.
    const float scaled = std::clamp(src[i] / scale, -kFp8E4M3Max, kFp8E4M3Max);
    codes[i] = f32_to_fp8_e4m3(scaled);
  }
}

void quantize_row_fp8_a8(const float* src, float act_scale, std::byte* dst, int64_t n) {
  if (!std::isfinite(act_scale) || act_scale <= 0.0f) {
    raise<InvalidArgument>("FP8_E4M3_A8: activation scale {} is not a finite positive number", act_scale);
  }
  std::memcpy(dst, &act_scale, sizeof act_scale);
  quantize_row_fp8(src, dst + sizeof act_scale, n);
}

}  // namespace stepdown::quant
