// The "gptq" calibrated method: the block calibration driver collects X^T X at each
// linear's input, gptq_quantize turns each block linear into the bytes of its planned
// format, and the dequantized weights feed the next block.
#include "stepdown/quant/gptq_method.h"

#include <malloc.h>

#include <charconv>
#include <map>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/block_calibration.h"
#include "stepdown/quant/calibration_data.h"
#include "stepdown/quant/gptq.h"
#include "stepdown/quant/gptq_grid.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {
namespace {

double parse_double(const std::string& key, const std::string& text) {
  size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(value > 0.0)) {
    raise<InvalidArgument>("--method-param {}={}: expected a positive number", key, text);
  }
  return value;
}

int64_t parse_int(const std::string& key, const std::string& text, int64_t min, int64_t max) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    raise<InvalidArgument>("--method-param {}={}: expected an integer in [{}, {}]", key, text, min, max);
  }
  return value;
}

GptqOptions parse_gptq_params(const std::map<std::string, std::string>& params) {
  GptqOptions options;
  // The method searches each group's clipping by default: it closed 7 to 40 more points of
  // RTN's KLD gap at 3 and 4 bits on stories260K and SmolLM2 (docs/quantize.md).
  // gptq_quantize's own default stays plain GPTQ, which the float64 reference checks.
  options.clip_search = true;
  for (const auto& [key, value] : params) {
    if (key == "damp") {
      options.damp = parse_double(key, value);
      if (options.damp > kMaxDamp) {
        raise<InvalidArgument>("--method-param damp={}: expected at most {}", value, kMaxDamp);
      }
    } else if (key == "block_size") {
      options.block_size = parse_int(key, value, 1, 1 << 16);
    } else if (key == "act_order") {
      options.act_order = parse_int(key, value, 0, 1) == 1;
    } else if (key == "clip") {
      options.clip_search = parse_int(key, value, 0, 1) == 1;
    } else if (key == "true_sequential") {
      options.true_sequential = parse_int(key, value, 0, 1) == 1;
    } else {
      raise<InvalidArgument>("--method-param {}: unknown to gptq (known: damp, block_size, act_order, clip, true_sequential)",
                             key);
    }
  }
  return options;
}

// Rounds W in place to the float format it will be stored in, so the blocks after it
// see the weights the output holds.
void round_to_float_format(std::span<float> w, DType dtype) {
  for (float& v : w) {
    if (dtype == DType::F16) v = f16_to_f32(f32_to_f16(v));
    if (dtype == DType::BF16) v = bf16_to_f32(f32_to_bf16(v));
  }
}

class GptqBlockMethod : public BlockMethod {
 public:
  GptqBlockMethod(std::map<std::string, const QuantFormat*> formats, GptqOptions options, MethodOutput& output)
      : formats_(std::move(formats)), options_(options), output_(output) {}

  StatisticsRequest statistics(int64_t layer, LinearInput input) const override {
    StatisticsRequest request;
    for (const Linear linear : kLinears) {
      if (linear_input(linear) == input && gptq_supports(format(layer, linear).dtype)) request.xtx = true;
    }
    return request;
  }

  CalibrationOrder order() const override {
    return options_.true_sequential ? CalibrationOrder::kSequential : CalibrationOrder::kParallel;
  }

  void process_block(BlockContext& block) override {
    for (const Linear linear : kLinears) quantize_linear(block, linear);
  }

  void process_linears(BlockContext& block, LinearInput input) override {
    for (const Linear linear : kLinears) {
      if (linear_input(linear) == input) quantize_linear(block, linear);
    }
  }

