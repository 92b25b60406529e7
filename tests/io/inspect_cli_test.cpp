// `stepdown inspect` end to end: the JSON report's counts against independent sources
// (stories260K's header arithmetic, gguf-py's tensor list in the golden fixture).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace stepdown::io {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs the CLI with `args` (already shell-quoted), capturing stdout; stderr goes to `err_file`.
CommandResult run_cli(const std::string& args, const std::string& err_file = "/dev/null") {
  const std::string command = "'" + test::cli_path().string() + "' " + args + " 2>" + err_file;
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(InspectCli, Llama2cJson) {
  const auto stories = test::shared_dir() / "models" / "stories260K";
  const CommandResult r = run_cli("inspect '" + (stories / "stories260K.bin").string() + "' --tokenizer '" +
                                  (stories / "tok512.bin").string() + "' --json");
  ASSERT_EQ(r.exit_code, 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "llama2.c");
  EXPECT_EQ(j["architecture"], "llama");
  // Weights after the 28-byte header, less the two RoPE tables of 512 * 4 floats each.
  const int64_t params = (1056540 - 28) / 4 - 2 * 512 * 4;
  EXPECT_EQ(j["parameters"], params);
  EXPECT_EQ(j["bytes"], params * 4);
  EXPECT_EQ(j["bits_per_weight"], 32.0);
  EXPECT_EQ(j["tensors"].size(), 47u);
  EXPECT_EQ(j["hyperparameters"]["block_count"], 5);
  EXPECT_EQ(j["hyperparameters"]["stepdown.tokenizer.path"], (stories / "tok512.bin").string());
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json({512, 64}));
}

TEST(InspectCli, SmolLM2MatchesGgufPy) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  const CommandResult r = run_cli("inspect '" + path.string() + "' --json");
  ASSERT_EQ(r.exit_code, 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const nlohmann::json fixture = nlohmann::json::parse(
      std::ifstream(test::source_dir() / "tests" / "io" / "golden" / "gguf_smollm2_135m_q4_1.json"));
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const auto& t : fixture["tensors"]) {
    int64_t n = 1;
    for (int64_t d : t["shape"]) n *= d;
    params += n;
    bytes += t["nbytes"].get<uint64_t>();
  }
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["parameters"], params);
  EXPECT_EQ(j["bytes"], bytes);
  EXPECT_EQ(j["dtypes"]["Q4_1"]["bits_per_weight"], 5.0);  // 20 bytes per 32 weights
  EXPECT_EQ(j["dtypes"]["Q8_0"]["bits_per_weight"], 8.5);  // 34 bytes per 32 weights
  EXPECT_EQ(j["tensors"].size(), fixture["tensors"].size());
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["length"], 49152);
}

TEST(InspectCli, TextReportListsTensors) {
  const auto model = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  const CommandResult r = run_cli("inspect '" + model.string() + "'");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("format:        llama2.c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.4.ffn_down.weight"), std::string::npos);
  EXPECT_NE(r.out.find("[64, 172]"), std::string::npos);
}

TEST(CliUsage, ErrorsExitTwo) {
  const test::CliResult missing_arg = test::run_cli("inspect");
  EXPECT_EQ(missing_arg.exit_code, 2) << missing_arg.err;
  EXPECT_NE(missing_arg.err.find("model is required"), std::string::npos) << missing_arg.err;

  const test::CliResult unknown_flag = test::run_cli("inspect --no-such-flag x");
  EXPECT_EQ(unknown_flag.exit_code, 2) << unknown_flag.err;

  const test::CliResult help = test::run_cli("--help");
  EXPECT_EQ(help.exit_code, 0) << help.err;
}

}  // namespace
}  // namespace stepdown::io
