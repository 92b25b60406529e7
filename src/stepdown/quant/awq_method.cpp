// The "awq" method of `stepdown quantize`, run through the block calibration driver.
// For each block, with every earlier block already quantized:
//   1. Reference: the block's float output Y (n * L, D) on the first n calibration
//      sequences, and the inputs its linears read there.
//   2. Search, group by group (q/k/v, o, gate/up, down): for each alpha of the grid, the
//      group's weights become Q(W diag(s)) diag(1/s), which is what the group computes on
//      its unscaled input once 1/s is folded into the layer before it. The block runs
//      again, and the alpha with the least mean squared error against Y wins. The group
//      keeps its chosen quantized weights while the later groups search, so each search
//      measures the error the earlier ones left.
//   3. Fold: W diag(s) for every member, 1/s into the norm (or into v's rows for o, up's
//      rows for down). The block now holds the dequantized weights it will be stored with.
//   4. Clip: each linear's ratios per (row, group) come from its own output error on the
//      scaled input, and are kept only when they lower the block's output error.
//   5. Store: the quantized bytes go to the output, and their dequantized values and the
//      divided norms stay in the block, so the next block's inputs are those of the file.
// After the last block, the output head gets the clipping search of step 4.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/model/layer_ops.h"
#include "stepdown/quant/awq.h"
#include "stepdown/quant/block_calibration.h"
#include "stepdown/quant/calibrated_weights.h"
#include "stepdown/quant/calibration_data.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {
namespace {

const std::vector<std::string> kAwqParams = {"alpha", "grid", "duo_scaling", "clip", "search_tokens", "clip_tokens"};

struct AwqSettings {
  AwqOptions options;
  int64_t search_tokens = 1024;
};

// An integer parameter in [1, max], or `fallback` when absent.
int64_t count_param(const MethodContext& ctx, const std::string& key, int64_t fallback, int64_t max) {
  const double value = method_param_number(ctx, "awq", key, static_cast<double>(fallback));
  if (!(value >= 1.0 && value <= static_cast<double>(max)) || value != std::floor(value)) {
    raise<InvalidArgument>("--method-param {}={}: expected an integer from 1 to {} for method 'awq'", key,
                           ctx.options.method_params.at(key), max);
  }
  return static_cast<int64_t>(value);
}

// A 0/1 switch, or `fallback` when absent.
bool switch_param(const MethodContext& ctx, const std::string& key, bool fallback) {
  const double value = method_param_number(ctx, "awq", key, fallback ? 1.0 : 0.0);
  if (value != 0.0 && value != 1.0) {
    raise<InvalidArgument>("--method-param {}={}: expected 0 or 1 for method 'awq'", key,
                           ctx.options.method_params.at(key));
  }
  return value == 1.0;
}

AwqSettings parse_awq_settings(const MethodContext& ctx) {
  check_method_params(ctx, "awq", kAwqParams);
  AwqSettings settings;
  AwqOptions& options = settings.options;
  // Each grid point runs the block once per group. The cap is 50 times the default grid,
  // which takes about 4 minutes on SmolLM2 with 2 threads.
  options.grid = count_param(ctx, "grid", 20, 1000);
  options.duo_scaling = switch_param(ctx, "duo_scaling", false);
  // Clipping is on by default, as in the AWQ authors' code (docs/quantize.md has what it
  // adds on stories260K and SmolLM2).
  options.clip = switch_param(ctx, "clip", true);
  // Both are capped by the calibration batch's tokens, so any larger value means all of them.
  options.clip_tokens = count_param(ctx, "clip_tokens", 128, int64_t{1} << 40);
  settings.search_tokens = count_param(ctx, "search_tokens", 1024, int64_t{1} << 40);
  if (ctx.options.method_params.contains("alpha")) {
    const double alpha = method_param_number(ctx, "awq", "alpha", 0);
    if (!(alpha >= 0.0 && alpha <= 1.0)) {
      raise<InvalidArgument>("--method-param alpha={}: expected a number in [0, 1]",
                             ctx.options.method_params.at("alpha"));
    }
    options.alpha = static_cast<float>(alpha);
  }
  return settings;
}

bool is_float_format(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

// The linears of each group and the input they read, in the order AWQ visits them.
struct GroupShape {
  const char* name;
  std::vector<Linear> members;
  LinearInput input;
};
const std::array<GroupShape, 4> kGroups = {{
    {"qkv", {Linear::kAttnQ, Linear::kAttnK, Linear::kAttnV}, LinearInput::kAttnNorm},
    {"o", {Linear::kAttnOutput}, LinearInput::kAttnHeads},
    {"gate_up", {Linear::kFfnGate, Linear::kFfnUp}, LinearInput::kFfnNorm},
    {"down", {Linear::kFfnDown}, LinearInput::kFfnAct},
}};

// out (rows, cols) = Q(W diag(s)) diag(1/s), with Q the round trip through `dtype`.
void fake_quantize_scaled(const FloatMatrix& w, std::span<const float> scales, DType dtype, std::span<float> out,
                          ThreadPool& pool) {
  const size_t row_bytes = dtype_bytes(dtype, w.cols);
  pool.parallel_for(w.rows, [&](int64_t begin, int64_t end) {
    std::vector<float> scaled(static_cast<size_t>(w.cols));
    std::vector<std::byte> bytes(row_bytes);
    for (int64_t r = begin; r < end; ++r) {
      const float* source = w.row(r);
      for (int64_t j = 0; j < w.cols; ++j) scaled[static_cast<size_t>(j)] = source[j] * scales[static_cast<size_t>(j)];
      quantize_row_any(dtype, scaled.data(), bytes.data(), w.cols);
      float* target = out.data() + r * w.cols;
      kernels::dequantize_row(dtype, bytes.data(), target, w.cols);
      for (int64_t j = 0; j < w.cols; ++j) target[j] /= scales[static_cast<size_t>(j)];
    }
  });
}

double mean_squared_difference(const model::Activations& a, const model::Activations& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = static_cast<double>(a.data[i]) - b.data[i];
    sum += d * d;
  }
  return a.data.empty() ? 0.0 : sum / static_cast<double>(a.data.size());
}

// S (count, C): every (rows / count)-th row of x, so the sample spans every sequence.
model::Activations spread_rows(const model::Activations& x, int64_t count) {
  model::Activations sample;
  const int64_t n = std::min(count, x.rows);
  sample.resize(n, x.cols);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x.row(i * x.rows / n);
    std::copy(row, row + x.cols, sample.row(i));
  }
  return sample;
}

