// stepdown bench end to end on stories260K: JSON on stdout, a table without --json, and a
// one-line error for a bad option value.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace {

using CommandResult = stepdown::test::CliResult;

// Runs `stepdown bench` on stories260K with tiny sizes and `args`, capturing stdout and stderr.
CommandResult bench_stories(const std::string& args) {
  const std::filesystem::path dir = stepdown::test::shared_dir() / "models" / "stories260K";
  return stepdown::test::run_cli("bench " + (dir / "stories260K.bin").string() + " --tokenizer " +
                                 (dir / "tok512.bin").string() +
                                 " -p 6 -n 4 -r 2 --warmup 1 --threads 2 --no-bandwidth " + args);
}

TEST(BenchCommand, JsonReport) {
  const CommandResult r = bench_stories("--json --weights f32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["weights"], "f32");
  EXPECT_EQ(json["threads"], 2);
  EXPECT_EQ(json["options"]["prompt_tokens"], 6);
  EXPECT_EQ(json["options"]["decode_tokens"], 4);
  EXPECT_EQ(json["options"]["repetitions"], 2);
  EXPECT_EQ(json["ttft_ms"]["count"], 2);
  EXPECT_EQ(json["tpot_ms"]["count"], 8);
  EXPECT_EQ(json["tpot_samples_ms"].size(), 8u);
  EXPECT_GT(json["decode_tokens_per_second"].get<double>(), 0.0);
  EXPECT_GT(json["prefill_tokens_per_second"].get<double>(), 0.0);
  EXPECT_EQ(json["decode_efficiency"].get<double>(), 0.0);
  EXPECT_GT(json["weight_bytes_per_token"].get<double>(), 0.0);
}

TEST(BenchCommand, TableByDefault) {
  const CommandResult r = bench_stories("");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pp6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tg4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TTFT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos) << r.out;
}

TEST(BenchCommand, RejectsUnknownWeights) {
  const CommandResult r = bench_stories("--weights int3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--weights is \"int3\""), std::string::npos) << r.err;
}

}  // namespace
