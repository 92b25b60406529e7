#include "stepdown/quant/fp8_calibrated.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <set>
#include <span>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/fp8.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/calibrated_weights.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/fp8.h"
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

std::vector<std::byte> quantize_fp8_a8(const FloatMatrix& w, float act_scale, bool per_tensor) {
  const size_t row_bytes = dtype_bytes(DType::FP8_E4M3_A8, w.cols);
  std::vector<std::byte> bytes(row_bytes * static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r) {
    quantize_row_fp8_a8(w.row(r), act_scale, bytes.data() + static_cast<size_t>(r) * row_bytes, w.cols);
  }
  if (!per_tensor) return bytes;

  // Replace each row's FP8_E4M3 part (after the activation scale) with the per-tensor one.
  const std::vector<std::byte> fp8 = quantize_fp8_per_tensor(w);
  const size_t fp8_row_bytes = dtype_bytes(DType::FP8_E4M3, w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    std::memcpy(bytes.data() + static_cast<size_t>(r) * row_bytes + sizeof act_scale,
                fp8.data() + static_cast<size_t>(r) * fp8_row_bytes, fp8_row_bytes);
  }
  return bytes;
}

float static_activation_scale(std::span<const float> abs_max) {
  float max_abs = 0.0f;
  for (float v : abs_max) max_abs = std::max(max_abs, v);
  const float scale = max_abs / kFp8E4M3Max;
  // An input that was 0 on every calibration token gives no range. Any positive scale
  // keeps those zeros exact, so take 1.
  return std::isfinite(scale) && scale >= FLT_MIN ? scale : 1.0f;
}

namespace {

void check_finite(const TensorView& t, const FloatMatrix& w) {
  for (int64_t k = 0; k < static_cast<int64_t>(w.values.size()); ++k) {
    if (!std::isfinite(w.values[static_cast<size_t>(k)])) {
      raise<InvalidArgument>("{}: element ({}, {}) is not finite; FP8 cannot store it", t.name, k / t.cols(),
                             k % t.cols());
    }
  }
}

bool is_fp8(DType dtype) { return dtype == DType::FP8_E4M3 || dtype == DType::FP8_E4M3_A8; }

// Static activation scales: every block linear planned as FP8 becomes FP8_E4M3_A8 with
// act_scale = max |x| of its input over the calibration tokens / 448. Other tensors planned
// as FP8 (the token embedding, the output head) keep FP8_E4M3 and f32 activations.
void add_static_activations(const MethodContext& ctx, bool per_tensor, MethodOutput& output) {
  // Only max |x| per channel is needed, so keep one sample row.
  CalibratedWeights weights(ctx, 1);
  const model::ModelConfig& config = weights.config();
  const QuantFormat* a8_format = find_quant_format(DType::FP8_E4M3_A8);
  const QuantFormat* fp8_format = find_quant_format(DType::FP8_E4M3);
  if (a8_format == nullptr || fp8_format == nullptr) {
    raise<InvalidArgument>("method 'fp8': the fp8 and fp8-a8 formats are not registered");
  }

  nlohmann::json act_scales = nlohmann::json::object();
  std::set<std::string> static_tensors;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    const BlockInputs& inputs = weights.inputs()[static_cast<size_t>(layer)];
    for (LinearGroup group : kLinearGroups) {
      const float act_scale = static_activation_scale(linear_group_input(inputs, group).abs_max);
      for (const std::string& name : linear_group_members(layer, group)) {
        if (!weights.has(name) || !is_fp8(weights.planned_dtype(name))) continue;
        FloatMatrix& w = weights.matrix(name);
        PreparedTensor& prepared = output.tensors[name];
        prepared.bytes = quantize_fp8_a8(w, act_scale, per_tensor);
        prepared.format = a8_format;
        act_scales[name] = act_scale;
        static_tensors.insert(name);
        w = FloatMatrix{};  // the bytes are final, so free the f32 copy
      }
    }
  }

