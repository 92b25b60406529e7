#include "stepdown/quant/calibrated_weights.h"

#include <charconv>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/calibration_data.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {
namespace {

const TensorView& require_tensor(const io::ModelFile& model, const std::string& name) {
  const TensorView* t = model.find_tensor(name);
  if (t == nullptr) raise<InvalidArgument>("{}: tensor '{}' not found", model.path.string(), name);
  return *t;
}

std::vector<float> read_f32(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r) kernels::dequantize_row(t.dtype, t.row(r), out.data() + r * t.cols(), t.cols());
  return out;
}

}  // namespace

CalibratedWeights::CalibratedWeights(const MethodContext& ctx, int64_t sample_tokens) : ctx_(ctx) {
  const QuantizeOptions& options = ctx.options;
  if (!options.calibration) {
    raise<InvalidArgument>("--method {} needs calibration data: give --calib FILE (traffic JSONL or plain text)",
                           options.method);
  }
  CalibrationOptions calibration_options;
  calibration_options.samples = options.calib_samples;
  calibration_options.seq_len = options.calib_seq_len;
  calibration_options.seed = options.seed;
  const CalibrationData data = load_calibration_data(ctx.model, *options.calibration, calibration_options);
  std::vector<std::vector<model::TokenId>> sequences;
  for (int64_t i = 0; i < data.samples; ++i) {
    const std::span<const text::TokenId> sequence = data.sequence(i);
    sequences.emplace_back(sequence.begin(), sequence.end());
  }
  calibration_ = data.to_json();
  calibration_["file"] = options.calibration->string();
  calibration_["sequences"] = data.samples;
  spdlog::info("{}: {} calibration sequences of {} tokens", options.calibration->string(), data.samples, data.seq_len);

  const model::ModelWeights weights = model::load_weights(ctx.model, model::WeightConversion::F32);
  config_ = weights.config;
  model::Transformer transformer(weights, ctx.pool);
  inputs_ = collect_block_inputs(transformer, sequences, sample_tokens);
}

bool CalibratedWeights::has(const std::string& name) const { return ctx_.model.find_tensor(name) != nullptr; }

FloatMatrix& CalibratedWeights::matrix(const std::string& name) {
  auto it = matrices_.find(name);
  if (it != matrices_.end()) return it->second;
  const TensorView& t = require_tensor(ctx_.model, name);
  if (t.shape.size() != 2) {
    raise<InvalidArgument>("{}: tensor '{}' is {}, expected a matrix", ctx_.model.path.string(), name,
                           shape_string(t.shape));
  }
  return matrices_.emplace(name, FloatMatrix{t.rows(), t.cols(), read_f32(t)}).first->second;
}

std::vector<float>& CalibratedWeights::vector(const std::string& name) {
  auto it = vectors_.find(name);
  if (it != vectors_.end()) return it->second;
  return vectors_.emplace(name, read_f32(require_tensor(ctx_.model, name))).first->second;
}

DType CalibratedWeights::planned_dtype(const std::string& name) const {
  for (const TensorPlan& plan : ctx_.plans) {
    if (plan.name == name) return plan.format->dtype;
  }
  raise<InvalidArgument>("{}: tensor '{}' has no plan", ctx_.model.path.string(), name);
}

std::map<std::string, PreparedTensor> CalibratedWeights::take_changed() {
  std::map<std::string, PreparedTensor> out;
  for (auto& [name, m] : matrices_) out[name].values = std::move(m.values);
  for (auto& [name, v] : vectors_) out[name].values = std::move(v);
  matrices_.clear();
  vectors_.clear();
  return out;
}

nlohmann::json CalibratedWeights::calibration_manifest() const { return calibration_; }

const char* linear_group_name(LinearGroup group) {
  switch (group) {
    case LinearGroup::kQkv: return "qkv";
    case LinearGroup::kOutput: return "o";
    case LinearGroup::kGateUp: return "gate_up";
    case LinearGroup::kDown: return "down";
  }
  return "?";
}

std::vector<std::string> linear_group_members(int64_t layer, LinearGroup group) {
  const std::string prefix = "blk." + std::to_string(layer) + ".";
  switch (group) {
    case LinearGroup::kQkv: return {prefix + "attn_q.weight", prefix + "attn_k.weight", prefix + "attn_v.weight"};
    case LinearGroup::kOutput: return {prefix + "attn_output.weight"};
    case LinearGroup::kGateUp: return {prefix + "ffn_gate.weight", prefix + "ffn_up.weight"};
    case LinearGroup::kDown: return {prefix + "ffn_down.weight"};
  }
  return {};
}

const ChannelStats& linear_group_input(const BlockInputs& inputs, LinearGroup group) {
  switch (group) {
    case LinearGroup::kQkv: return inputs.attn_norm;
    case LinearGroup::kOutput: return inputs.attn_heads;
    case LinearGroup::kGateUp: return inputs.ffn_norm;
    case LinearGroup::kDown: return inputs.ffn_act;
  }
  return inputs.attn_norm;
}

void fold_group_scales(CalibratedWeights& weights, int64_t layer, LinearGroup group, std::span<const float> scales,
                       std::span<const float> shared_scales) {
  const std::string prefix = "blk." + std::to_string(layer) + ".";
  for (const std::string& name : linear_group_members(layer, group)) scale_columns(weights.matrix(name), scales);
  switch (group) {
    case LinearGroup::kQkv:
      divide_elements(weights.vector(prefix + "attn_norm.weight"), scales);
      break;
    case LinearGroup::kOutput:
      // The attention heads are weighted sums of v's rows, so o's scales fold into them.
      divide_rows(weights.matrix(prefix + "attn_v.weight"), shared_scales);
      if (weights.has(prefix + "attn_v.bias")) divide_elements(weights.vector(prefix + "attn_v.bias"), shared_scales);
      break;
    case LinearGroup::kGateUp:
      divide_elements(weights.vector(prefix + "ffn_norm.weight"), scales);
      break;
    case LinearGroup::kDown:
      // act(gate) * up is linear in up's output, so down's scales fold into up's rows.
      divide_rows(weights.matrix(prefix + "ffn_up.weight"), scales);
      break;
  }
}

double method_param_number(const MethodContext& ctx, const std::string& method, const std::string& key,
                           double fallback) {
  const auto it = ctx.options.method_params.find(key);
  if (it == ctx.options.method_params.end()) return fallback;
  const std::string& text = it->second;
  double value = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    raise<InvalidArgument>("--method-param {}={}: expected a number for method '{}'", key, text, method);
  }
  return value;
}

void check_method_params(const MethodContext& ctx, const std::string& method, const std::vector<std::string>& known) {
  for (const auto& [key, value] : ctx.options.method_params) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    raise<InvalidArgument>("--method-param {}: method '{}' has no such parameter (known: {})", key, method, list);
  }
}

}  // namespace stepdown::quant