// The state AWQ keeps for one block while it searches, folds and clips.
struct BlockState {
  int64_t sequences = 0;                       // the first n calibration sequences
  model::Activations reference;                // Y (n * L, D) with the float weights
  std::array<model::Activations, 4> inputs;    // per LinearInput, (n * L, width), float weights
  std::array<FloatMatrix, 7> weights;          // per Linear: W, then W diag(s) once folded
  std::array<std::vector<float>, 4> scales;    // per group, (C)
  std::array<std::vector<float>, 4> shared;    // per group, per kv channel (o only)
  std::array<std::vector<std::byte>, 7> bytes; // per Linear, the stored format
  model::Activations output;                   // scratch for forward()
  nlohmann::json record;                       // this block's manifest entry
};

class AwqBlockMethod : public BlockMethod {
 public:
  // `weights` are the driver's. The method reads the output norm and head from them.
  AwqBlockMethod(const model::ModelWeights& weights, std::map<std::string, const QuantFormat*> formats,
                 AwqSettings settings, MethodOutput& output)
      : weights_(weights), formats_(std::move(formats)), settings_(settings), output_(output) {}

  StatisticsRequest statistics(int64_t, LinearInput) const override {
    StatisticsRequest request;
    request.abs_mean = true;
    return request;
  }

  void process_block(BlockContext& block) override {
    BlockState state;
    state.sequences =
        std::clamp<int64_t>((settings_.search_tokens + block.seq_len() - 1) / block.seq_len(), 1, block.samples());
    capture_reference(block, state);

    for (size_t g = 0; g < kGroups.size(); ++g) search_group(block, state, g);

    fold_scales(block, state);
    for (const Linear linear : kLinears) store(block, state, linear, state.weights[static_cast<size_t>(linear)]);
    double block_error = block_output_error(block, state);
    state.record["block_mse_before_clip"] = block_error;

    if (settings_.options.clip) {
      for (size_t g = 0; g < kGroups.size(); ++g) block_error = clip_group(block, state, g, block_error);
      state.record["block_mse_after_clip"] = block_error;
    }

    for (const Linear linear : kLinears) {
      output_.tensors[linear_tensor_name(block.layer(), linear)].bytes =
          std::move(state.bytes[static_cast<size_t>(linear)]);
    }
    output_.manifest["layers"].push_back(std::move(state.record));
    if (settings_.options.clip && block.layer() + 1 == block.config().n_layers) {
      clip_output_head(block, state.sequences);
    }
  }

