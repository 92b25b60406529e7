// `stepdown quantize --method mixed` end to end on stories260K: the target is met, the
// manifest records the sensitivity and the choice, the file contains the chosen formats,
// and the measured KLD beats uniform formats of the same or a smaller size.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "stepdown/io/gguf.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// Writes the first half of the lighthouse text (calibration) and the second half
// (evaluation) into `dir`, so the KLD is measured on text the sensitivity never saw.
void write_texts(const test::ScratchDir& dir) {
  std::ifstream in(test::source_dir() / "bench" / "data" / "lighthouse-keeper.txt");
  std::ostringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  std::ofstream(dir / "calib.txt") << text.substr(0, text.size() / 2);
  std::ofstream(dir / "eval.txt") << text.substr(text.size() / 2);
}

std::string stories_args() {
  return quoted(stories_dir() / "stories260K.bin") + " --tokenizer " + quoted(stories_dir() / "tok512.bin");
}

nlohmann::json quantize_json(const std::string& args) {
  const test::CliResult r = test::run_cli("quantize " + stories_args() + " --threads 2 --json " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
}

// Mean KLD of `model` against the f32 model on the evaluation half, ctx 128.
double mean_kld(const test::ScratchDir& dir, const std::filesystem::path& model) {
  const test::CliResult r = test::run_cli("ppl " + quoted(model) + " --base " + quoted(dir / "f32.gguf") +
                                          " --text " + quoted(dir / "eval.txt") + " --ctx 128 --threads 2 --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out).at("kld").at("mean").get<double>() : 1e9;
}

std::string mixed_args(const test::ScratchDir& dir, const std::string& target) {
  return "--scheme q4_0 --method mixed --method-param target_bpw=" + target + " --calib " +
         quoted(dir / "calib.txt") + " --calib-samples 8 --calib-seq-len 128 --seed 3";
}

TEST(MixedPrecision, MeetsTargetAndRecordsChoice) {
  test::ScratchDir dir("mixed_e2e");
  write_texts(dir);
  // All q4_0 is 7.009 bits per weight here (ffn_down stays f16), all q8_0 10.151; 8.0
  // leaves room for one block or the embedding at q8_0.
  const nlohmann::json manifest = quantize_json(mixed_args(dir, "8.0") + " -o " + quoted(dir / "m.gguf"));
  ASSERT_TRUE(manifest.contains("method_details")) << manifest.dump();

  EXPECT_EQ(manifest.at("method"), "mixed");
  EXPECT_LE(manifest.at("bits_per_weight").get<double>(), 8.0);
  EXPECT_GT(manifest.at("bits_per_weight").get<double>(), 7.009);
  const nlohmann::json& details = manifest.at("method_details");
  EXPECT_EQ(details.at("tensor_bytes"), manifest.at("tensor_bytes"));
  EXPECT_EQ(details.at("reference_level"), "q8_0");
  ASSERT_EQ(details.at("choice").size(), 6u);
  ASSERT_EQ(details.at("sensitivity").size(), 6u);
  int high = 0;
  for (const auto& [unit, level] : details.at("choice").items()) high += level == "q8_0" ? 1 : 0;
  EXPECT_EQ(high, 1);

  const io::ModelFile file = io::open_gguf(dir / "m.gguf");
  for (int layer = 0; layer < 5; ++layer) {
    const std::string unit = "blk." + std::to_string(layer);
    const DType expected = details.at("choice").at(unit) == "q8_0" ? DType::Q8_0 : DType::Q4_0;
    EXPECT_EQ(file.tensor(unit + ".attn_q.weight").dtype, expected) << unit;
    EXPECT_EQ(file.tensor(unit + ".ffn_up.weight").dtype, expected) << unit;
    EXPECT_EQ(file.tensor(unit + ".ffn_down.weight").dtype, DType::F16) << unit;
  }
}

TEST(MixedPrecision, MeetsByteBudget) {
  test::ScratchDir dir("mixed_budget");
  write_texts(dir);
  // All q4_0 is 227,808 bytes here, and one block at q8_0 adds 17,152.
  const nlohmann::json manifest =
      quantize_json("--scheme q4_0 --method mixed --method-param budget_mb=0.25 --calib " + quoted(dir / "calib.txt") +
                    " --calib-samples 4 --calib-seq-len 64 -o " + quoted(dir / "m.gguf"));
  ASSERT_TRUE(manifest.contains("method_details")) << manifest.dump();

  EXPECT_LE(manifest.at("tensor_bytes").get<uint64_t>(), 250000u);
  EXPECT_GT(manifest.at("tensor_bytes").get<uint64_t>(), 227808u);
  EXPECT_EQ(manifest.at("method_details").at("budget_bytes"), 250000);
  EXPECT_EQ(manifest.at("method_details").at("budget_mb"), 0.25);
}

TEST(MixedPrecision, SameSeedSameSensitivity) {
  test::ScratchDir dir("mixed_seed");
  write_texts(dir);
  const nlohmann::json a = quantize_json(mixed_args(dir, "8.0") + " -o " + quoted(dir / "a.gguf"));
  const nlohmann::json b = quantize_json(mixed_args(dir, "8.0") + " -o " + quoted(dir / "b.gguf"));
  ASSERT_TRUE(a.contains("method_details"));
  ASSERT_TRUE(b.contains("method_details"));
  EXPECT_EQ(a.at("method_details").at("sensitivity"), b.at("method_details").at("sensitivity"));
  EXPECT_EQ(a.at("output").at("sha256"), b.at("output").at("sha256"));
}

TEST(MixedPrecision, RejectsUnreachableTarget) {
  test::ScratchDir dir("mixed_low");
  write_texts(dir);
  const test::CliResult r =
      test::run_cli("quantize " + stories_args() + " " + mixed_args(dir, "4.5") + " -o " + quoted(dir / "m.gguf"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("7.00"), std::string::npos) << r.err;  // the smallest reachable bits per weight
  EXPECT_FALSE(std::filesystem::exists(dir / "m.gguf"));
}

TEST(MixedPrecision, RejectsMissingCalibration) {
  test::ScratchDir dir("mixed_nocalib");
  const test::CliResult r = test::run_cli("quantize " + stories_args() +
                                          " --scheme q4_0 --method mixed --method-param target_bpw=8 -o " +
                                          quoted(dir / "m.gguf"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--calib"), std::string::npos) << r.err;
}

TEST(MixedPrecision, BeatsUniformAtSameSize) {
  test::ScratchDir dir("mixed_kld");
  write_texts(dir);
  quantize_json("--scheme f32 -o " + quoted(dir / "f32.gguf"));
  const nlohmann::json q4 = quantize_json("--scheme q4_0 -o " + quoted(dir / "q4_0.gguf"));
  const nlohmann::json q5 = quantize_json("--scheme q5_0 -o " + quoted(dir / "q5_0.gguf"));
  // Per matrix, q4_0 / q5_0 / q8_0 within the size of uniform q5_0 (7.794 bits per
  // weight on this model).
  const std::string q5_bpw = std::to_string(q5.at("bits_per_weight").get<double>());
  const nlohmann::json mixed = quantize_json(mixed_args(dir, q5_bpw) +
                                             " --method-param levels=q4_0,q5_0,q8_0 --method-param unit=matrix -o " +
                                             quoted(dir / "mixed.gguf"));
  // Per block, q4_0 / q8_0 with 0.6 bits per weight more than uniform q4_0 (7.009).
  const nlohmann::json mixed_q4 = quantize_json(mixed_args(dir, "7.6") + " -o " + quoted(dir / "mixed_q4.gguf"));
  ASSERT_TRUE(mixed.contains("method_details"));
  ASSERT_TRUE(mixed_q4.contains("method_details"));
  EXPECT_LE(mixed.at("tensor_bytes").get<uint64_t>(), q5.at("tensor_bytes").get<uint64_t>());

  const double kld_q4 = mean_kld(dir, dir / "q4_0.gguf");
  const double kld_q5 = mean_kld(dir, dir / "q5_0.gguf");
  const double kld_mixed = mean_kld(dir, dir / "mixed.gguf");
  const double kld_mixed_q4 = mean_kld(dir, dir / "mixed_q4.gguf");

  // Measured on the evaluation half: q4_0 0.174, mixed at 7.6 bits 0.131, q5_0 0.0414,
  // mixed at q5_0's size 0.0384 nats per token.
  EXPECT_LT(kld_mixed, 0.97 * kld_q5);
  EXPECT_LT(kld_mixed_q4, 0.85 * kld_q4);
}

TEST(MixedPrecision, GptqBaseBeatsRtnBase) {
  test::ScratchDir dir("mixed_gptq");
  write_texts(dir);
  quantize_json("--scheme f32 -o " + quoted(dir / "f32.gguf"));
  const nlohmann::json rtn = quantize_json(mixed_args(dir, "7.6") + " -o " + quoted(dir / "rtn.gguf"));
  const nlohmann::json gptq =
      quantize_json(mixed_args(dir, "7.6") + " --method-param base_method=gptq -o " + quoted(dir / "gptq.gguf"));
  ASSERT_TRUE(gptq.contains("method_details"));
  ASSERT_TRUE(rtn.contains("method_details"));

  EXPECT_EQ(gptq.at("method_details").at("base_method"), "gptq");
  EXPECT_EQ(gptq.at("method_details").at("base_method_details").at("method"), "gptq");
  EXPECT_EQ(gptq.at("method_details").at("choice"), rtn.at("method_details").at("choice"));
  EXPECT_EQ(gptq.at("tensor_bytes"), rtn.at("tensor_bytes"));
  // Measured on the evaluation half: 0.131 with RTN, 0.088 with GPTQ filling the formats.
  EXPECT_LT(mean_kld(dir, dir / "gptq.gguf"), 0.85 * mean_kld(dir, dir / "rtn.gguf"));
}

}  // namespace
}  // namespace stepdown::quant