  nlohmann::json f32_activations = nlohmann::json::array();
  for (size_t i = 0; i < ctx.plans.size(); ++i) {
    const std::string& name = ctx.model.tensors[i].name;
    if (!is_fp8(ctx.plans[i].format->dtype) || static_tensors.contains(name)) continue;
    f32_activations.push_back(name);
    if (ctx.plans[i].format->dtype == DType::FP8_E4M3_A8) output.tensors[name].format = fp8_format;
  }
  if (!f32_activations.empty()) {
    spdlog::info("fp8: {} tensor(s) outside the block linears have no calibrated input and keep f32 activations "
                 "(FP8_E4M3), the first {}",
                 f32_activations.size(), f32_activations.front().get<std::string>());
  }
  output.manifest["activation_scales"] = std::move(act_scales);
  output.manifest["f32_activation_tensors"] = std::move(f32_activations);
  output.manifest["calibration"] = weights.calibration_manifest();
}

MethodOutput run_fp8(const MethodContext& ctx) {
  check_method_params(ctx, "fp8", {"granularity", "static_act"});
  const auto it = ctx.options.method_params.find("granularity");
  const std::string granularity = it == ctx.options.method_params.end() ? "channel" : it->second;
  if (granularity != "channel" && granularity != "tensor") {
    raise<InvalidArgument>("--method-param granularity={}: expected 'channel' or 'tensor'", granularity);
  }
  const bool per_tensor = granularity == "tensor";

  int64_t fp8_tensors = 0;
  bool planned_a8 = false;
  for (const TensorPlan& plan : ctx.plans) {
    if (!is_fp8(plan.format->dtype)) continue;
    ++fp8_tensors;
    planned_a8 = planned_a8 || plan.format->dtype == DType::FP8_E4M3_A8;
  }
  if (fp8_tensors == 0) {
    raise<InvalidArgument>("method 'fp8' found no tensor planned as FP8_E4M3 or FP8_E4M3_A8; use --scheme fp8 or "
                           "fp8-a8, or an override");
  }
  // --scheme fp8-a8 implies static activation scales; --scheme fp8 turns them on with static_act=1.
  const double static_act = method_param_number(ctx, "fp8", "static_act", planned_a8 ? 1.0 : 0.0);
  if (static_act != 0.0 && static_act != 1.0) {
    raise<InvalidArgument>("--method-param static_act={}: expected 0 (f32 activations) or 1 (static E4M3 "
                           "activation scales from --calib)",
                           static_act);
  }
  if (static_act == 0.0 && planned_a8) {
    raise<InvalidArgument>("--method-param static_act=0 contradicts --scheme fp8-a8, whose format needs static "
                           "activation scales; use --scheme fp8 for f32 activations");
  }

  MethodOutput output;
  if (static_act == 1.0) add_static_activations(ctx, per_tensor, output);

  for (size_t i = 0; i < ctx.plans.size() && per_tensor; ++i) {
    const TensorView& t = ctx.model.tensors[i];
    const auto prepared = output.tensors.find(t.name);
    if (!is_fp8(ctx.plans[i].format->dtype) || (prepared != output.tensors.end() && prepared->second.bytes)) {
      continue;
    }
    FloatMatrix w{t.rows(), t.cols(), std::vector<float>(static_cast<size_t>(t.numel()))};
    for (int64_t r = 0; r < t.rows(); ++r) kernels::dequantize_row(t.dtype, t.row(r), w.row(r), t.cols());
    check_finite(t, w);
    // Tensors that reach here are stored as FP8_E4M3 (an A8 plan was switched above).
    output.tensors[t.name].bytes = quantize_fp8_per_tensor(w);
  }
  output.manifest.update({{"method", "fp8"}, {"granularity", granularity}, {"static_act", static_act == 1.0},
                          {"fp8_tensors", fp8_tensors}});
  return output;
}

}  // namespace

QuantMethod fp8_method() {
  return QuantMethod{"fp8", "FP8 E4M3 weights with per-channel or per-tensor scales, optionally static E4M3 activation scales "
                     "(params: granularity, static_act)",
                     run_fp8};
}

}  // namespace stepdown::quant
