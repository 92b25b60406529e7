// End to end: the stepdown tokenize subcommand.
#include <array>
#include <cstdio>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace stepdown::text {
namespace {

struct CommandResult {
  int exit_code = 0;
  std::string output;  // stdout and stderr together
};

CommandResult run_cli(const std::string& arguments) {
  const std::string command = test::cli_path().string() + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  CommandResult result;
  if (pipe == nullptr) return {-1, "popen failed"};
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

TEST(TokenizeCli, JsonWithTokenizerFile) {
  const auto tokenizer = test::shared_dir() / "tokenizers/mistral-7b/tokenizer.json";
  const CommandResult with_bos = run_cli("tokenize --tokenizer " + quoted(tokenizer) + " 'Hello world' --json");
  ASSERT_EQ(with_bos.exit_code, 0) << with_bos.output;
  const nlohmann::json out = nlohmann::json::parse(with_bos.output);
  // Ids from tokenizers 0.23.3: Tokenizer.from_file(...).encode("Hello world").ids
  EXPECT_EQ(out.at("ids"), nlohmann::json::parse("[1, 22557, 1526]"));
  EXPECT_EQ(out.at("pieces"), nlohmann::json::parse(R"(["<s>", "▁Hello", "▁world"])"));

  const CommandResult without = run_cli("tokenize --tokenizer " + quoted(tokenizer) + " 'Hello world' --json --no-special");
  ASSERT_EQ(without.exit_code, 0) << without.output;
  EXPECT_EQ(nlohmann::json::parse(without.output).at("ids"), nlohmann::json::parse("[22557, 1526]"));
}

TEST(TokenizeCli, PlainOutputForLlama2cModel) {
  const auto folder = test::shared_dir() / "models/stories260K";
  const CommandResult result =
      run_cli("tokenize " + quoted(folder / "stories260K.bin") + " --tokenizer " + quoted(folder / "tok512.bin") + " 'Once upon'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, testing::HasSubstr("       1 \"\\n<s>\\n\"\n"));
  EXPECT_THAT(result.output, testing::HasSubstr(" \" Once\"\n"));
  EXPECT_THAT(result.output, testing::HasSubstr(" \" upon\"\n"));
}

TEST(TokenizeCli, GgufModel) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  const CommandResult result = run_cli("tokenize " + quoted(path) + " '<|im_start|>user' --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(nlohmann::json::parse(result.output).at("pieces"), nlohmann::json::parse(R"(["<|im_start|>", "user"])"));
}

TEST(TokenizeCli, ModelWithoutTokenizerFails) {
  const CommandResult result = run_cli("tokenize " + quoted(test::shared_dir() / "models/stories260K/stories260K.bin") + " 'x'");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, testing::HasSubstr("carries no tokenizer"));
  EXPECT_THAT(result.output, testing::HasSubstr("--tokenizer"));
}

}  // namespace
}  // namespace stepdown::text
