// The block-by-block calibration driver on stories260K (dim 64, FFN 172, 5 blocks):
// statistics and block inputs against a plain forward pass of the whole model, and
// weight changes reaching the next block.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/transformer.h"
#include "stepdown/quant/block_calibration.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_path() { return test::shared_dir() / "models" / "stories260K" / "stories260K.bin"; }

// Sequences of random ids below 512, BOS first.
CalibrationData random_batch(int64_t samples, int64_t seq_len, uint32_t seed) {
  CalibrationData data;
  data.samples = samples;
  data.seq_len = seq_len;
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < samples * seq_len; ++i) {
    data.tokens.push_back(i % seq_len == 0 ? 1 : static_cast<text::TokenId>(3 + rng() % 509));
  }
  return data;
}

// Named intermediates of every block and sequence from a plain forward pass:
// captured[layer][name] is (samples * seq_len, width).
using Captured = std::vector<std::map<std::string, std::vector<float>, std::less<>>>;

Captured plain_forward(const model::ModelWeights& weights, const CalibrationData& data) {
  ThreadPool pool(1);
  model::Transformer transformer(weights, pool);
  Captured captured(static_cast<size_t>(weights.config.n_layers) + 1);
  transformer.set_observer([&](int64_t layer, std::string_view name, const model::Activations& x) {
    auto& slot = captured[static_cast<size_t>(layer + 1)][std::string(name)];
    slot.insert(slot.end(), x.data.begin(), x.data.end());
  });
  model::Activations logits;
  for (int64_t s = 0; s < data.samples; ++s) {
    model::KVCache cache(weights.config, data.seq_len);
    transformer.forward(data.sequence(s), cache, logits);
  }
  return captured;
}

// Records what the driver shows it, and optionally zeroes ffn_down of block 0.
class RecordingMethod : public BlockMethod {
 public:
  explicit RecordingMethod(bool zero_down_of_block0) : zero_down_(zero_down_of_block0) {}

  StatisticsRequest statistics(int64_t, LinearInput input) const override {
    StatisticsRequest r;
    r.xtx = true;
    r.abs_mean = true;
    r.abs_max = input != LinearInput::kAttnHeads;
    r.square_mean = true;
    return r;
  }

  void process_block(BlockContext& block) override {
    inputs.push_back(block.inputs().data);
    std::map<LinearInput, InputStatistics> stats;
    for (const LinearInput input : kLinearInputs) stats[input] = block.statistics(input);
    collected.push_back(std::move(stats));
    model::Activations out;
    block.forward(1, 1, out);
    second_output.push_back(out.data);
    if (zero_down_ && block.layer() == 0) {
      std::span<float> w = block.weights(Linear::kFfnDown);
      std::fill(w.begin(), w.end(), 0.0f);
    }
  }

  std::vector<std::vector<float>> inputs;
  std::vector<std::map<LinearInput, InputStatistics>> collected;
  std::vector<std::vector<float>> second_output;

 private:
  bool zero_down_;
};

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

TEST(BlockCalibration, InputsAndStatisticsMatchPlainForward) {
  const io::ModelFile file = io::open_model_file(stories_path());
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::F32);
  const CalibrationData data = random_batch(3, 20, 5);
  const Captured reference = plain_forward(weights, data);

  ThreadPool pool(2);
  RecordingMethod method(false);
  run_block_calibration(weights, data, method, pool);
  const int64_t n_layers = weights.config.n_layers;
  ASSERT_EQ(static_cast<int64_t>(method.inputs.size()), n_layers);

  for (int64_t layer = 0; layer < n_layers; ++layer) {
    const auto& expected_input = layer == 0 ? reference[0].at("embd") : reference[layer].at("block_out");
    EXPECT_LT(max_abs_diff(method.inputs[layer], expected_input), 1e-5) << "block " << layer;

    // The second sequence's block output from BlockContext::forward.
    const auto& block_out = reference[layer + 1].at("block_out");
    const size_t width = static_cast<size_t>(weights.config.dim * data.seq_len);
    EXPECT_LT(max_abs_diff(method.second_output[layer], std::span(block_out).subspan(width, width)), 1e-5)
        << "block " << layer;

    for (const LinearInput input : kLinearInputs) {
      const std::vector<float>& x = reference[layer + 1].at(std::string(input_name(input)));
      const InputStatistics& s = method.collected[layer].at(input);
      const int64_t n = s.width;
      const int64_t rows = static_cast<int64_t>(x.size()) / n;
      ASSERT_EQ(s.rows, rows);
      const std::string where = fmt::format("block {} {}", layer, input_name(input));

      // xtx against a float64 sum; abs_max is absent for attn_heads, as requested.
      double worst = 0.0;
      double scale = 0.0;
      for (int64_t i = 0; i < n; i += 7) {
        for (int64_t j = 0; j < n; j += 5) {
          double sum = 0.0;
          for (int64_t t = 0; t < rows; ++t) sum += double(x[t * n + i]) * x[t * n + j];
          worst = std::max(worst, std::abs(sum - s.xtx[static_cast<size_t>(i * n + j)]));
          scale = std::max(scale, std::abs(sum));
        }
      }
      EXPECT_LT(worst, 1e-4 * scale + 1e-9) << where;
      EXPECT_EQ(s.abs_max.empty(), input == LinearInput::kAttnHeads) << where;

      for (int64_t c = 0; c < n; c += 3) {
        double abs_sum = 0.0;
        double square_sum = 0.0;
        float max_abs = 0.0f;
        for (int64_t t = 0; t < rows; ++t) {
          abs_sum += std::abs(double(x[t * n + c]));
          square_sum += double(x[t * n + c]) * x[t * n + c];
          max_abs = std::max(max_abs, std::abs(x[t * n + c]));
        }
        EXPECT_NEAR(s.abs_mean[c], abs_sum / rows, 1e-4 * abs_sum / rows + 1e-9) << where << " channel " << c;
        EXPECT_NEAR(s.square_mean[c], square_sum / rows, 1e-4 * square_sum / rows + 1e-9) << where;
        if (!s.abs_max.empty()) EXPECT_NEAR(s.abs_max[c], max_abs, 1e-5 * max_abs) << where;
      }
    }
  }
}

