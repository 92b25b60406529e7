#include "stepdown/quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"
#include "stepdown/quant/calibrated_weights.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/in_memory_model.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {
namespace {

std::vector<float> clamp_below(std::span<const float> values) {
  float largest = 0.0f;
  for (float v : values) largest = std::max(largest, v);
  std::vector<float> clamped(values.begin(), values.end());
  for (float& v : clamped) v = std::max(v, largest * kSmoothStatisticFloor);
  return clamped;
}

// (Q) -> (K): the max over the query heads that read each kv channel.
std::vector<float> max_shared_heads(std::span<const float> per_query, const HeadSharing& heads) {
  const int64_t group = heads.n_heads / heads.n_kv_heads;
  std::vector<float> per_kv(static_cast<size_t>(heads.n_kv_heads * heads.head_dim), 0.0f);
  for (int64_t h = 0; h < heads.n_heads; ++h) {
    for (int64_t i = 0; i < heads.head_dim; ++i) {
      float& slot = per_kv[static_cast<size_t>((h / group) * heads.head_dim + i)];
      slot = std::max(slot, per_query[static_cast<size_t>(h * heads.head_dim + i)]);
    }
  }
  return per_kv;
}

}  // namespace

std::vector<float> smoothquant_scales(std::span<const float> max_abs_input, std::span<const float> max_abs_weight,
                                      float alpha) {
  if (max_abs_input.size() != max_abs_weight.size()) {
    raise<InvalidArgument>("smoothquant_scales: {} input statistics but {} weight statistics", max_abs_input.size(),
                           max_abs_weight.size());
  }
  const std::vector<float> x = clamp_below(max_abs_input);
  const std::vector<float> w = clamp_below(max_abs_weight);
  std::vector<float> scales(x.size(), 1.0f);
  const bool x_dead = x.empty() || *std::max_element(x.begin(), x.end()) == 0.0f;
  const bool w_dead = w.empty() || *std::max_element(w.begin(), w.end()) == 0.0f;
  if (x_dead || w_dead) return scales;
  for (size_t j = 0; j < x.size(); ++j) {
    scales[j] = static_cast<float>(std::pow(static_cast<double>(x[j]), alpha) /
                                   std::pow(static_cast<double>(w[j]), 1.0 - alpha));
  }
  return scales;
}

std::vector<float> max_abs_columns(const std::vector<const FloatMatrix*>& weights) {
  if (weights.empty()) return {};
  const int64_t cols = weights.front()->cols;
  std::vector<float> max_abs(static_cast<size_t>(cols), 0.0f);
  for (const FloatMatrix* w : weights) {
    if (w->cols != cols) raise<InvalidArgument>("max_abs_columns: matrices of {} and {} columns", cols, w->cols);
    for (int64_t r = 0; r < w->rows; ++r) {
      const float* row = w->row(r);
      for (int64_t j = 0; j < cols; ++j) {
        max_abs[static_cast<size_t>(j)] = std::max(max_abs[static_cast<size_t>(j)], std::fabs(row[j]));
      }
    }
  }
  return max_abs;
}

AlphaChoice search_smoothquant_alpha(const GroupOutputError& error, std::span<const float> max_abs_input,
                                     std::span<const float> max_abs_weight, std::span<const float> alphas,
                                     const HeadSharing* heads) {
  if (alphas.empty()) raise<InvalidArgument>("search_smoothquant_alpha: no alpha to evaluate");
  std::vector<float> input_statistic(max_abs_input.begin(), max_abs_input.end());
  std::vector<float> weight_statistic(max_abs_weight.begin(), max_abs_weight.end());
  if (heads != nullptr) {
    input_statistic = max_shared_heads(input_statistic, *heads);
    weight_statistic = max_shared_heads(weight_statistic, *heads);
  }
  AlphaChoice best;
  double best_error = std::numeric_limits<double>::infinity();
  for (float alpha : alphas) {
    std::vector<float> shared = smoothquant_scales(input_statistic, weight_statistic, alpha);
    std::vector<float> scales = heads != nullptr ? expand_shared_heads(shared, *heads) : shared;
    const double e = error.evaluate(scales);
    best.errors.push_back(e);
    if (e < best_error || best.scales.empty()) {
      best_error = std::isnan(e) ? best_error : e;
      best.alpha = alpha;
      best.scales = std::move(scales);
      best.shared_scales = heads != nullptr ? std::move(shared) : std::vector<float>{};
    }
  }
  return best;
}

namespace {

std::vector<float> parse_alphas(const MethodContext& ctx) {
  const auto it = ctx.options.method_params.find("alpha");
  if (it != ctx.options.method_params.end() && it->second == "search") {
    std::vector<float> alphas;
    for (int i = 0; i <= 12; ++i) alphas.push_back(0.3f + 0.05f * static_cast<float>(i));
    return alphas;
  }
  const double alpha = method_param_number(ctx, "smoothquant", "alpha", 0.5);
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    raise<InvalidArgument>("--method-param alpha={}: expected a number in [0, 1] or 'search'", alpha);
  }
  return {static_cast<float>(alpha)};
}