 private:
  // Y and the linears' inputs on the searched sequences, and a copy of W, all with the
  // block's float weights.
  void capture_reference(BlockContext& block, BlockState& state) {
    const auto keep_inputs = [&](int64_t, std::string_view name, const model::Activations& x) {
      for (const LinearInput input : kLinearInputs) {
        if (name != input_name(input)) continue;
        model::Activations& kept = state.inputs[static_cast<size_t>(input)];
        const int64_t rows = kept.rows;
        kept.resize(rows + x.rows, x.cols);
        std::copy(x.data.begin(), x.data.end(), kept.data.begin() + rows * x.cols);
      }
    };
    block.forward(0, state.sequences, state.reference, keep_inputs);
    for (const Linear linear : kLinears) {
      const std::span<const float> w = block.weights(linear);
      state.weights[static_cast<size_t>(linear)] = {block.rows(linear), block.cols(linear), {w.begin(), w.end()}};
    }
  }

  double block_output_error(BlockContext& block, BlockState& state) {
    block.forward(0, state.sequences, state.output);
    return mean_squared_difference(state.output, state.reference);
  }

  // Chooses group g's alpha by the block's output error, and leaves the group's members at
  // Q(W diag(s)) diag(1/s) for that alpha.
  void search_group(BlockContext& block, BlockState& state, size_t g) {
    const GroupShape& group = kGroups[g];
    const int64_t layer = block.layer();
    const model::ModelConfig& config = block.config();
    const HeadSharing heads{config.n_heads, config.n_kv_heads, config.head_dim};
    const HeadSharing* sharing = group.input == LinearInput::kAttnHeads ? &heads : nullptr;
    const std::vector<double>& statistic = block.statistics(group.input).abs_mean;
    const std::vector<float> mean_abs(statistic.begin(), statistic.end());
    const auto set_effective = [&](std::span<const float> s) {
      for (const Linear linear : group.members) {
        fake_quantize_scaled(state.weights[static_cast<size_t>(linear)], s, format(layer, linear).dtype,
                             block.weights(linear), block.pool());
      }
    };

    const bool quantized = std::any_of(group.members.begin(), group.members.end(),
                                       [&](Linear l) { return !is_float_format(format(layer, l).dtype); });
    if (!quantized && !settings_.options.alpha) {
      // Scales cannot lower a float format's error, so a group of float members keeps s = 1.
      state.scales[g].assign(mean_abs.size(), 1.0f);
      if (sharing != nullptr) state.shared[g] = average_shared_heads(state.scales[g], heads);
      set_effective(state.scales[g]);
      state.record[group.name] = {{"alpha", 0.0}, {"skipped", "no member is stored in an integer format"}};
      return;
    }

    std::vector<const FloatMatrix*> matrices;
    for (const Linear linear : group.members) matrices.push_back(&state.weights[static_cast<size_t>(linear)]);
    const std::vector<float> mean_abs_weight =
        settings_.options.duo_scaling ? normalized_mean_abs_columns(matrices) : std::vector<float>{};
    const AlphaChoice choice = search_awq_alpha(
        [&](std::span<const float> s) {
          set_effective(s);
          return block_output_error(block, state);
        },
        mean_abs, mean_abs_weight, settings_.options, sharing);
    set_effective(choice.scales);
    state.scales[g] = choice.scales;
    state.shared[g] = choice.shared_scales;
    state.record[group.name] = {{"alpha", choice.alpha},
                                {"block_mse", *std::min_element(choice.errors.begin(), choice.errors.end())}};
    if (!settings_.options.alpha) state.record[group.name]["rtn_block_mse"] = choice.errors.front();
  }