TEST(BlockCalibration, ChangedWeightsReachTheNextBlock) {
  const io::ModelFile file = io::open_model_file(stories_path());
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::F32);
  const CalibrationData data = random_batch(2, 16, 9);

  ThreadPool pool(2);
  RecordingMethod method(true);
  run_block_calibration(weights, data, method, pool);

  // The weights the driver ran with now have ffn_down of block 0 zeroed, so a plain
  // forward pass with them gives the inputs the driver showed every later block.
  const kernels::WeightMatrix& down = weights.blocks[0].ffn_down;
  const float* w = reinterpret_cast<const float*>(down.data);
  EXPECT_EQ(*std::max_element(w, w + down.rows * down.cols), 0.0f);
  const Captured reference = plain_forward(weights, data);
  EXPECT_LT(max_abs_diff(reference[1].at("block_out"), reference[1].at("ffn_inp")), 1e-6);
  for (int64_t layer = 1; layer < weights.config.n_layers; ++layer) {
    EXPECT_LT(max_abs_diff(method.inputs[layer], reference[layer].at("block_out")), 1e-5) << "block " << layer;
  }
}

// Sequential order: zeroes v once q/k/v are calibrated and up once gate/up are, and
// records the per-channel mean |x| of each input it is shown.
class ZeroingSequentialMethod : public BlockMethod {
 public:
  CalibrationOrder order() const override { return CalibrationOrder::kSequential; }

  StatisticsRequest statistics(int64_t, LinearInput) const override {
    StatisticsRequest r;
    r.abs_mean = true;
    return r;
  }

  void process_linears(BlockContext& block, LinearInput input) override {
    seen.emplace_back(block.layer(), input);
    abs_mean[{block.layer(), input}] = block.statistics(input).abs_mean;
    for (const LinearInput other : kLinearInputs) {
      if (other != input) EXPECT_THROW(block.statistics(other), InvalidArgument);
    }
    if (input == LinearInput::kAttnNorm) zero(block.weights(Linear::kAttnV));
    if (input == LinearInput::kFfnNorm) zero(block.weights(Linear::kFfnUp));
  }

  std::vector<std::pair<int64_t, LinearInput>> seen;
  std::map<std::pair<int64_t, LinearInput>, std::vector<double>> abs_mean;

 private:
  static void zero(std::span<float> w) { std::fill(w.begin(), w.end(), 0.0f); }
};

TEST(BlockCalibration, SequentialOrderSeesEarlierLinearsQuantized) {
  const io::ModelFile file = io::open_model_file(stories_path());
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::F32);
  const CalibrationData data = random_batch(3, 12, 4);

  ThreadPool pool(2);
  ZeroingSequentialMethod method;
  run_block_calibration(weights, data, method, pool);
  const int64_t n_layers = weights.config.n_layers;

  ASSERT_EQ(static_cast<int64_t>(method.seen.size()), 4 * n_layers);
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    for (size_t i = 0; i < kLinearInputs.size(); ++i) {
      EXPECT_EQ(method.seen[static_cast<size_t>(layer) * 4 + i], std::pair(layer, kLinearInputs[i]));
    }
    // o saw the heads of a zero v and down the activation of a zero up: exactly zero,
    // which the parallel order (float weights while collecting) would not give.
    for (const LinearInput input : {LinearInput::kAttnHeads, LinearInput::kFfnAct}) {
      const std::vector<double>& m = method.abs_mean.at({layer, input});
      EXPECT_EQ(*std::max_element(m.begin(), m.end()), 0.0) << "block " << layer << " " << input_name(input);
    }
  }

  // A plain forward pass with the zeroed weights shows every block the inputs the
  // driver showed it.
  const Captured reference = plain_forward(weights, data);
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    for (const LinearInput input : {LinearInput::kAttnNorm, LinearInput::kFfnNorm}) {
      const std::vector<float>& x = reference[layer + 1].at(std::string(input_name(input)));
      const std::vector<double>& got = method.abs_mean.at({layer, input});
      const int64_t width = static_cast<int64_t>(got.size());
      const int64_t rows = static_cast<int64_t>(x.size()) / width;
      for (int64_t c = 0; c < width; ++c) {
        double sum = 0.0;
        for (int64_t t = 0; t < rows; ++t) sum += std::abs(double(x[t * width + c]));
        EXPECT_NEAR(got[c], sum / rows, 1e-5 * sum / rows + 1e-9) << "block " << layer << " " << input_name(input);
      }
    }
  }
}

