// INT8_OUTLIER: row layout, the fused kernel against its scalar reference, the split
// product against the float product, and the "outlier" method on stories260K.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "quant/scaling_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/eval/perplexity.h"
#include "stepdown/kernels/int8_int8.h"
#include "stepdown/kernels/int8_outlier.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/in_memory_model.h"
#include "stepdown/quant/outlier_split.h"
#include "stepdown/text/model_tokenizer.h"

namespace stepdown::quant {
namespace {

kernels::WeightMatrix view(const std::vector<std::byte>& bytes, DType dtype, int64_t rows, int64_t cols) {
  return kernels::WeightMatrix{dtype, bytes.data(), rows, cols, dtype_bytes(dtype, cols)};
}

TEST(OutlierRow, KeepsOutliersExactAndRoundsTheRest) {
  FloatMatrix w = test::random_matrix(1, 40, 41);
  w.row(0)[9] = 250.0f;
  w.row(0)[30] = -0.001f;
  const std::vector<uint16_t> columns = {9, 30};
  std::vector<std::byte> bytes(dtype_bytes(DType::INT8_OUTLIER, 40));
  ASSERT_EQ(bytes.size(), 52u + 40u);
  quantize_row_int8_outlier(w.row(0), columns, bytes.data(), 40);
  std::vector<float> decoded(40);
  kernels::dequantize_row(DType::INT8_OUTLIER, bytes.data(), decoded.data(), 40);
  EXPECT_EQ(decoded[9], 250.0f);
  EXPECT_EQ(decoded[30], -0.001f);
  // The scale comes from the inlier columns only, so 250 does not coarsen the others.
  const kernels::OutlierRowHeader header = kernels::read_outlier_header(bytes.data());
  EXPECT_LT(header.scale, 5.0f / 127.0f);
  for (int64_t j = 0; j < 40; ++j) {
    if (j == 9 || j == 30) continue;
    EXPECT_NEAR(decoded[static_cast<size_t>(j)], w.row(0)[j], header.scale / 2 * 1.0001f) << "column " << j;
  }
  EXPECT_EQ(header.columns[2], kernels::kNoOutlierColumn);
}

TEST(OutlierRow, RejectsBadColumns) {
  std::vector<float> row(16, 1.0f);
  std::vector<std::byte> bytes(dtype_bytes(DType::INT8_OUTLIER, 16));
  const std::vector<uint16_t> out_of_range = {16};
  EXPECT_THROW(quantize_row_int8_outlier(row.data(), out_of_range, bytes.data(), 16), InvalidArgument);
  const std::vector<uint16_t> too_many = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_THROW(quantize_row_int8_outlier(row.data(), too_many, bytes.data(), 16), InvalidArgument);
}

// X (T, C) with huge values in the outlier columns, and W (R, C).
struct SplitCase {
  static constexpr int64_t R = 13, C = 77, T = 5;
  std::vector<uint16_t> columns = {3, 40, 76};
  FloatMatrix w = test::random_matrix(R, C, 51, 0.1f);
  model::Activations x = test::random_activations(T, C, 52);
  std::vector<std::byte> bytes;