  // W diag(s) for every member and 1/s into the layer before, in the block and the output.
  void fold_scales(BlockContext& block, BlockState& state) {
    for (size_t g = 0; g < kGroups.size(); ++g) {
      for (const Linear linear : kGroups[g].members) {
        scale_columns(state.weights[static_cast<size_t>(linear)], state.scales[g]);
      }
    }
    model::BlockWeights& weights = block.block();
    divide_elements(weights.attn_norm, state.scales[0]);
    // The attention heads are weighted sums of v's rows, so o's scales fold into them.
    divide_rows(state.weights[static_cast<size_t>(Linear::kAttnV)], state.shared[1]);
    if (!weights.attn_v_bias.empty()) divide_elements(weights.attn_v_bias, state.shared[1]);
    divide_elements(weights.ffn_norm, state.scales[2]);
    // act(gate) * up is linear in up's output, so down's scales fold into up's rows.
    divide_rows(state.weights[static_cast<size_t>(Linear::kFfnUp)], state.scales[3]);

    const std::string prefix = "blk." + std::to_string(block.layer()) + ".";
    output_.tensors[prefix + "attn_norm.weight"].values = weights.attn_norm;
    output_.tensors[prefix + "ffn_norm.weight"].values = weights.ffn_norm;
    if (!weights.attn_v_bias.empty()) output_.tensors[prefix + "attn_v.bias"].values = weights.attn_v_bias;
  }

  // Quantizes w into the linear's format, keeps the bytes in `state` and their values in
  // the block.
  void store(BlockContext& block, BlockState& state, Linear linear, const FloatMatrix& w) {
    const DType dtype = format(block.layer(), linear).dtype;
    std::vector<std::byte> bytes = quantize_matrix(w, dtype, block.pool());
    const std::span<float> target = block.weights(linear);
    const size_t row_bytes = dtype_bytes(dtype, w.cols);
    for (int64_t r = 0; r < w.rows; ++r) {
      kernels::dequantize_row(dtype, bytes.data() + static_cast<size_t>(r) * row_bytes, target.data() + r * w.cols,
                              w.cols);
    }
    state.bytes[static_cast<size_t>(linear)] = std::move(bytes);
  }

  // Clips each member of group g. The ratios per (row, group) come from the linear's own
  // output error on the scaled input, and are kept only when they lower the block's output
  // error (on stories260K that rejects k's clipping in every block). Returns the block's
  // error after the group.
  double clip_group(BlockContext& block, BlockState& state, size_t g, double block_error) {
    const model::Activations x = divide_columns(
        spread_rows(state.inputs[static_cast<size_t>(kGroups[g].input)], settings_.options.clip_tokens),
        state.scales[g]);
    for (const Linear linear : kGroups[g].members) {
      const DType dtype = format(block.layer(), linear).dtype;
      if (is_float_format(dtype)) continue;
      const FloatMatrix& unclipped = state.weights[static_cast<size_t>(linear)];
      FloatMatrix clipped = unclipped;
      const double ratio = clip_weights(clipped, dtype, x, settings_.options, block.pool());
      store(block, state, linear, clipped);
      const double error = block_output_error(block, state);
      const bool lowers_error = error < block_error;
      state.record["clip"][linear_tensor_name(block.layer(), linear)] = {{"mean_ratio", ratio}, {"kept", lowers_error}};
      if (lowers_error) {
        block_error = error;
      } else {
        store(block, state, linear, unclipped);
      }
    }
    return block_error;
  }

  const QuantFormat& format(int64_t layer, Linear linear) const {
    const std::string name = linear_tensor_name(layer, linear);
    const auto it = formats_.find(name);
    if (it == formats_.end()) raise<InvalidArgument>("awq: the model has no planned tensor {}", name);
    return *it->second;
  }