TEST(BlockCalibration, CalibrationWeightsEqualF32Conversion) {
  const io::ModelFile file = io::open_model_file(stories_path());
  const model::ModelWeights expected = model::load_weights(file, model::WeightConversion::F32);
  const model::ModelWeights weights = load_calibration_weights(file);
  for (size_t layer = 0; layer < weights.blocks.size(); ++layer) {
    const model::BlockWeights& a = weights.blocks[layer];
    const model::BlockWeights& b = expected.blocks[layer];
    for (const auto member : {&model::BlockWeights::attn_q, &model::BlockWeights::attn_k, &model::BlockWeights::attn_v,
                              &model::BlockWeights::attn_output, &model::BlockWeights::ffn_gate,
                              &model::BlockWeights::ffn_up, &model::BlockWeights::ffn_down}) {
      const kernels::WeightMatrix& got = a.*member;
      const kernels::WeightMatrix& want = b.*member;
      ASSERT_EQ(got.dtype, DType::F32);
      ASSERT_EQ(got.rows * got.cols, want.rows * want.cols);
      EXPECT_EQ(std::memcmp(got.data, want.data, static_cast<size_t>(got.rows * got.cols) * sizeof(float)), 0)
          << "block " << layer;
    }
  }
  EXPECT_EQ(weights.token_embd.data, file.tensor("token_embd.weight").data);  // left in the file
}

TEST(BlockCalibration, MappedWeightsAreRejected) {
  const io::ModelFile file = io::open_model_file(stories_path());
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::NONE);
  ThreadPool pool(1);
  RecordingMethod method(false);
  EXPECT_THROW(run_block_calibration(weights, random_batch(1, 8, 1), method, pool), InvalidArgument);
}

TEST(BlockCalibration, SequencesLongerThanContextAreRejected) {
  const io::ModelFile file = io::open_model_file(stories_path());
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::F32);
  ThreadPool pool(1);
  RecordingMethod method(false);
  const int64_t context = weights.config.context_length;
  ASSERT_GT(context, 0);
  try {
    run_block_calibration(weights, random_batch(1, context + 1, 1), method, pool);
    FAIL() << "a sequence of context + 1 tokens was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(context + 1) + " tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--calib-seq-len"), std::string::npos) << e.what();
  }
}

TEST(BlockCalibration, MissingStatisticsAreAnError) {
  class AsksNothing : public BlockMethod {
   public:
    StatisticsRequest statistics(int64_t, LinearInput) const override { return {}; }
    void process_block(BlockContext& block) override {
      EXPECT_THROW(block.statistics(LinearInput::kFfnAct), InvalidArgument);
      model::Activations out;
      EXPECT_THROW(block.forward(1, 5, out), InvalidArgument);
      ++blocks;
    }
    int blocks = 0;
  };
  const io::ModelFile file = io::open_model_file(stories_path());
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::F32);
  ThreadPool pool(1);
  AsksNothing method;
  run_block_calibration(weights, random_batch(2, 8, 2), method, pool);
  EXPECT_EQ(method.blocks, weights.config.n_layers);
}

TEST(BlockCalibration, LinearTensorNamesRoundTrip) {
  for (const Linear linear : kLinears) {
    const std::string name = linear_tensor_name(12, linear);
    const auto parsed = parse_linear_tensor_name(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(parsed->first, 12);
    EXPECT_EQ(parsed->second, linear);
  }
  EXPECT_FALSE(parse_linear_tensor_name("blk.1.attn_norm.weight").has_value());
  EXPECT_FALSE(parse_linear_tensor_name("token_embd.weight").has_value());
  EXPECT_FALSE(parse_linear_tensor_name("blk.x.attn_q.weight").has_value());
  EXPECT_EQ(linear_input(Linear::kAttnOutput), LinearInput::kAttnHeads);
  EXPECT_EQ(linear_input(Linear::kFfnDown), LinearInput::kFfnAct);
}

}  // namespace
}  // namespace stepdown::quant