// Replaces RTN of the smoothed block linears with GPTQ: the smoothed model is held in
// memory in f32 and GPTQ runs on it with the same calibration options, writing the planned
// formats' bytes. The smoothed norms and any other changed tensor keep their values.
void quantize_smoothed_with_gptq(const MethodContext& ctx, MethodOutput& output) {
  const QuantFormat* f32 = find_quant_format("f32");
  std::vector<TensorPlan> f32_plans = ctx.plans;
  for (TensorPlan& plan : f32_plans) plan.format = f32;
  const io::ModelFile smoothed = quantize_in_memory(ctx.model, f32_plans, output, ctx.pool);

  const QuantMethod* gptq = find_quant_method("gptq");
  if (gptq == nullptr) raise<Unsupported>("smoothquant weights=gptq: the gptq method is not registered");
  QuantizeOptions options = ctx.options;
  options.method = "gptq";
  options.method_params.clear();
  spdlog::info("smoothquant: quantizing the smoothed block linears with GPTQ");
  MethodOutput weights = gptq->run(MethodContext{smoothed, ctx.plans, options, ctx.pool});
  for (auto& [name, tensor] : weights.tensors) output.tensors[name] = std::move(tensor);
  output.manifest["gptq"] = std::move(weights.manifest);
}

MethodOutput run_smoothquant(const MethodContext& ctx) {
  check_method_params(ctx, "smoothquant", {"alpha", "search_tokens", "weights"});
  const auto weights_param = ctx.options.method_params.find("weights");
  const std::string weight_method = weights_param == ctx.options.method_params.end() ? "rtn" : weights_param->second;
  if (weight_method != "rtn" && weight_method != "gptq") {
    raise<InvalidArgument>("--method-param weights={}: expected rtn or gptq", weight_method);
  }
  const std::vector<float> alphas = parse_alphas(ctx);
  const int64_t search_tokens = static_cast<int64_t>(method_param_number(ctx, "smoothquant", "search_tokens", 1024));
  if (search_tokens <= 0) raise<InvalidArgument>("--method-param search_tokens must be positive, got {}", search_tokens);
  CalibratedWeights weights(ctx, search_tokens);
  const model::ModelConfig& config = weights.config();
  const HeadSharing heads{config.n_heads, config.n_kv_heads, config.head_dim};

  nlohmann::json layers = nlohmann::json::array();
  bool warned = false;
  Progress progress("smoothquant", config.n_layers);
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    const BlockInputs& inputs = weights.inputs()[static_cast<size_t>(layer)];
    nlohmann::json record;
    for (LinearGroup group : kLinearGroups) {
      const std::vector<std::string> names = linear_group_members(layer, group);
      const ChannelStats& stats = linear_group_input(inputs, group);
      std::vector<GroupMember> members;
      std::vector<const FloatMatrix*> matrices;
      for (const std::string& name : names) {
        const DType dtype = weights.planned_dtype(name);
        if (dtype != DType::INT8_W8A8 && !warned) {
          spdlog::warn("smoothquant: {} is planned as {}, not INT8_W8A8, so its activations stay f32 and the "
                       "smoothing only reshapes the weights",
                       name, dtype_name(dtype));
          warned = true;
        }
        members.push_back({name, &weights.matrix(name), dtype});
        matrices.push_back(&weights.matrix(name));
      }
      const GroupOutputError error(members, stats.sample, ctx.pool);
      const AlphaChoice choice = search_smoothquant_alpha(error, stats.abs_max, max_abs_columns(matrices), alphas,
                                                          linear_group_shares_heads(group) ? &heads : nullptr);
      const double unsmoothed = error.evaluate(std::vector<float>(static_cast<size_t>(stats.sample.cols), 1.0f));
      fold_group_scales(weights, layer, group, choice.scales, choice.shared_scales);
      record[linear_group_name(group)] = {{"alpha", choice.alpha},
                                          {"mse", *std::min_element(choice.errors.begin(), choice.errors.end())},
                                          {"unsmoothed_mse", unsmoothed}};
    }
    layers.push_back(std::move(record));
    progress.update(layer + 1);
  }
  progress.finish();

  MethodOutput output;
  output.tensors = weights.take_changed();
  output.manifest = {{"method", "smoothquant"},
                     {"alphas", alphas},
                     {"search_tokens", search_tokens},
                     {"objective", "mean squared output error of each linear group on the calibration sample"},
                     {"calibration", weights.calibration_manifest()},
                     {"weights", weight_method},
                     {"layers", std::move(layers)}};
  if (weight_method == "gptq") quantize_smoothed_with_gptq(ctx, output);
  return output;
}

}  // namespace

QuantMethod smoothquant_method() {
  return QuantMethod{"smoothquant",
                     "SmoothQuant scales max|x|^a / max|w|^(1-a) per linear group for W8A8, folded into the previous "
                     "layer (params: alpha=0.5|search, search_tokens, weights=rtn|gptq)",
                     run_smoothquant};
}

}  // namespace stepdown::quant
