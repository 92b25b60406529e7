// `stepdown decide` through the CLI on stories260K (llama2.c, f32, 260K parameters) with a
// tiny suite: the whole climb, its artifacts, gate.yaml in `stepdown gate`, a rerun that
// reuses the cache, a budget no rung meets, an unreachable endpoint, and SIGINT mid-climb.
//
// The memory budget decides which rung passes, because file sizes are exact while the
// latency of a 1 MB model on a shared host is noise: the f32 baseline needs about 1.1 MB,
// bf16 about 0.6 MB.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <atomic>

#include <fmt/format.h>
#include <httplib.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

fs::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Two strata of story openings scored by rougeL against the baseline's own outputs.
std::string traffic_jsonl() {
  const std::vector<std::pair<std::string, std::vector<std::string>>> strata = {
      {"animals", {"The little cat saw a bird", "A big dog ran to the", "The fish swam in the blue",
                   "One day a bunny found"}},
      {"family", {"Mom gave Lily a red", "Tom and his dad went", "Grandma made a cake for", "Sue asked her brother to"}}};
  std::string out;
  for (const auto& [stratum, prompts] : strata) {
    for (const std::string& prompt : prompts) {
      out += json{{"stratum", stratum}, {"prompt", prompt}, {"metric", "rougeL"}, {"max_tokens", 12}}.dump() + "\n";
    }
  }
  return out;
}

class DecideEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stepdown_decide_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "traffic.jsonl") << traffic_jsonl();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A policy for stories260K; `extra` is appended (budget, rungs, endpoint).
  fs::path write_policy(const std::string& name, const std::string& extra) {
    const std::string text = fmt::format(
        "model: {}\ntokenizer: {}\ntraffic: traffic.jsonl\nper_stratum: 4\nseed: 1\n"
        "device: host\nthreads: 2\nbench: {{repetitions: 2, warmup: 1}}\n"
        "gate: {{bootstrap_samples: 200, seed: 1}}\n"
        "tolerance: {{default: 0.5, metric: rougeL}}\n{}",
        (stories_dir() / "stories260K.bin").string(), (stories_dir() / "tok512.bin").string(), extra);
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }

  std::string decide_args(const fs::path& policy, const fs::path& out) const {
    return fmt::format("decide --policy {} --out {} --cache {} --json", policy.string(), out.string(),
                       (dir_ / "cache").string());
  }

  fs::path dir_;
};

constexpr const char* kFitsBf16 =
    "budget: {tpot_p95_ms: 100000, prompt_tokens: 16, output_tokens: 16}\nmemory_mb: 0.9\n"
    "rungs: [baseline, bf16, int8]\n";

