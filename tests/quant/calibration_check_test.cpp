// calib-check: a calibration set from the same source as production passes, and sets of
// code and numbers or with a missing stratum are flagged. Also the CLI's --strict exit
// code and `quantize --against`.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "quant/story_text.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/calibration_check.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }
std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Production traffic: one story per request, strata "a" and "b" alternating.
std::string traffic(int first, int count, bool with_b = true) {
  std::string lines;
  for (int v = first; v < first + count; ++v) {
    std::string story = test::stories(v, 1);
    story.resize(story.size() - 2);  // the blank line that ends the paragraph
    const bool b = with_b && v % 2 == 1;
    lines += nlohmann::json{{"prompt", story}, {"stratum", b ? "b" : "a"}}.dump() + "\n";
  }
  return lines;
}

// Loops and arithmetic: nothing like the stories.
std::string code_text(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    text += fmt::format("for (int k{0} = 0; k{0} < {1}; ++k{0}) {{ acc[{2}] += table[k{0} * {3}] ^ 0x{4:x}; }}\n",
                        i, 17 * i + 3, i % 7, i + 11, 977 * i);
    text += fmt::format("return checksum_{}(acc, {}) % {};\n\n", i, 31 * i, 1009 + i);
  }
  return text;
}

io::ModelFile stories_model() {
  io::OpenOptions open;
  open.tokenizer_path = stories_dir() / "tok512.bin";
  return io::open_model_file(stories_dir() / "stories260K.bin", open);
}

TEST(CalibrationCheck, SameSourcePasses) {
  test::ScratchDir dir("check_same");
  write_text(dir / "calib.txt", test::stories(0, 40));
  write_text(dir / "traffic.jsonl", traffic(200, 40));
  const io::ModelFile model = stories_model();
  for (const io::ModelFile* m : {static_cast<const io::ModelFile*>(nullptr), &model}) {
    const CalibrationCheck check = check_calibration_files(dir / "calib.txt", dir / "traffic.jsonl", m);
    EXPECT_TRUE(check.representative()) << check.to_json().dump(2);
    EXPECT_LT(check.js_divergence, 0.2) << (m ? "model tokens" : "word tokens");
    EXPECT_GT(check.coverage, 0.95);
    EXPECT_EQ(check.calibration_lengths.items, 40);
    EXPECT_EQ(check.production_lengths.items, 40);
    EXPECT_LT(check.ks, 0.5);
    EXPECT_TRUE(check.strata.empty());  // plain text has no strata
  }
}

TEST(CalibrationCheck, CodeAgainstStoriesIsFlagged) {
  test::ScratchDir dir("check_code");
  write_text(dir / "calib.txt", code_text(40));
  write_text(dir / "traffic.jsonl", traffic(0, 40));
  const io::ModelFile model = stories_model();
  for (const io::ModelFile* m : {static_cast<const io::ModelFile*>(nullptr), &model}) {
    const CalibrationCheck check = check_calibration_files(dir / "calib.txt", dir / "traffic.jsonl", m);
    EXPECT_FALSE(check.representative());
    EXPECT_GT(check.js_divergence, 0.35) << (m ? "model tokens" : "word tokens");
    EXPECT_LT(check.coverage, 0.9) << (m ? "model tokens" : "word tokens");
  }
}

TEST(CalibrationCheck, MissingStratumIsFlagged) {
  test::ScratchDir dir("check_strata");
  write_text(dir / "calib.jsonl", traffic(0, 40, /*with_b=*/false));
  write_text(dir / "traffic.jsonl", traffic(100, 40));
  const CalibrationCheck check = check_calibration_files(dir / "calib.jsonl", dir / "traffic.jsonl", nullptr);
  ASSERT_EQ(check.strata.size(), 2u);
  EXPECT_DOUBLE_EQ(check.strata.at("a").first, 1.0);
  EXPECT_DOUBLE_EQ(check.strata.at("b").first, 0.0);
  EXPECT_DOUBLE_EQ(check.strata.at("b").second, 0.5);
  EXPECT_NEAR(check.stratum_distance, 0.5, 1e-12);
  ASSERT_EQ(check.warnings.size(), 2u) << check.to_json().dump(2);
  EXPECT_NE(check.warnings[0].find("stratum 'b'"), std::string::npos) << check.warnings[0];
  EXPECT_NE(check.warnings[1].find("total variation"), std::string::npos) << check.warnings[1];
}

TEST(CalibrationCheck, LengthStatistics) {
  TokenizedItems short_items, long_items;
  for (int i = 0; i < 30; ++i) {
    short_items.tokens.push_back(std::vector<int32_t>(static_cast<size_t>(5 + i % 3), 7));
    long_items.tokens.push_back(std::vector<int32_t>(static_cast<size_t>(100 + i), 7));
    short_items.strata.emplace_back();
    long_items.strata.emplace_back();
  }
  const CalibrationCheck check = check_calibration(short_items, long_items);
  EXPECT_DOUBLE_EQ(check.ks, 1.0);
  EXPECT_DOUBLE_EQ(check.calibration_lengths.p50, 6.0);
  EXPECT_DOUBLE_EQ(check.production_lengths.max, 129.0);
  EXPECT_DOUBLE_EQ(check.js_divergence, 0.0);
  ASSERT_EQ(check.warnings.size(), 1u);
  EXPECT_NE(check.warnings[0].find("Kolmogorov-Smirnov"), std::string::npos);
  EXPECT_THROW(check_calibration({}, long_items), InvalidArgument);
}

TEST(CalibrationCheck, CliStrictExitCode) {
  test::ScratchDir dir("check_cli");
  write_text(dir / "good.txt", test::stories(0, 40));
  write_text(dir / "bad.txt", code_text(40));
  write_text(dir / "traffic.jsonl", traffic(200, 40));

  const test::CliResult good =
      test::run_cli("calib-check --calib " + quoted(dir / "good.txt") + " --against " + quoted(dir / "traffic.jsonl") + " --strict");
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(good.out.find("WARNING"), std::string::npos) << good.out;

  const test::CliResult bad =
      test::run_cli("calib-check --calib " + quoted(dir / "bad.txt") + " --against " + quoted(dir / "traffic.jsonl"));
  EXPECT_EQ(bad.exit_code, 0) << bad.err;
  EXPECT_NE(bad.out.find("WARNING: token distributions differ"), std::string::npos) << bad.out;

  const test::CliResult strict = test::run_cli("calib-check --calib " + quoted(dir / "bad.txt") + " --against " +
                                               quoted(dir / "traffic.jsonl") + " --strict --json");
  EXPECT_EQ(strict.exit_code, 1) << strict.err;
  EXPECT_EQ(nlohmann::json::parse(strict.out).at("representative"), false);
}

TEST(CalibrationCheck, QuantizeAgainstWarns) {
  test::ScratchDir dir("check_quantize");
  write_text(dir / "bad.txt", code_text(60) + test::stories(0, 4));
  write_text(dir / "traffic.jsonl", traffic(200, 40));
  const test::CliResult r = test::run_cli(
      "quantize " + quoted(stories_dir() / "stories260K.bin") + " --tokenizer " + quoted(stories_dir() / "tok512.bin") +
      " --scheme q8_0 --method gptq --calib " + quoted(dir / "bad.txt") + " --calib-samples 4 --calib-seq-len 64" +
      " --against " + quoted(dir / "traffic.jsonl") + " -o " + quoted(dir / "q.gguf"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("WARNING: calibration set"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "q.gguf"));
}

}  // namespace
}  // namespace stepdown::quant
