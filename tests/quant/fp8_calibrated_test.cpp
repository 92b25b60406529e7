// FP8 E4M3 per-tensor scales, and the "fp8" method's per-channel and per-tensor variants
// on stories260K scored against f32 in memory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "io/io_test_util.h"
#include "quant/scaling_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/eval/perplexity.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/fp8_calibrated.h"
#include "stepdown/quant/in_memory_model.h"
#include "stepdown/text/model_tokenizer.h"

namespace stepdown::quant {
namespace {

float row_scale(const std::vector<std::byte>& bytes, size_t row_bytes, int64_t r) {
  float scale = 0.0f;
  std::memcpy(&scale, bytes.data() + static_cast<size_t>(r) * row_bytes, sizeof scale);
  return scale;
}

TEST(Fp8PerTensor, OneScaleAndBoundedError) {
  FloatMatrix w = test::random_matrix(6, 40, 31);
  w.row(4)[7] = -9.0f;  // the tensor's absmax
  const std::vector<std::byte> bytes = quantize_fp8_per_tensor(w);
  const size_t row_bytes = dtype_bytes(DType::FP8_E4M3, 40);
  ASSERT_EQ(bytes.size(), 6 * row_bytes);
  for (int64_t r = 0; r < 6; ++r) EXPECT_FLOAT_EQ(row_scale(bytes, row_bytes, r), 9.0f / 448.0f) << "row " << r;

  std::vector<float> decoded(40);
  for (int64_t r = 0; r < 6; ++r) {
    kernels::dequantize_row(DType::FP8_E4M3, bytes.data() + r * row_bytes, decoded.data(), 40);
    for (int64_t j = 0; j < 40; ++j) {
      const float x = w.row(r)[j];
      // E4M3 keeps 3 mantissa bits: relative error <= 2^-4 for normals, and an absolute
      // step of 2^-9 * scale below 2^-6 * scale (subnormals).
      const float bound = std::max(std::fabs(x) * 0.0625f, 9.0f / 448.0f * 0x1p-10f);
      EXPECT_NEAR(decoded[static_cast<size_t>(j)], x, bound) << "(" << r << ", " << j << ")";
    }
  }
  kernels::dequantize_row(DType::FP8_E4M3, bytes.data() + 4 * row_bytes, decoded.data(), 40);
  EXPECT_FLOAT_EQ(decoded[7], -9.0f);
}

TEST(Fp8PerTensor, AllZeroTensorHasZeroScale) {
  const FloatMatrix w{2, 8, std::vector<float>(16, 0.0f)};
  const std::vector<std::byte> bytes = quantize_fp8_per_tensor(w);
  const size_t row_bytes = dtype_bytes(DType::FP8_E4M3, 8);
  EXPECT_EQ(row_scale(bytes, row_bytes, 0), 0.0f);
  std::vector<float> decoded(8, 1.0f);
  kernels::dequantize_row(DType::FP8_E4M3, bytes.data() + row_bytes, decoded.data(), 8);
  for (float v : decoded) EXPECT_EQ(v, 0.0f);
}

double fp8_kld(const std::map<std::string, std::string>& params, ThreadPool& pool, const std::filesystem::path& text) {
  QuantizeOptions options;
  options.model = test::stories_model();
  options.tokenizer = test::stories_tokenizer();
  options.scheme = "q8_0";
  options.method = "fp8";
  options.method_params = params;
  const InMemoryModel candidate = quantize_model_in_memory(options, DType::FP8_E4M3, pool);
  EXPECT_EQ(candidate.file.find_tensor("blk.2.ffn_down.weight")->dtype, DType::FP8_E4M3);

  io::OpenOptions open;
  open.tokenizer_path = test::stories_tokenizer();
  const io::ModelFile base_file = io::open_model_file(test::stories_model(), open);
  const model::ModelWeights base_weights = model::load_weights(base_file);
  const model::ModelWeights candidate_weights = model::load_weights(candidate.file);
  model::Transformer base(base_weights, pool);
  model::Transformer quantized(candidate_weights, pool);
  const auto tokenizer = text::load_model_tokenizer(base_file);
  std::ifstream in(text);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto tokens = tokenizer->encode(content, /*add_special=*/true);
  eval::PerplexityOptions ppl;
  ppl.ctx = 128;
  eval::PerplexityResult result;
  const std::optional<text::TokenId> bos = eval::adds_bos(*tokenizer) ? tokenizer->bos_id() : std::nullopt;
  return eval::kl_divergence(base, quantized, tokens, bos, ppl, result).mean;
}

// Measured mean KLD on six copies of this text: per channel 0.00787, per tensor 0.00791.
// stories260K's weights have few outlier rows, so one scale per tensor costs little.
TEST(Fp8Method, Stories260KChannelAndTensorKld) {
  test::ScratchDir dir("fp8_kld");
  const std::filesystem::path text = test::write_text(dir / "eval.txt", test::kEvaluationStory, 6);
  ThreadPool pool(2);
  const double channel = fp8_kld({{"granularity", "channel"}}, pool, text);
  const double tensor = fp8_kld({{"granularity", "tensor"}}, pool, text);
  std::printf("stories260K FP8 E4M3 mean KLD: per channel %.6f, per tensor %.6f\n", channel, tensor);
  EXPECT_GT(channel, 0.0);
  EXPECT_LT(channel, 0.012);
  EXPECT_LT(tensor, 0.012);
  EXPECT_LE(channel, tensor);
}

TEST(Fp8Method, RejectsBadParams) {
  ThreadPool pool(1);
  QuantizeOptions options;
  options.model = test::stories_model();
  options.tokenizer = test::stories_tokenizer();
  options.scheme = "q8_0";
  options.method = "fp8";
  options.method_params = {{"static_act", "1"}};
  EXPECT_THROW(quantize_model_in_memory(options, DType::FP8_E4M3, pool), InvalidArgument);  // no --calib
  options.method_params = {{"static_act", "2"}};
  EXPECT_THROW(quantize_model_in_memory(options, DType::FP8_E4M3, pool), InvalidArgument);
  options.method_params = {{"static_act", "0"}};
  EXPECT_THROW(quantize_model_in_memory(options, DType::FP8_E4M3_A8, pool), InvalidArgument);
  options.method_params = {{"granularity", "row"}};
  EXPECT_THROW(quantize_model_in_memory(options, DType::FP8_E4M3, pool), InvalidArgument);
  options.method_params = {};
  EXPECT_THROW(quantize_model_in_memory(options, std::nullopt, pool), InvalidArgument);  // nothing planned FP8
}

}  // namespace
}  // namespace stepdown::quant
