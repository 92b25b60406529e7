// `stepdown quantize --method gptq` on stories260K (a float llama2.c model, FFN 172 wide,
// so ffn_down falls back to f16 at q4_0), then `stepdown ppl --base` on held-out text:
// GPTQ's KL divergence from the f32 model must be below RTN's at the same scheme.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "quant/story_text.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/model_file.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

double mean_kld(const std::filesystem::path& candidate, const std::filesystem::path& text) {
  const test::CliResult r = test::run_cli("ppl " + quoted(candidate) + " --text " + quoted(text) + " --base " +
                                          quoted(stories_dir() / "stories260K.bin") + " --tokenizer " +
                                          quoted(stories_dir() / "tok512.bin") + " --ctx 128 --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out).at("kld").at("mean").get<double>();
}

TEST(GptqEndToEnd, Stories260KBeatsRtnOnHeldOutText) {
  test::ScratchDir dir("gptq_e2e");
  write_text(dir / "calib.txt", test::stories(0, 40));
  write_text(dir / "heldout.txt", test::stories(100, 30));
  const std::string model = quoted(stories_dir() / "stories260K.bin") + " --tokenizer " + quoted(stories_dir() / "tok512.bin");

  const test::CliResult rtn = test::run_cli("quantize " + model + " --scheme q4_0 -o " + quoted(dir / "rtn.gguf"));
  ASSERT_EQ(rtn.exit_code, 0) << rtn.err;
  const std::string calib = " --calib " + quoted(dir / "calib.txt") + " --calib-samples 24 --calib-seq-len 128 --seed 3";
  const test::CliResult gptq = test::run_cli("quantize " + model + " --scheme q4_0 --method gptq" + calib + " -o " +
                                             quoted(dir / "gptq.gguf") + " --json");
  ASSERT_EQ(gptq.exit_code, 0) << gptq.err;
  const test::CliResult ordered =
      test::run_cli("quantize " + model + " --scheme q4_0 --method gptq --method-param act_order=1" + calib + " -o " +
                    quoted(dir / "gptq_act.gguf"));
  ASSERT_EQ(ordered.exit_code, 0) << ordered.err;

  // The manifest records the method, its parameters and the calibration set; ffn_down
  // (rows of 172) fell back to f16, so GPTQ left it to the writer.
  const nlohmann::json details = nlohmann::json::parse(gptq.out).at("method_details");
  EXPECT_EQ(details.at("method"), "gptq");
  EXPECT_EQ(details.at("damp"), 0.01);
  EXPECT_EQ(details.at("block_size"), 128);
  EXPECT_EQ(details.at("act_order"), false);
  EXPECT_EQ(details.at("true_sequential"), true);
  EXPECT_EQ(details.at("clip"), true);
  EXPECT_EQ(details.at("group_size").at("q4_0"), 32);
  EXPECT_EQ(details.at("calibration").at("samples"), 24);
  EXPECT_EQ(details.at("calibration").at("seq_len"), 128);
  EXPECT_EQ(details.at("calibration").at("seed"), 3);
  EXPECT_EQ(details.at("calibration").at("file_sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(details.at("layers").at("blk.4.ffn_up.weight").at("format"), "q4_0");
  EXPECT_EQ(details.at("layers").at("blk.0.attn_q.weight").at("damp"), 0.01);
  EXPECT_FALSE(details.at("layers").contains("blk.0.ffn_down.weight"));
  const io::ModelFile file = io::open_gguf(dir / "gptq.gguf");
  EXPECT_EQ(file.tensor("blk.0.attn_q.weight").dtype, DType::Q4_0);
  EXPECT_EQ(file.tensor("blk.0.ffn_down.weight").dtype, DType::F16);

  const double kld_rtn = mean_kld(dir / "rtn.gguf", dir / "heldout.txt");
  const double kld_gptq = mean_kld(dir / "gptq.gguf", dir / "heldout.txt");
  const double kld_act = mean_kld(dir / "gptq_act.gguf", dir / "heldout.txt");
  EXPECT_GT(kld_rtn, 0.0);
  EXPECT_LT(kld_gptq, kld_rtn);
  EXPECT_LT(kld_act, kld_rtn);
  std::printf("mean KLD vs f32 on held-out text: rtn %.5f, gptq %.5f, gptq act_order %.5f\n", kld_rtn, kld_gptq,
              kld_act);
}

TEST(GptqEndToEnd, MissingCalibrationIsAnError) {
  test::ScratchDir dir("gptq_nocalib");
  const test::CliResult r = test::run_cli("quantize " + quoted(stories_dir() / "stories260K.bin") + " --tokenizer " +
                                          quoted(stories_dir() / "tok512.bin") + " --scheme q4_0 --method gptq -o " +
                                          quoted(dir / "x.gguf"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--calib"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
}

TEST(GptqEndToEnd, UnknownParameterIsAnError) {
  test::ScratchDir dir("gptq_param");
  write_text(dir / "calib.txt", test::stories(0, 10));
  const test::CliResult r = test::run_cli("quantize " + quoted(stories_dir() / "stories260K.bin") + " --tokenizer " +
                                          quoted(stories_dir() / "tok512.bin") +
                                          " --scheme q4_0 --method gptq --method-param dampening=0.1 --calib " +
                                          quoted(dir / "calib.txt") + " -o " + quoted(dir / "x.gguf"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("dampening"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace stepdown::quant