  SplitCase() {
    for (int64_t t = 0; t < T; ++t) {
      for (uint16_t c : columns) x.row(t)[c] = (t % 2 == 0 ? 1.0f : -1.0f) * 1000.0f;
    }
    bytes = quantize_matrix_int8_outlier(w, columns);
  }
};

TEST(OutlierKernel, FusedEqualsReferenceBitForBit) {
  const SplitCase c;
  ThreadPool pool(2);
  std::vector<float> fused(static_cast<size_t>(c.T * c.R)), reference(fused.size());
  const kernels::WeightMatrix w = view(c.bytes, DType::INT8_OUTLIER, c.R, c.C);
  kernels::matmul(w, c.x.data.data(), c.T, fused.data(), pool);
  kernels::matmul_int8_outlier_reference(w, c.x.data.data(), c.T, reference.data());
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_EQ(fused[i], reference[i]) << "index " << i;

  // matvec takes the same kernel for one token.
  std::vector<float> one(static_cast<size_t>(c.R));
  kernels::matvec(w, c.x.row_span(2), one, pool);
  for (int64_t r = 0; r < c.R; ++r) EXPECT_EQ(one[static_cast<size_t>(r)], fused[static_cast<size_t>(2 * c.R + r)]);
}

TEST(OutlierKernel, SplitProductMatchesFloatWithinInlierRounding) {
  const SplitCase c;
  ThreadPool pool(1);
  std::vector<float> split(static_cast<size_t>(c.T * c.R));
  kernels::matmul(view(c.bytes, DType::INT8_OUTLIER, c.R, c.C), c.x.data.data(), c.T, split.data(), pool);

  // Plain W8A8 for comparison: the 1000s set every token's activation scale.
  std::vector<std::byte> w8a8(dtype_bytes(DType::INT8_W8A8, c.C) * c.R);
  for (int64_t r = 0; r < c.R; ++r) {
    quantize_row_any(DType::INT8_W8A8, c.w.row(r), w8a8.data() + r * dtype_bytes(DType::INT8_W8A8, c.C), c.C);
  }
  std::vector<float> plain(split.size());
  kernels::matmul(view(w8a8, DType::INT8_W8A8, c.R, c.C), c.x.data.data(), c.T, plain.data(), pool);

  double split_error = 0.0, plain_error = 0.0;
  for (int64_t t = 0; t < c.T; ++t) {
    // The inlier activation step: absmax over non-outlier columns / 127.
    double x_absmax = 0.0;
    for (int64_t j = 0; j < c.C; ++j) {
      if (j != 3 && j != 40 && j != 76) x_absmax = std::max(x_absmax, std::fabs(static_cast<double>(c.x.row(t)[j])));
    }
    const double x_step = x_absmax / 127.0;
    for (int64_t r = 0; r < c.R; ++r) {
      const double w_step = kernels::read_outlier_header(c.bytes.data() + r * dtype_bytes(DType::INT8_OUTLIER, c.C)).scale;
      double exact = 0.0, bound = 0.0;
      for (int64_t j = 0; j < c.C; ++j) {
        const double wj = c.w.row(r)[j], xj = c.x.row(t)[j];
        exact += wj * xj;
        if (j == 3 || j == 40 || j == 76) continue;
        bound += std::fabs(wj) * x_step / 2 + std::fabs(xj) * w_step / 2 + w_step * x_step / 4;
      }
      // f32 rounding of the outlier terms (about 3 * 100 in magnitude) and of the sums.
      bound += 1e-4 * (1.0 + std::fabs(exact));
      const double e_split = std::fabs(split[static_cast<size_t>(t * c.R + r)] - exact);
      EXPECT_LE(e_split, bound) << "t " << t << " r " << r;
      split_error += e_split * e_split;
      plain_error += std::pow(plain[static_cast<size_t>(t * c.R + r)] - exact, 2);
    }
  }
  EXPECT_LT(split_error, 0.01 * plain_error);
}

TEST(OutlierColumns, ThresholdOrderAndCap) {
  std::vector<float> max_abs(20, 1.0f);
  for (int j : {2, 5, 7, 9, 11, 13, 15, 17, 19}) max_abs[static_cast<size_t>(j)] = 7.0f + static_cast<float>(j);
  int64_t dropped = 0;
  const std::vector<uint16_t> columns = select_outlier_columns(max_abs, 6.0f, dropped);
  ASSERT_EQ(columns.size(), 8u);
  EXPECT_EQ(columns[0], 19);
  EXPECT_EQ(columns[7], 5);  // 2 is the smallest above the threshold and is dropped
  EXPECT_EQ(dropped, 1);
  const std::vector<uint16_t> none = select_outlier_columns(max_abs, 100.0f, dropped);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(dropped, 0);
}

double stories_kld(const char* method, DType dtype, const std::map<std::string, std::string>& params,
                   const std::filesystem::path& calib, const std::filesystem::path& text, ThreadPool& pool) {
  QuantizeOptions options;
  options.model = test::stories_model();
  options.tokenizer = test::stories_tokenizer();
  options.scheme = "q8_0";
  options.method = method;
  options.method_params = params;
  options.calibration = calib;
  options.calib_samples = 16;
  options.calib_seq_len = 128;
  const InMemoryModel candidate = quantize_model_in_memory(options, dtype, pool);

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

// stories260K's activations reach a few units, so a threshold of 2 selects columns.
TEST(OutlierMethod, Stories260KKldNoWorseThanW8A8) {
  test::ScratchDir dir("outlier_kld");
  const std::filesystem::path calib = test::write_text(dir / "calib.txt", test::kCalibrationStory, 4);
  const std::filesystem::path text = test::write_text(dir / "eval.txt", test::kEvaluationStory, 3);
  ThreadPool pool(2);
  const double w8a8 = stories_kld("rtn", DType::INT8_W8A8, {}, calib, text, pool);
  const double split = stories_kld("outlier", DType::INT8_OUTLIER, {{"threshold", "2"}}, calib, text, pool);
  std::printf("stories260K mean KLD: W8A8 %.6f, outlier split (threshold 2) %.6f\n", w8a8, split);
  EXPECT_GT(split, 0.0);
  EXPECT_LT(split, w8a8);
}

// The same through the CLI: `--scheme int8-outlier --method outlier` writes stepdown's GGUF
// container, records the outlier columns it chose, and `stepdown ppl --base` scores it no
// worse than plain W8A8 within noise.
TEST(OutlierCli, QuantizeThenPplKld) {
  test::ScratchDir dir("outlier_cli");
  const std::string model = "'" + test::stories_model().string() + "' --tokenizer '" +
                            test::stories_tokenizer().string() + "'";
  const std::filesystem::path calib = test::write_text(dir / "calib.txt", test::kCalibrationStory, 4);
  const std::filesystem::path text = test::write_text(dir / "eval.txt", test::kEvaluationStory, 6);
  const std::string out = dir.path().string();
  ASSERT_EQ(test::run_cli("quantize " + model + " --scheme f32 -o '" + out + "/f32.gguf'").exit_code, 0);
  ASSERT_EQ(test::run_cli("quantize " + model + " --scheme w8a8 -o '" + out + "/w8a8.gguf'").exit_code, 0);
  const test::CliResult split =
      test::run_cli("quantize " + model + " --scheme int8-outlier --method outlier --method-param threshold=2 --calib '" +
                    calib.string() + "' --calib-samples 16 --calib-seq-len 128 -o '" + out + "/outlier.gguf' --json");
  ASSERT_EQ(split.exit_code, 0) << split.err;
  const nlohmann::json manifest = nlohmann::json::parse(split.out);
  EXPECT_EQ(manifest.at("method"), "outlier");
  EXPECT_EQ(manifest.at("scheme"), "int8-outlier");

  std::string error;
  const double w8a8 = test::mean_kld(dir / "w8a8.gguf", dir / "f32.gguf", text, error);
  ASSERT_FALSE(std::isnan(w8a8)) << error;
  const double outlier = test::mean_kld(dir / "outlier.gguf", dir / "f32.gguf", text, error);
  ASSERT_FALSE(std::isnan(outlier)) << error;
  std::printf("stories260K via CLI mean KLD: W8A8 %.6f, outlier split %.6f\n", w8a8, outlier);
  EXPECT_LT(outlier, 1.05 * w8a8);
}

}  // namespace
}  // namespace stepdown::quant
