// The whole evaluation loop through the CLI on stories260K: suite build from traffic ->
// goldens from the baseline -> eval of the same model (every delta 0, the gate passes)
// -> eval of a degraded copy (the gate exits 1 naming the failing strata). Then bad
// input: each ends with an error naming the line, field or endpoint, a non-zero exit, and
// no results file.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/eval/results.h"
#include "test_paths.h"

namespace stepdown::eval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

CommandResult run_cli(const std::string& arguments) {
  const std::string command = test::cli_path().string() + " " + arguments + " 2>&1";
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

fs::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

std::string stories_model_args(const fs::path& model) {
  return fmt::format("--model {} --tokenizer {} --threads 2", model.string(), (stories_dir() / "tok512.bin").string());
}

// A copy of stories260K.bin with every weight scaled by (1 + 0.6 z), z ~ N(0, 1) seeded:
// the same architecture, clearly worse text.
void write_degraded_model(const fs::path& path) {
  std::ifstream in(stories_dir() / "stories260K.bin", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);  // llama2.c: dim, hidden_dim, layers, heads, kv, vocab, seq
  std::mt19937_64 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.6f);
  for (size_t offset = kHeaderBytes; offset + sizeof(float) <= bytes.size(); offset += sizeof(float)) {
    float w;
    std::memcpy(&w, bytes.data() + offset, sizeof w);
    w *= 1.0f + noise(rng);
    std::memcpy(bytes.data() + offset, &w, sizeof w);
  }
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class EvalEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stepdown_e2e_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
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

// Three strata of story openings, each prompt unlike the others so none is a duplicate.
std::string traffic_jsonl() {
  const std::vector<std::pair<std::string, std::vector<std::string>>> strata = {
      {"animals",
       {"The little cat saw a bird", "A big dog ran to the", "The fish swam in the blue", "One day a bunny found",
        "The bear was very hungry and", "A small frog jumped on"}},
      {"family",
       {"Mom gave Lily a red", "Tom and his dad went", "Grandma made a cake for", "Sue asked her brother to",
        "The baby laughed when", "Dad told Ben that he"}},
      {"places",
       {"At the park there was a", "The house on the hill had", "In the forest the trees", "The school was big and",
        "By the sea the children", "The shop sold many toys and"}}};
  std::string out;
  for (const auto& [stratum, prompts] : strata) {
    for (const std::string& prompt : prompts) out += json{{"stratum", stratum}, {"prompt", prompt}}.dump() + "\n";
  }
  return out;
}

TEST_F(EvalEndToEnd, SameModelPassesDegradedModelFails) {
  const fs::path traffic = write("traffic.jsonl", traffic_jsonl());
  const fs::path policy = write("gate.yaml",
                                "primary_metric: rougeL\nmax_regression: 0.05\nbootstrap_samples: 1000\nseed: 1\n"
                                "confidence: 0.95\noverall:\n  max_regression: 0.02\n");
  const fs::path model = stories_dir() / "stories260K.bin";

  // 1. Suite from traffic.
  CommandResult r = run_cli(fmt::format("suite build --traffic {} --per-stratum 6 --seed 3 --metric rougeL "
                                        "--metric exact_match --max-tokens 24 -o {}",
                                        traffic.string(), (dir_ / "suite.jsonl").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // 2. Goldens from the baseline.
  r = run_cli(fmt::format("suite golden {} --batch 4 --suite {} -o {}", stories_model_args(model),
                          (dir_ / "suite.jsonl").string(), (dir_ / "golden.jsonl").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream golden(dir_ / "golden.jsonl");
  std::string line;
  int n_items = 0;
  while (std::getline(golden, line)) {
    const json item = json::parse(line);
    EXPECT_EQ(item.at("reference_source"), "golden") << line;
    EXPECT_FALSE(item.at("reference").get<std::string>().empty()) << line;
    ++n_items;
  }
  EXPECT_EQ(n_items, 18);

  // 3. The baseline and the same model again: every output equals its golden.
  for (const char* name : {"baseline.json", "same.json"}) {
    r = run_cli(fmt::format("eval {} --batch {} --suite {} -o {}", stories_model_args(model),
                            name[0] == 'b' ? 4 : 1, (dir_ / "golden.jsonl").string(), (dir_ / name).string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const Results baseline = read_results(dir_ / "baseline.json");
  ASSERT_EQ(baseline.items.size(), 18u);
  for (const ItemResult& item : baseline.items) {
    EXPECT_DOUBLE_EQ(item.scores.at("rougeL"), 1.0) << item.id;
    EXPECT_DOUBLE_EQ(item.scores.at("exact_match"), 1.0) << item.id;
    EXPECT_GT(item.output_tokens, 0) << item.id;
  }
  EXPECT_EQ(baseline.strata.size(), 3u);
  r = run_cli(fmt::format("gate --baseline {} --candidate {} --policy {}", (dir_ / "baseline.json").string(),
                          (dir_ / "same.json").string(), policy.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // 4. A degraded copy regresses in every stratum.
  write_degraded_model(dir_ / "degraded.bin");
  r = run_cli(fmt::format("eval {} --suite {} -o {}", stories_model_args(dir_ / "degraded.bin"),
                          (dir_ / "golden.jsonl").string(), (dir_ / "degraded.json").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Results degraded = read_results(dir_ / "degraded.json");
  EXPECT_LT(degraded.overall.metrics.at("rougeL").mean, 0.7);
  r = run_cli(fmt::format("gate --baseline {} --candidate {} --policy {}", (dir_ / "baseline.json").string(),
                          (dir_ / "degraded.json").string(), policy.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("gate failed: regression beyond tolerance in animals, family, places"), std::string::npos)
      << r.output;
}

// A loopback port with nothing listening: bound, then closed.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class EvalBadInput : public EvalEndToEnd {
 protected:
  // Runs eval on `suite_text` and checks it fails without a results file and with every
  // piece of `expected` in its message.
  void expect_failure(const std::string& suite_text, const std::vector<std::string>& expected,
                      const std::string& extra_args = "") {
    const fs::path suite = write("suite.jsonl", suite_text);
    const fs::path output = dir_ / "results.json";
    const CommandResult r =
        run_cli(fmt::format("eval {} --suite {} -o {} {}", stories_model_args(stories_dir() / "stories260K.bin"),
                            suite.string(), output.string(), extra_args));
    EXPECT_NE(r.exit_code, 0) << r.output;
    for (const std::string& piece : expected) EXPECT_NE(r.output.find(piece), std::string::npos) << piece << "\n" << r.output;
    EXPECT_FALSE(fs::exists(output)) << "a results file was written";
    for (const auto& entry : fs::directory_iterator(dir_)) {
      EXPECT_EQ(entry.path().filename().string().find("results.json"), std::string::npos) << entry.path();
    }
  }
};

const char* kGoodLine = R"({"id": "a", "stratum": "s", "prompt": "Once upon a time", "reference": "x", "metric": "rougeL", "max_tokens": 8})";

TEST_F(EvalBadInput, MalformedJsonLine) {
  expect_failure(std::string(kGoodLine) + "\n{\"id\": \"b\", \"stratum\": \"s\",\n", {"suite.jsonl:2", "invalid JSON"});
}

TEST_F(EvalBadInput, UnknownMetric) {
  expect_failure(std::string(kGoodLine) +
                     "\n{\"id\": \"b\", \"stratum\": \"s\", \"prompt\": \"Hi\", \"metric\": \"bleurt\", "
                     "\"max_tokens\": 8}\n",
                 {"suite.jsonl:2", "field 'metric'", "bleurt"});
}

TEST_F(EvalBadInput, MissingField) {
  expect_failure(R"({"id": "a", "stratum": "s", "prompt": "Hi", "metric": "rougeL"})"
                 "\n",
                 {"suite.jsonl:1", "max_tokens"});
}

TEST_F(EvalBadInput, JudgeEndpointDown) {
  const int port = closed_port();
  expect_failure(R"({"id": "judged-1", "stratum": "s", "prompt": "Once upon a time", "metric": "judge", )"
                 R"("rubric": "Tells a story about a cat.", "max_tokens": 8})"
                 "\n",
                 {fmt::format("127.0.0.1:{}", port), "judged-1"},
                 fmt::format("--judge-endpoint http://127.0.0.1:{} --judge-api-model judge", port));
}

TEST_F(EvalBadInput, JudgeWithoutJudgeModel) {
  expect_failure(R"({"id": "judged-2", "stratum": "s", "prompt": "Hi", "metric": "judge", "rubric": "r", "max_tokens": 8})"
                 "\n",
                 {"judged-2", "--judge-model"});
}

}  // namespace
}  // namespace stepdown::eval