TEST_F(DecideEndToEnd, ClimbWritesDecisionAndArtifacts) {
  const fs::path out = dir_ / "out";
  const test::CliResult r = test::run_cli(decide_args(write_policy("p.yaml", kFitsBf16), out));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // --json prints the recommendation.
  const json recommendation = json::parse(r.out);
  EXPECT_EQ(recommendation["rung"], "bf16");
  EXPECT_EQ(recommendation["model_file"], "model.gguf");
  EXPECT_THAT(recommendation["summary"].get<std::string>(), HasSubstr("BF16 weights meets"));

  const json decision = json::parse(read_text(out / "decision.json"));
  EXPECT_EQ(decision["schema"], "stepdown.decision/1");
  EXPECT_EQ(decision["devices"], json({"host"}));
  EXPECT_DOUBLE_EQ(decision["budget"]["memory_mb"].get<double>(), 0.9);
  EXPECT_EQ(decision["policy_sha256"].get<std::string>().size(), 64u);
  EXPECT_GT(decision["host"]["read_bandwidth_gbps"].get<double>(), 0);
  EXPECT_EQ(decision["host"]["threads"], 2);
  EXPECT_EQ(decision["recommendation"], recommendation);

  // The climb stops at bf16: the baseline misses the memory budget, int8 is not tried.
  const json& rungs = decision["rungs"];
  ASSERT_EQ(rungs.size(), 2u) << rungs.dump(2);
  EXPECT_EQ(rungs[0]["name"], "baseline");
  EXPECT_EQ(rungs[0]["status"], "fail");
  EXPECT_EQ(rungs[0]["meets_budget"]["host"], false);
  EXPECT_THAT(rungs[0]["reasons"][0].get<std::string>(), HasSubstr("above the 0.9 MB memory budget"));
  EXPECT_EQ(rungs[1]["name"], "bf16");
  EXPECT_EQ(rungs[1]["status"], "pass");
  EXPECT_EQ(rungs[1]["scheme"], "bf16");
  EXPECT_EQ(rungs[1]["meets_quality"], true);
  EXPECT_GT(rungs[1]["file_bytes"].get<double>(), 0);
  EXPECT_LT(rungs[1]["file_bytes"].get<double>(), rungs[0]["file_bytes"].get<double>());
  EXPECT_GT(rungs[1]["measured"]["tpot_p95_ms"].get<double>(), 0);
  EXPECT_TRUE(rungs[1]["predicted"].contains("host"));
  EXPECT_GT(rungs[1]["flops_per_token"].get<double>(), 0);
  EXPECT_GT(rungs[1]["resident_bytes"].get<double>(), 0);
  const json& strata = rungs[1]["quality"]["strata"];
  ASSERT_EQ(strata.size(), 2u);
  EXPECT_EQ(strata[0]["name"], "animals");
  EXPECT_EQ(strata[0]["metric"], "rougeL");
  EXPECT_EQ(strata[0]["n"], 4);
  EXPECT_DOUBLE_EQ(strata[0]["tolerance"].get<double>(), 0.5);
  // The baseline compared with itself: every delta is exactly 0.
  for (const json& row : rungs[0]["quality"]["strata"]) EXPECT_EQ(row["delta"].get<double>(), 0.0) << row.dump();
  ASSERT_EQ(decision["predictor_error"].size(), 2u);
  EXPECT_EQ(decision["predictor_error"][0]["calibration_point"], true);

  // Artifacts.
  for (const char* name : {"model.gguf", "manifest.json", "gate.yaml", "baseline-results.json", "golden-suite.jsonl",
                           "suite.jsonl", "rungs/bf16/model.gguf", "rungs/bf16/model.gguf.manifest.json",
                           "rungs/bf16/results.json", "rungs/bf16/bench.json", "rungs/baseline/results.json",
                           "rungs/baseline/bench.json", "report.md", "report.html"}) {
    EXPECT_TRUE(fs::exists(out / name)) << name;
  }
  EXPECT_EQ(read_text(out / "model.gguf"), read_text(out / "rungs/bf16/model.gguf"));
  const json manifest = json::parse(read_text(out / "manifest.json"));
  EXPECT_EQ(manifest["model"]["rung"], "bf16");
  EXPECT_EQ(manifest["transforms"].back()["scheme"], "bf16");
  EXPECT_EQ(manifest["source"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(manifest["quantize_manifest"]["scheme"], "bf16");

  // gate.yaml and baseline-results.json work in `stepdown gate` as CI would use them.
  const test::CliResult gate =
      test::run_cli(fmt::format("gate --baseline {} --candidate {} --policy {}", (out / "baseline-results.json").string(),
                                (out / "rungs/bf16/results.json").string(), (out / "gate.yaml").string()));
  EXPECT_EQ(gate.exit_code, 0) << gate.out << gate.err;

  // No staging folder is left beside the output.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find("out.tmp-"), std::string::npos) << entry.path();
  }

  // A rerun with another budget reuses every finished step.
  const fs::path policy2 = write_policy("p2.yaml",
                                        "budget: {tpot_p95_ms: 90000, prompt_tokens: 16, output_tokens: 16}\n"
                                        "memory_mb: 0.9\nrungs: [baseline, bf16, int8]\n");
  const test::CliResult rerun = test::run_cli(decide_args(policy2, out));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_THAT(rerun.err, HasSubstr("reused"));
  const json decision2 = json::parse(read_text(out / "decision.json"));
  EXPECT_EQ(decision2["rungs"][1]["reused"], json({"build", "bench", "eval"}));
  EXPECT_EQ(decision2["rungs"][0]["reused"], json({"bench", "eval"}));
  EXPECT_DOUBLE_EQ(decision2["budget"]["tpot_p95_ms"].get<double>(), 90000);
}

TEST_F(DecideEndToEnd, NoRungMeetsBudgetExitsOne) {
  // The flags replace the policy's loose budget and its rungs.
  const fs::path policy = write_policy("p.yaml", kFitsBf16);
  const test::CliResult r =
      test::run_cli(decide_args(policy, dir_ / "out") + " --tpot-p95-ms 0.00001 --rungs baseline,int8");
  ASSERT_EQ(r.exit_code, 1) << r.err;
  const json recommendation = json::parse(r.out);
  EXPECT_TRUE(recommendation["rung"].is_null());
  EXPECT_THAT(recommendation["summary"].get<std::string>(), HasSubstr("No rung meets every constraint."));
  EXPECT_THAT(recommendation["next_step"].get<std::string>(), HasSubstr("prune, then distill, then quantize"));
  EXPECT_THAT(recommendation["next_step"].get<std::string>(), HasSubstr("TPOT p95 <= 1e-05 ms on host"));
  // The output folder is still written, without a chosen model.
  EXPECT_TRUE(fs::exists(dir_ / "out" / "decision.json"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "model.gguf"));
  const json decision = json::parse(read_text(dir_ / "out" / "decision.json"));
  ASSERT_EQ(decision["rungs"].size(), 2u);
  EXPECT_EQ(decision["rungs"][1]["name"], "int8");
  EXPECT_EQ(decision["rungs"][1]["status"], "fail");
  EXPECT_TRUE(decision["rungs"][1]["quality"].is_null());
}

TEST_F(DecideEndToEnd, UnreachableEndpointFailsAtOnce) {
  // Bind a loopback port and close it again, so nothing listens there.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);
  ::close(fd);

  const fs::path policy = write_policy(
      "p.yaml", fmt::format("budget: {{tpot_p95_ms: 10}}\nendpoint: {{url: http://127.0.0.1:{}/v1, api_model: base}}\n",
                            port));
  const auto start = std::chrono::steady_clock::now();
  const test::CliResult r = test::run_cli(decide_args(policy, dir_ / "out"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(fmt::format("endpoint http://127.0.0.1:{}/v1 is unreachable", port)));
  EXPECT_THAT(r.err, HasSubstr("start the server"));
  EXPECT_LT(seconds, 20.0) << "the endpoint check should fail before any model work";
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(DecideEndToEnd, EndpointGeneratesGoldens) {
  // A loopback OpenAI-compatible server that completes every prompt with the same text.
  httplib::Server server;
  std::atomic<int> requests{0};
  std::atomic<bool> model_name_ok{true};
  server.Get("/v1/models", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(R"({"data":[{"id":"base"}]})", "application/json");
  });
  server.Post("/v1/completions", [&](const httplib::Request& request, httplib::Response& response) {
    ++requests;
    if (json::parse(request.body).value("model", "") != "base") model_name_ok = false;
    response.set_content(json{{"choices", {{{"text", "once upon a time"}, {"finish_reason", "stop"}}}},
                              {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 4}}}}
                             .dump(),
                         "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  const fs::path policy = write_policy(
      "p.yaml", fmt::format("budget: {{tpot_p95_ms: 100000, prompt_tokens: 16, output_tokens: 16}}\n"
                            "rungs: [baseline]\nendpoint: {{url: http://127.0.0.1:{}/v1, api_model: base}}\n",
                            port));
  const test::CliResult r = test::run_cli(decide_args(policy, dir_ / "out"));
  server.stop();
  serving.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;

  EXPECT_EQ(requests.load(), 8);
  EXPECT_TRUE(model_name_ok.load());
  std::ifstream golden(dir_ / "out" / "golden-suite.jsonl");
  std::string line;
  int items = 0;
  while (std::getline(golden, line)) {
    EXPECT_EQ(json::parse(line).at("reference"), "once upon a time") << line;
    ++items;
  }
  EXPECT_EQ(items, 8);

  // The baseline meets the budget. As a llama2.c file it keeps its format in the output.
  const json recommendation = json::parse(r.out);
  EXPECT_EQ(recommendation["rung"], "baseline");
  EXPECT_EQ(recommendation["model_file"], "model.bin");
  EXPECT_THAT(recommendation["reasons"].dump(), HasSubstr("no compression is needed"));
  EXPECT_EQ(read_text(dir_ / "out" / "model.bin"), read_text(stories_dir() / "stories260K.bin"));
}

TEST_F(DecideEndToEnd, MissingModelFileIsInputError) {
  const fs::path policy = dir_ / "p.yaml";
  std::ofstream(policy) << "model: nowhere.gguf\ntraffic: traffic.jsonl\nbudget: {tpot_p95_ms: 10}\n";
  const test::CliResult r = test::run_cli(decide_args(policy, dir_ / "out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("model"));
  EXPECT_THAT(r.err, HasSubstr("nowhere.gguf not found"));
}

TEST_F(DecideEndToEnd, DefaultWithoutModelSaysFetch) {
  // The embedded default policy reads its model from the model cache; point that at an
  // empty folder.
  const std::string command = fmt::format("STEPDOWN_MODEL_CACHE={} {} decide --cache {} --out {} 2>&1",
                                          (dir_ / "no-models").string(), test::cli_path().string(),
                                          (dir_ / "cache").string(), (dir_ / "out").string());
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << output;
  EXPECT_THAT(output, HasSubstr("SmolLM2-135M-Instruct.Q4_1.gguf"));
  EXPECT_THAT(output, HasSubstr("run scripts/fetch-models"));
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(DecideEndToEnd, ForeignOutputFolderIsKept) {
  fs::create_directories(dir_ / "notes");
  std::ofstream(dir_ / "notes" / "todo.txt") << "keep me";
  const test::CliResult r =
      test::run_cli(decide_args(write_policy("p.yaml", kFitsBf16), dir_ / "notes"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not an earlier output of stepdown decide"));
  EXPECT_EQ(read_text(dir_ / "notes" / "todo.txt"), "keep me");
}

TEST_F(DecideEndToEnd, UnknownFlagIsInputError) {
  const test::CliResult r = test::run_cli("decide --tpot-p95 10");
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(DecideEndToEnd, PolicyErrorIsInputError) {
  const fs::path policy = dir_ / "p.yaml";
  std::ofstream(policy) << "model: m.gguf\nbudget:\n  tpot: 10\n";
  const test::CliResult r = test::run_cli(decide_args(policy, dir_ / "out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("p.yaml:3: key 'budget.tpot': unknown key"));
}

TEST_F(DecideEndToEnd, InterruptKeepsPreviousOutput) {
  const fs::path out = dir_ / "out";
  const fs::path policy = write_policy("p.yaml", kFitsBf16);
  ASSERT_EQ(test::run_cli(decide_args(policy, out)).exit_code, 0);
  const std::string previous = read_text(out / "decision.json");

  // Run again with an empty cache, so the climb has real work to interrupt.
  const std::string cli = test::cli_path().string();
  const std::string cache = (dir_ / "cache2").string();
  const std::string log = (dir_ / "child.err").string();
  const pid_t child = ::fork();
  if (child == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, 1);
    ::dup2(err, 2);
    ::execl(cli.c_str(), cli.c_str(), "decide", "--policy", policy.c_str(), "--out", out.c_str(), "--cache",
            cache.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for the staging folder, then interrupt while the climb runs.
  const fs::path staging = dir_ / fmt::format("out.tmp-{}", child);
  for (int i = 0; i < 2000 && !fs::exists(staging); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(fs::exists(staging)) << "the child never started staging";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(::kill(child, SIGINT), 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before the interrupt; status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  // The cleanup ran, not only the default action.
  EXPECT_THAT(read_text(log), HasSubstr("interrupted by signal 2; removing unfinished output"));

  EXPECT_EQ(read_text(out / "decision.json"), previous);
  std::string left;
  if (fs::exists(staging)) {
    for (const auto& entry : fs::recursive_directory_iterator(staging)) left += entry.path().string() + "\n";
  }
  EXPECT_FALSE(fs::exists(staging)) << left;
  if (!fs::exists(cache)) return;
  for (const auto& kind : fs::recursive_directory_iterator(cache)) {
    EXPECT_EQ(kind.path().filename().string().find(".tmp-"), std::string::npos) << kind.path();
  }
}

}  // namespace
}  // namespace stepdown::decide