  // The output head is a linear too, reading output_norm(last block's output), so it gets
  // the same clipping search. Its scales are not searched, because a tied head is also the
  // embedding, and no layer before the embedding could absorb 1/s. The tied matrix's
  // embedding rows take the clipping chosen for the head. On stories260K at int4-g128 that
  // lowered mean KLD from 0.216 to 0.184 (docs/quantize.md).
  void clip_output_head(BlockContext& block, int64_t sequences) {
    const model::ModelConfig& config = block.config();
    const std::string name = config.tied_embeddings ? "token_embd.weight" : "output.weight";
    const auto planned = formats_.find(name);
    if (planned == formats_.end() || is_float_format(planned->second->dtype)) return;
    const DType dtype = planned->second->dtype;

    // X (S, D) = output_norm of the last block's output, with the block's stored weights.
    model::Activations last;
    block.forward(0, sequences, last);
    const model::Activations sample = spread_rows(last, settings_.options.clip_tokens);
    model::Activations x;
    x.resize(sample.rows, sample.cols);
    for (int64_t t = 0; t < sample.rows; ++t) {
      model::rms_norm(sample.row(t), weights_.output_norm.data(), x.row(t), sample.cols,
                      static_cast<float>(config.rms_eps));
    }

    // W (V, D) in f32, from the source file's format.
    const kernels::WeightMatrix& source = weights_.output;
    FloatMatrix head{source.rows, source.cols, std::vector<float>(static_cast<size_t>(source.rows * source.cols))};
    for (int64_t r = 0; r < head.rows; ++r) {
      kernels::dequantize_row(source.dtype, source.data + static_cast<size_t>(r) * source.row_stride, head.row(r),
                              head.cols);
    }
    spdlog::info("awq: clipping {} ({} x {}) on {} tokens", name, head.rows, head.cols, x.rows);
    const double ratio = clip_weights(head, dtype, x, settings_.options, block.pool());
    output_.tensors[name].bytes = quantize_matrix(head, dtype, block.pool());
    output_.manifest["output_head"] = {{"tensor", name}, {"clip_mean_ratio", ratio}};
  }

  const model::ModelWeights& weights_;
  std::map<std::string, const QuantFormat*> formats_;
  AwqSettings settings_;
  MethodOutput& output_;
};

MethodOutput run_awq(const MethodContext& ctx) {
  const AwqSettings settings = parse_awq_settings(ctx);
  const QuantizeOptions& options = ctx.options;
  if (!options.calibration) {
    raise<InvalidArgument>("--method awq needs calibration data: give --calib FILE (traffic JSONL or plain text)");
  }
  const CalibrationOptions sampling{options.calib_samples, options.calib_seq_len, options.seed};
  const CalibrationData data = load_calibration_data(ctx.model, *options.calibration, sampling);
  nlohmann::json calibration = data.to_json();
  calibration["file"] = options.calibration->string();
  calibration["sequences"] = data.samples;

  if (data.samples * data.seq_len < settings.search_tokens) {
    // Measured: SmolLM2 at int4-g128 calibrated on 2 x 64 chat tokens cut RTN's KLD on a
    // story from 0.368 to 0.145, yet answered "What is the capital of France?" wrongly,
    // where RTN did not.
    spdlog::warn("awq: the scale search sees only {} calibration tokens, fewer than search_tokens={}. With so few, "
                 "the scales can fit the calibration text and hurt other text. Give more --calib-samples",
                 data.samples * data.seq_len, settings.search_tokens);
  }

  std::map<std::string, const QuantFormat*> formats;
  for (const TensorPlan& plan : ctx.plans) formats[plan.name] = plan.format;

  MethodOutput output;
  output.manifest = {{"method", "awq"},
                     {"grid", settings.options.grid},
                     {"duo_scaling", settings.options.duo_scaling},
                     {"clip", settings.options.clip},
                     {"search_tokens", settings.search_tokens},
                     {"clip_tokens", settings.options.clip_tokens},
                     {"objective", "mean squared error of each block's output on the first calibration sequences"},
                     {"calibration", std::move(calibration)},
                     {"layers", nlohmann::json::array()}};
  if (settings.options.alpha) output.manifest["alpha"] = *settings.options.alpha;
  model::ModelWeights weights = load_calibration_weights(ctx.model);
  AwqBlockMethod method(weights, formats, settings, output);
  run_block_calibration(weights, data, method, ctx.pool);
  return output;
}

}  // namespace

QuantMethod awq_method() {
  return QuantMethod{"awq",
                     "activation-aware scales per linear group chosen by each block's output error, folded into the "
                     "previous layer, then RTN with a clipping search "
                     "(params: alpha, grid, duo_scaling, clip, search_tokens, clip_tokens)",
                     run_awq};
}

}  // namespace stepdown::quant
