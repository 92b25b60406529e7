// measure_sensitivity on stories260K: finite, not below zero beyond noise, repeatable, and
// largest for a block whose weights were given outliers that 4-bit blocks cannot follow.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/sensitivity.h"
#include "stepdown/text/model_tokenizer.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

io::ModelFile open_stories() {
  io::OpenOptions options;
  options.tokenizer_path = stories_dir() / "tok512.bin";
  return io::open_model_file(stories_dir() / "stories260K.bin", options);
}

// Four windows of 96 tokens from the first half of the lighthouse text.
std::vector<std::vector<text::TokenId>> calibration_windows(const io::ModelFile& model) {
  std::ifstream in(test::source_dir() / "bench" / "data" / "lighthouse-keeper.txt");
  std::ostringstream all;
  all << in.rdbuf();
  const std::string text = all.str().substr(0, all.str().size() / 2);
  const auto tokenizer = text::load_model_tokenizer(model);
  const std::vector<text::TokenId> tokens = tokenizer->encode(text, /*add_special=*/true);
  std::vector<std::vector<text::TokenId>> windows;
  for (size_t start = 0; windows.size() < 4 && start + 96 <= tokens.size(); start += 96) {
    windows.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                         tokens.begin() + static_cast<std::ptrdiff_t>(start + 96));
  }
  return windows;
}

// q4_0 (level 0) and q8_0 (level 1, the reference) for every unit tensor. ffn_down rows
// of 172 fit neither, so both levels give it f16 as the quantizer's fallback does.
std::vector<FormatLevel> q4_q8_levels(const std::vector<SensitivityUnit>& units) {
  std::vector<FormatLevel> levels = {{"q4_0", {}}, {"q8_0", {}}};
  for (const SensitivityUnit& unit : units) {
    for (const std::string& name : unit.tensors) {
      const bool fits = !name.ends_with("ffn_down.weight");
      levels[0].formats[name] = find_quant_format(fits ? "q4_0" : "f16");
      levels[1].formats[name] = find_quant_format(fits ? "q8_0" : "f16");
    }
  }
  return levels;
}

TEST(SensitivityUnits, BlockAndMatrixGrouping) {
  const io::ModelFile model = open_stories();
  const std::vector<SensitivityUnit> blocks = sensitivity_units(model, UnitGranularity::BLOCK);
  ASSERT_EQ(blocks.size(), 6u);  // 5 blocks and the tied token_embd
  EXPECT_EQ(blocks[0].name, "blk.0");
  EXPECT_EQ(blocks[0].tensors.size(), 7u);
  EXPECT_EQ(blocks[5].name, "token_embd.weight");

  const std::vector<SensitivityUnit> matrices = sensitivity_units(model, UnitGranularity::MATRIX);
  ASSERT_EQ(matrices.size(), 36u);
  EXPECT_EQ(matrices[0].name, "blk.0.attn_q.weight");
  EXPECT_EQ(matrices[6].name, "blk.0.ffn_down.weight");
}

TEST(Sensitivity, Stories260KFiniteAndRepeatable) {
  const io::ModelFile model = open_stories();
  const std::vector<SensitivityUnit> units = sensitivity_units(model, UnitGranularity::BLOCK);
  const std::vector<FormatLevel> levels = q4_q8_levels(units);
  const auto windows = calibration_windows(model);
  ASSERT_EQ(windows.size(), 4u);
  SensitivityOptions options;
  options.reference_level = 1;
  ThreadPool pool(2);

  const SensitivityResult first = measure_sensitivity(model, units, levels, windows, options, pool);

  EXPECT_EQ(first.tokens, 4 * 96);
  EXPECT_EQ(first.passes, 2 + 6);  // base, reference, one per unit
  EXPECT_TRUE(std::isfinite(first.base_to_reference_kld));
  EXPECT_GT(first.base_to_reference_kld, 0.0);
  ASSERT_EQ(first.sensitivity.size(), units.size());
  for (size_t u = 0; u < units.size(); ++u) {
    EXPECT_TRUE(std::isfinite(first.sensitivity[u][0])) << units[u].name;
    // Dropping a unit from 8 to 4 bits may lower the KLD only by noise. On this model
    // every unit raises it by far more than the reference KLD.
    EXPECT_GT(first.sensitivity[u][0], -0.1 * first.base_to_reference_kld) << units[u].name;
    EXPECT_EQ(first.sensitivity[u][1], 0.0) << units[u].name;
  }

  const SensitivityResult second = measure_sensitivity(model, units, levels, windows, options, pool);
  for (size_t u = 0; u < units.size(); ++u) {
    EXPECT_EQ(second.sensitivity[u][0], first.sensitivity[u][0]) << units[u].name;
  }
}