 private:
  void quantize_linear(BlockContext& block, Linear linear) {
    const std::string name = linear_tensor_name(block.layer(), linear);
    const QuantFormat& target = format(block.layer(), linear);
    std::span<float> w = block.weights(linear);
    if (target.dtype == DType::F32 || target.dtype == DType::F16 || target.dtype == DType::BF16) {
      round_to_float_format(w, target.dtype);
      return;
    }
    if (!gptq_supports(target.dtype)) {
      raise<Unsupported>("{}: gptq cannot write {}; choose a scheme of q4_0, q4_1, q5_0, q5_1, q8_0, int8, "
                         "int8-g128, int4-g* or int3-g*, or --override this tensor",
                         name, target.name);
    }

    // H = 2 X^T X / n over the calibration tokens.
    const InputStatistics& stats = block.statistics(linear_input(linear));
    std::vector<double> h(stats.xtx.size());
    const double scale = 2.0 / static_cast<double>(stats.rows);
    for (size_t i = 0; i < h.size(); ++i) h[i] = scale * stats.xtx[i];

    GptqResult result =
        gptq_quantize(w, block.rows(linear), block.cols(linear), std::move(h), target.dtype, options_, block.pool());
    std::copy(result.dequantized.begin(), result.dequantized.end(), w.begin());
    if (result.damp != options_.damp) {
      spdlog::warn("{}: GPTQ needed damp {} (requested {})", name, result.damp, options_.damp);
    }
    output_.manifest["layers"][name] = {{"format", target.name},
                                        {"damp", result.damp},
                                        {"dead_columns", result.dead_columns},
                                        {"output_error", result.output_error}};
    PreparedTensor prepared;
    prepared.bytes = std::move(result.bytes);
    output_.tensors[name] = std::move(prepared);
  }

  const QuantFormat& format(int64_t layer, Linear linear) const {
    const std::string name = linear_tensor_name(layer, linear);
    const auto it = formats_.find(name);
    if (it == formats_.end()) raise<InvalidArgument>("gptq: the model has no planned tensor {}", name);
    return *it->second;
  }

  std::map<std::string, const QuantFormat*> formats_;
  GptqOptions options_;
  MethodOutput& output_;
};

MethodOutput run_gptq(const MethodContext& context) {
  const QuantizeOptions& options = context.options;
  const GptqOptions gptq = parse_gptq_params(options.method_params);
  if (!options.calibration) {
    raise<InvalidArgument>("--method gptq needs --calib FILE (traffic JSONL or plain text) to estimate Hessians");
  }
  const CalibrationData data = load_calibration_data(
      context.model, *options.calibration, {options.calib_samples, options.calib_seq_len, options.seed});

  std::map<std::string, const QuantFormat*> formats;
  for (const TensorPlan& plan : context.plans) formats[plan.name] = plan.format;

  MethodOutput output;
  output.manifest = {{"method", "gptq"},
                     {"damp", gptq.damp},
                     {"block_size", gptq.block_size},
                     {"act_order", gptq.act_order},
                     {"true_sequential", gptq.true_sequential},
                     {"clip", gptq.clip_search},
                     {"calibration", data.to_json()},
                     {"layers", nlohmann::json::object()}};
  {
    model::ModelWeights weights = load_calibration_weights(context.model);
    GptqBlockMethod method(formats, gptq, output);
    run_block_calibration(weights, data, method, context.pool);
  }
  // The block matrices are a few MB each, so glibc serves them from the heap and keeps
  // their pages after they are freed. Returning them keeps the f32 copy, no longer used,
  // out of the resident set while the GGUF writer reads the source.
  malloc_trim(0);

  // Group size of every format GPTQ wrote, for the manifest.
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [name, layer] : output.manifest["layers"].items()) {
    const QuantFormat* f = find_quant_format(layer["format"].get<std::string>());
    const int64_t cols = context.model.tensor(name).cols();
    const std::optional<GptqGrid> grid = GptqGrid::for_dtype(f->dtype);
    const int64_t group = grid->group_size(cols);
    groups[f->name] = group == cols ? nlohmann::json("row") : nlohmann::json(group);
  }
  output.manifest["group_size"] = std::move(groups);
  return output;
}

}  // namespace

QuantMethod gptq_method() {
  return {"gptq",
          "GPTQ: column-wise rounding with Hessian error feedback from calibration data "
          "(--method-param damp=0.01, block_size=128, act_order=0|1, clip=1|0, true_sequential=1|0)",
          run_gptq};
}

}  // namespace stepdown::quant
