// `stepdown score` end to end: per-line scores equal rouge-score's (fixtures from
// scripts/golden/make_rouge_fixtures.py), and bad input names the line and field.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "test_paths.h"

namespace stepdown::eval {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout, or stdout and stderr together
};

CommandResult run_cli(const std::string& arguments, bool merge_stderr) {
  const std::string command = test::cli_path().string() + " " + arguments + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class ScoreCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stepdown_score_test_" +
                                        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }

  fs::path dir_;
};

TEST_F(ScoreCommand, MatchesRougeScoreFixtures) {
  std::ifstream fixtures(test::source_dir() / "tests" / "golden" / "rouge" / "pairs.jsonl");
  ASSERT_TRUE(fixtures);
  std::ofstream pairs(dir_ / "pairs.jsonl", std::ios::binary);
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(fixtures, line) && records.size() < 300) {
    records.push_back(nlohmann::json::parse(line));
    pairs << nlohmann::json{{"prediction", records.back()["prediction"]}, {"reference", records.back()["target"]}}.dump()
          << "\n";
  }
  pairs.close();

  for (const auto& [metric, mode, flag] : {std::tuple{"rougeLsum", "stemmed", " --stemmer"},
                                           std::tuple{"rouge2", "plain", ""}}) {
    const CommandResult result =
        run_cli(fmt::format("score --metric {} --input {} --json{}", metric, (dir_ / "pairs.jsonl").string(), flag),
                false);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const nlohmann::json output = nlohmann::json::parse(result.output);
    ASSERT_EQ(output.at("count"), records.size());
    double sum = 0.0;
    for (size_t i = 0; i < records.size(); ++i) {
      const double expected = records[i][mode][metric][2].get<double>();
      EXPECT_NEAR(output["scores"][i]["score"].get<double>(), expected, 1e-9) << metric << " line " << i + 1;
      EXPECT_EQ(output["scores"][i]["line"], i + 1);
      sum += expected;
    }
    EXPECT_NEAR(output.at("mean").get<double>(), sum / static_cast<double>(records.size()), 1e-12);
  }
}

TEST_F(ScoreCommand, PrintsMeanAsText) {
  const fs::path input = write("pairs.jsonl",
                               "{\"prediction\": \"The refund\", \"reference\": \"refund\"}\n"
                               "\n"
                               "{\"prediction\": \"a refund is due\", \"reference\": \"refund\"}\n");
  const CommandResult result = run_cli("score --metric exact_match --input " + input.string(), false);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, "exact_match 0.500000 (mean of 2 pairs)\n");
}

TEST_F(ScoreCommand, MissingFieldNamesLineAndField) {
  const fs::path input = write("pairs.jsonl",
                               "{\"prediction\": \"x\", \"reference\": \"x\"}\n"
                               "{\"reference\": \"x\"}\n");
  const CommandResult result = run_cli("score --metric f1 --input " + input.string(), true);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("pairs.jsonl:2: field 'prediction': missing"), std::string::npos) << result.output;

  const fs::path no_reference = write("no_reference.jsonl", "{\"prediction\": \"x\"}\n");
  const CommandResult second = run_cli("score --metric rougeL --input " + no_reference.string(), true);
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.output.find("no_reference.jsonl:1: field 'reference': missing"), std::string::npos)
      << second.output;
}

TEST_F(ScoreCommand, MalformedLineNamesLine) {
  const fs::path input = write("pairs.jsonl", "{\"prediction\": \"x\", \"reference\": \"x\"}\n{oops\n");
  const CommandResult result = run_cli("score --metric f1 --input " + input.string(), true);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("pairs.jsonl:2: invalid JSON"), std::string::npos) << result.output;
}

TEST_F(ScoreCommand, UnknownMetricListsKnownOnes) {
  const fs::path input = write("pairs.jsonl", "{\"prediction\": \"x\", \"reference\": \"x\"}\n");
  const CommandResult result = run_cli("score --metric bleu --input " + input.string(), true);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("unknown metric 'bleu'; known metrics: exact_match, f1"), std::string::npos)
      << result.output;
}

TEST_F(ScoreCommand, RegexReadsPatternPerLine) {
  const fs::path input = write("pairs.jsonl",
                               "{\"prediction\": \"billing\", \"pattern\": \"billing|refund\"}\n"
                               "{\"prediction\": \"it is billing\", \"pattern\": \"billing\", \"pattern_mode\": \"search\"}\n"
                               "{\"prediction\": \"shipping\", \"pattern\": \"billing\"}\n");
  const CommandResult result = run_cli("score --metric regex --json --input " + input.string(), false);
  ASSERT_EQ(result.exit_code, 0);
  const nlohmann::json output = nlohmann::json::parse(result.output);
  EXPECT_EQ(output["scores"][0]["score"], 1.0);
  EXPECT_EQ(output["scores"][1]["score"], 1.0);
  EXPECT_EQ(output["scores"][2]["score"], 0.0);
}

}  // namespace
}  // namespace stepdown::eval