TEST(Sensitivity, DamagedBlockIsMostSensitive) {
  const io::ModelFile source = open_stories();
  // Block 2 gets outlier input channels without changing what it computes: channels 0 and
  // 32 of its RMSNorm gains are divided by 16 and the same columns of q, k, v, gate and up
  // multiplied by 16. Each 32-value block of those rows then has one value 16 times the
  // others, so q4_0's step grows past most weights while q8_0 still resolves them.
  constexpr float kScale = 16.0f;
  io::ModelFile damaged = source;
  for (TensorView& t : damaged.tensors) {
    if (!t.name.starts_with("blk.2.")) continue;
    const bool gain = t.name.ends_with("attn_norm.weight") || t.name.ends_with("ffn_norm.weight");
    const bool input = t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight") ||
                       t.name.ends_with("attn_v.weight") || t.name.ends_with("ffn_gate.weight") ||
                       t.name.ends_with("ffn_up.weight");
    if (!gain && !input) continue;
    ASSERT_EQ(t.dtype, DType::F32) << t.name;
    ASSERT_EQ(t.cols(), 64) << t.name;
    auto buffer = std::make_shared<std::vector<std::byte>>(t.data, t.data + t.nbytes);
    float* values = reinterpret_cast<float*>(buffer->data());
    for (int64_t r = 0; r < t.rows(); ++r) {
      for (int64_t c : {0, 32}) values[r * 64 + c] = gain ? values[r * 64 + c] / kScale : values[r * 64 + c] * kScale;
    }
    t.data = buffer->data();
    damaged.owned_buffers.push_back(buffer);
  }
  const std::vector<SensitivityUnit> units = sensitivity_units(damaged, UnitGranularity::BLOCK);
  SensitivityOptions options;
  options.reference_level = 1;
  ThreadPool pool(2);

  const SensitivityResult got =
      measure_sensitivity(damaged, units, q4_q8_levels(units), calibration_windows(damaged), options, pool);

  ASSERT_EQ(units[2].name, "blk.2");
  for (size_t u = 0; u < units.size(); ++u) {
    if (u == 2) continue;
    // Measured: blk.2 0.77 nats against at most 0.043 for the others (0.026 before damage).
    EXPECT_GT(got.sensitivity[2][0], 5.0 * got.sensitivity[u][0]) << "blk.2 against " << units[u].name;
  }
}

TEST(Sensitivity, RejectsMissingLevelFormat) {
  const io::ModelFile model = open_stories();
  const std::vector<SensitivityUnit> units = sensitivity_units(model, UnitGranularity::BLOCK);
  std::vector<FormatLevel> levels = q4_q8_levels(units);
  levels[0].formats.erase("blk.1.attn_k.weight");
  ThreadPool pool(1);
  EXPECT_THROW(measure_sensitivity(model, units, levels, calibration_windows(model), SensitivityOptions{1}, pool),
               InvalidArgument);
}

TEST(Sensitivity, RejectsEmptyCalibration) {
  const io::ModelFile model = open_stories();
  const std::vector<SensitivityUnit> units = sensitivity_units(model, UnitGranularity::BLOCK);
  ThreadPool pool(1);
  EXPECT_THROW(measure_sensitivity(model, units, q4_q8_levels(units), {}, SensitivityOptions{1}, pool),
               InvalidArgument);
}

TEST(UnitGranularity, ParsesKnownNames) {
  EXPECT_EQ(parse_unit_granularity("block"), UnitGranularity::BLOCK);
  EXPECT_EQ(parse_unit_granularity("matrix"), UnitGranularity::MATRIX);
  EXPECT_THROW(parse_unit_granularity("layer"), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::quant
