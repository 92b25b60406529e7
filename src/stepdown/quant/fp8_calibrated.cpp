#include "stepdown/quant/fp8_calibrated.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/fp8.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/calibrated_weights.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {

std::vector<std::byte> quantize_fp8_per_tensor(const FloatMatrix& w) {
  float absmax = 0.0f;
  for (float v : w.values) absmax = std::max(absmax, std::fabs(v));
  const float scale = absmax >= FLT_MIN ? absmax / kFp8E4M3Max : 0.0f;
  const size_t row_bytes = dtype_bytes(DType::FP8_E4M3, w.cols);
  std::vector<std::byte> bytes(row_bytes * static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r) {
    std::byte* dst = bytes.data() + static_cast<size_t>(r) * row_bytes;
    std::memcpy(dst, &scale, sizeof scale);
    auto* codes = reinterpret_cast<uint8_t*>(dst + sizeof scale);
    const float* row = w.row(r);
    for (int64_t j = 0; j < w.cols; ++j) {
      // w / scale can round just past 448 at the absmax, so clamp before the cast.
      codes[j] = scale == 0.0f ? 0 : f32_to_fp8_e4m3(std::clamp(row[j] / scale, -kFp8E4M3Max, kFp8E4M3Max));
    }
  }
  return bytes;
}

namespace {

MethodOutput run_fp8(const MethodContext& ctx) {
  check_method_params(ctx, "fp8", {"granularity", "static_act"});
  const auto it = ctx.options.method_params.find("granularity");
  const std::string granularity = it == ctx.options.method_params.end() ? "channel" : it->second;
  if (granularity != "channel" && granularity != "tensor") {
    raise<InvalidArgument>("--method-param granularity={}: expected 'channel' or 'tensor'", granularity);
  }
  if (method_param_number(ctx, "fp8", "static_act", 0) != 0) {
    raise<Unsupported>("--method-param static_act=1: no kernel rounds activations to E4M3 with a static scale yet; "
                       "use static_act=0 (dynamic f32 activations)");
  }

  MethodOutput output;
  int64_t fp8_tensors = 0;
  for (size_t i = 0; i < ctx.plans.size(); ++i) {
    const TensorView& t = ctx.model.tensors[i];
    if (ctx.plans[i].format->dtype != DType::FP8_E4M3) continue;
    ++fp8_tensors;
    if (granularity == "channel") continue;  // the planned row quantizer is per channel

    FloatMatrix w{t.rows(), t.cols(), std::vector<float>(static_cast<size_t>(t.numel()))};
    for (int64_t r = 0; r < t.rows(); ++r) kernels::dequantize_row(t.dtype, t.row(r), w.row(r), t.cols());
    for (int64_t k = 0; k < static_cast<int64_t>(w.values.size()); ++k) {
      if (!std::isfinite(w.values[static_cast<size_t>(k)])) {
        raise<InvalidArgument>("{}: element ({}, {}) is not finite; FP8 cannot store it", t.name, k / t.cols(),
                               k % t.cols());
      }
    }
    output.tensors[t.name].bytes = quantize_fp8_per_tensor(w);
  }
  if (fp8_tensors == 0) {
    raise<InvalidArgument>("method 'fp8' found no tensor planned as FP8_E4M3; use --scheme fp8 or an override");
  }
  output.manifest = {{"method", "fp8"}, {"granularity", granularity}, {"static_act", false},
                     {"fp8_tensors", fp8_tensors}};
  return output;
}

}  // namespace

QuantMethod fp8_method() {
  return QuantMethod{"fp8", "FP8 E4M3 weights with per-channel or per-tensor scales (params: granularity, static_act)",
                     run_fp8};
}

}  // namespace stepdown::quant
