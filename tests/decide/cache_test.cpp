// Cache keys change with every input that changes the result and with nothing else, and
// entries appear only when committed.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "stepdown/decide/cache.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;

QuantizeKeyInputs gptq_inputs() {
  QuantizeKeyInputs inputs;
  inputs.source_sha256 = "aa";
  inputs.scheme = "q4_0";
  inputs.method = "gptq";
  inputs.params = {{"damp", "0.01"}};
  inputs.calibration_sha256 = "cc";
  inputs.calib_samples = 64;
  inputs.calib_seq_len = 256;
  inputs.seed = 1;
  inputs.tool_version = "0.1.0";
  return inputs;
}

TEST(DecideCache, QuantizeKeyIsStable) {
  EXPECT_EQ(quantize_key(gptq_inputs()), quantize_key(gptq_inputs()));
  EXPECT_EQ(quantize_key(gptq_inputs()).size(), 64u);
}

TEST(DecideCache, QuantizeKeyChangesWithEachInput) {
  const std::string base = quantize_key(gptq_inputs());
  const std::vector<std::function<void(QuantizeKeyInputs&)>> changes = {
      [](auto& i) { i.source_sha256 = "ab"; },  [](auto& i) { i.scheme = "q4_1"; },
      [](auto& i) { i.method = "awq"; },        [](auto& i) { i.params["damp"] = "0.02"; },
      [](auto& i) { i.calibration_sha256 = "cd"; }, [](auto& i) { i.calib_samples = 32; },
      [](auto& i) { i.calib_seq_len = 128; },   [](auto& i) { i.seed = 2; },
      [](auto& i) { i.tool_version = "0.2.0"; }};
  for (size_t i = 0; i < changes.size(); ++i) {
    QuantizeKeyInputs inputs = gptq_inputs();
    changes[i](inputs);
    EXPECT_NE(quantize_key(inputs), base) << "change " << i;
  }
}

TEST(DecideCache, RtnKeyIgnoresCalibration) {
  QuantizeKeyInputs a = gptq_inputs();
  a.method = "rtn";
  QuantizeKeyInputs b = a;
  b.calibration_sha256 = "other";
  b.calib_samples = 1;
  EXPECT_EQ(quantize_key(a), quantize_key(b));
}

TEST(DecideCache, BenchKeyDependsOnHostAndShape) {
  const std::string base = bench_key("m", "cpu|2|unset|h", 64, 32, 3, 1, "0.1.0");
  EXPECT_EQ(base, bench_key("m", "cpu|2|unset|h", 64, 32, 3, 1, "0.1.0"));
  EXPECT_NE(base, bench_key("m2", "cpu|2|unset|h", 64, 32, 3, 1, "0.1.0"));
  EXPECT_NE(base, bench_key("m", "cpu|4|unset|h", 64, 32, 3, 1, "0.1.0"));
  EXPECT_NE(base, bench_key("m", "cpu|2|unset|h", 128, 32, 3, 1, "0.1.0"));
  EXPECT_NE(base, bench_key("m", "cpu|2|unset|h", 64, 16, 3, 1, "0.1.0"));
  EXPECT_NE(base, bench_key("m", "cpu|2|unset|h", 64, 32, 5, 1, "0.1.0"));
}

TEST(DecideCache, EvalKeyDependsOnModelSuiteAndGenerator) {
  const std::string base = eval_key("m", "s", "", "0.1.0");
  EXPECT_NE(base, eval_key("m2", "s", "", "0.1.0"));
  EXPECT_NE(base, eval_key("m", "s2", "", "0.1.0"));
  EXPECT_NE(base, eval_key("m", "s", "http://127.0.0.1:8080 model=x", "0.1.0"));
  EXPECT_NE(base, eval_key("m", "s", "", "0.2.0"));
}

TEST(DecideCache, HostIdentityNamesThreads) {
  EXPECT_NE(host_identity(2), host_identity(3));
  EXPECT_NE(host_identity(2).find("|2|"), std::string::npos);
}

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("stepdown_decide_cache_" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(StepCacheTest, EntryAppearsOnlyOnCommit) {
  const StepCache cache(root_);
  EXPECT_FALSE(cache.find("bench", "k1").has_value());
  {
    StepCache::Pending pending = cache.begin("bench", "k1");
    std::ofstream(pending.dir() / "bench.json") << "{}";
    EXPECT_FALSE(cache.find("bench", "k1").has_value());
    const fs::path committed = pending.commit();
    EXPECT_EQ(committed, root_ / "bench" / "k1");
  }
  ASSERT_TRUE(cache.find("bench", "k1").has_value());
  EXPECT_TRUE(fs::exists(*cache.find("bench", "k1") / "bench.json"));
}

TEST_F(StepCacheTest, AbandonedEntryIsRemoved) {
  const StepCache cache(root_);
  fs::path temp;
  {
    StepCache::Pending pending = cache.begin("eval", "k2");
    temp = pending.dir();
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(cache.find("eval", "k2").has_value());
}

TEST_F(StepCacheTest, LeftoversOfDeadRunsAreRemoved) {
  // A child that exits at once gives the pid of a process that no longer exists.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const fs::path dead = root_ / "quantize" / ("k3.tmp-" + std::to_string(child));
  const fs::path alive = root_ / "quantize" / ("k4.tmp-" + std::to_string(::getpid()));
  fs::create_directories(dead);
  fs::create_directories(alive);
  const StepCache cache(root_);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
}

}  // namespace
}  // namespace stepdown::decide
