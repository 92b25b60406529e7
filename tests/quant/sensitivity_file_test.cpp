// measure_sensitivity's in-memory passes against GGUF files written by quantize_model and
// run from scratch: the reference KLD must match an all-q8_0 file, and the reference KLD
// plus blk.1's sensitivity must match a file with only blk.1 at q4_0.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "io/io_test_util.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/quantize_model.h"
#include "stepdown/quant/sensitivity.h"
#include "stepdown/text/model_tokenizer.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

// Row-wise log-softmax in double.
std::vector<double> log_softmax(const float* logits, int64_t vocab) {
  double max = logits[0];
  for (int64_t i = 1; i < vocab; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(logits[i] - max);
  std::vector<double> out(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) out[static_cast<size_t>(i)] = logits[i] - max - std::log(sum);
  return out;
}

// Mean KL(base || candidate) per token over `windows`, each model run with a fresh
// Transformer::forward over the whole window.
double file_kld(const io::ModelFile& base_file, const io::ModelFile& candidate_file,
                const std::vector<std::vector<text::TokenId>>& windows) {
  ThreadPool pool(2);
  const model::ModelWeights base_weights = model::load_weights(base_file, model::WeightConversion::F32);
  const model::ModelWeights candidate_weights = model::load_weights(candidate_file, model::WeightConversion::F32);
  model::Transformer base(base_weights, pool);
  model::Transformer candidate(candidate_weights, pool);
  const int64_t V = base_weights.config.vocab_size;
  double total = 0.0;
  int64_t tokens = 0;
  for (const auto& window : windows) {
    const int64_t T = static_cast<int64_t>(window.size());
    model::KVCache base_cache(base_weights.config, T);
    model::KVCache candidate_cache(candidate_weights.config, T);
    model::Activations base_logits;
    model::Activations candidate_logits;
    base.forward(window, base_cache, base_logits, /*all_logits=*/true);
    candidate.forward(window, candidate_cache, candidate_logits, /*all_logits=*/true);
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<double> p = log_softmax(base_logits.row(t), V);
      const std::vector<double> q = log_softmax(candidate_logits.row(t), V);
      for (int64_t i = 0; i < V; ++i) total += std::exp(p[i]) * (p[i] - q[i]);
    }
    tokens += T;
  }
  return total / static_cast<double>(tokens);
}

TEST(SensitivityFile, MatchesWrittenFiles) {
  test::ScratchDir dir("sensitivity_file");
  io::OpenOptions open_options;
  open_options.tokenizer_path = stories_dir() / "tok512.bin";
  const io::ModelFile model = io::open_model_file(stories_dir() / "stories260K.bin", open_options);

  std::ifstream in(test::source_dir() / "bench" / "data" / "lighthouse-keeper.txt");
  std::ostringstream all;
  all << in.rdbuf();
  const std::vector<text::TokenId> tokens = text::load_model_tokenizer(model)->encode(all.str(), true);
  std::vector<std::vector<text::TokenId>> windows;
  for (size_t start = 0; windows.size() < 3; start += 80) {
    windows.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                         tokens.begin() + static_cast<std::ptrdiff_t>(start + 80));
  }

  // q8_0 everywhere, and the same with blk.1's matrices at q4_0 (ffn_down fits neither
  // and is f16 in both).
  QuantizeOptions options;
  options.model = stories_dir() / "stories260K.bin";
  options.tokenizer = stories_dir() / "tok512.bin";
  options.scheme = "q8_0";
  options.output = dir / "q8.gguf";
  quantize_model(options);
  options.overrides = {"^blk\\.1\\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up)\\.weight$=q4_0"};
  options.output = dir / "q8_blk1_q4.gguf";
  quantize_model(options);

  const std::vector<SensitivityUnit> units = sensitivity_units(model, UnitGranularity::BLOCK);
  std::vector<FormatLevel> levels = {{"q4_0", {}}, {"q8_0", {}}};
  for (const SensitivityUnit& unit : units) {
    for (const std::string& name : unit.tensors) {
      const bool fits = !name.ends_with("ffn_down.weight");
      levels[0].formats[name] = find_quant_format(fits ? "q4_0" : "f16");
      levels[1].formats[name] = find_quant_format(fits ? "q8_0" : "f16");
    }
  }
  ThreadPool pool(2);
  const SensitivityResult measured = measure_sensitivity(model, units, levels, windows, SensitivityOptions{1}, pool);

  const double q8_kld = file_kld(model, io::open_model_file(dir / "q8.gguf"), windows);
  const double blk1_kld = file_kld(model, io::open_model_file(dir / "q8_blk1_q4.gguf"), windows);
  ASSERT_EQ(units[1].name, "blk.1");
  EXPECT_GT(q8_kld, 0.0);
  EXPECT_GT(blk1_kld, 2.0 * q8_kld);
  EXPECT_NEAR(measured.base_to_reference_kld, q8_kld, 1e-4 * q8_kld);
  EXPECT_NEAR(measured.base_to_reference_kld + measured.sensitivity[1][0], blk1_kld, 1e-4 * blk1_kld);
}

}  // namespace
}  // namespace stepdown::quant
