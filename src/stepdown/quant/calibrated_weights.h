#pragma once
// The working state of the methods that calibrate on the float model's activations:
// SmoothQuant, the outlier split and FP8's static scales. It contains the calibration
// statistics of every block's linear inputs, and f32 copies of the tensors the method
// rewrites, which become MethodOutput entries. AWQ and GPTQ use the block driver
// (block_calibration.h) instead.
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/linear_inputs.h"
#include "stepdown/quant/method.h"

namespace stepdown::quant {

class CalibratedWeights {
 public:
  // Loads the model's weights in f32, reads the calibration sequences from
  // ctx.options (--calib, --calib-samples, --calib-seq-len, --seed) and collects the
  // block inputs, keeping `sample_tokens` rows of each. Throws InvalidArgument when
  // --calib is missing, and what load_calibration_data throws for a bad file.
  CalibratedWeights(const MethodContext& ctx, int64_t sample_tokens);

  const model::ModelConfig& config() const { return config_; }
  const std::vector<BlockInputs>& inputs() const { return inputs_; }

  bool has(const std::string& name) const;
  // The f32 copy of a 2-D tensor W (rows, cols), read from the file on first use.
  // Throws InvalidArgument when the model has no tensor of that name.
  FloatMatrix& matrix(const std::string& name);
  // The f32 copy of a 1-D tensor (a RMSNorm weight or a bias).
  std::vector<float>& vector(const std::string& name);
  // The format the plan stores `name` in.
  DType planned_dtype(const std::string& name) const;

  // Every tensor copied so far, as replacement values for quantize_model.
  std::map<std::string, PreparedTensor> take_changed();
  // "calibration": the file, sequences and CalibrationData::to_json's fields.
  nlohmann::json calibration_manifest() const;

 private:
  const MethodContext& ctx_;
  model::ModelConfig config_;
  std::vector<BlockInputs> inputs_;
  nlohmann::json calibration_;
  std::map<std::string, FloatMatrix> matrices_;
  std::map<std::string, std::vector<float>> vectors_;
};

// The linear groups of a block that share one input, in the order methods visit them.
enum class LinearGroup { kQkv, kOutput, kGateUp, kDown };
inline constexpr LinearGroup kLinearGroups[] = {LinearGroup::kQkv, LinearGroup::kOutput, LinearGroup::kGateUp,
                                                LinearGroup::kDown};

// "qkv", "o", "gate_up", "down" for manifests.
const char* linear_group_name(LinearGroup group);
// GGUF names of the group's weights in block `layer` ("blk.3.attn_q.weight", ...).
std::vector<std::string> linear_group_members(int64_t layer, LinearGroup group);
// The input the group's members read.
const ChannelStats& linear_group_input(const BlockInputs& inputs, LinearGroup group);
// True for kOutput, whose scales are per kv channel (see HeadSharing).
inline bool linear_group_shares_heads(LinearGroup group) { return group == LinearGroup::kOutput; }

// Applies per-input-channel scales to a group: the members' columns are multiplied by
// `scales` and 1/s is folded into the layer that produces the input. q/k/v divide the
// attn_norm weight, gate/up the ffn_norm weight, down the rows of up, and o the rows
// (and bias) of v by `shared_scales`, one per kv channel.
void fold_group_scales(CalibratedWeights& weights, int64_t layer, LinearGroup group, std::span<const float> scales,
                       std::span<const float> shared_scales);

// Reads a method parameter, or `fallback` when absent. Throws InvalidArgument naming the
// method, the key and the text when the value does not parse.
double method_param_number(const MethodContext& ctx, const std::string& method, const std::string& key,
                           double fallback);
// Throws InvalidArgument naming the first key of --method-param that `known` lacks.
void check_method_params(const MethodContext& ctx, const std::string& method, const std::vector<std::string>& known);

}  // namespace stepdown::quant
