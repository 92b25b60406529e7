// stepdown run end to end on stories260K: the CLI's stdout and stderr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "test_paths.h"

namespace {

using ::testing::HasSubstr;

using CommandResult = stepdown::test::CliResult;

// Runs `stepdown run` on stories260K with `args`, capturing stdout and stderr.
CommandResult run_stories(const std::string& args) {
  const std::filesystem::path dir = stepdown::test::shared_dir() / "models" / "stories260K";
  return stepdown::test::run_cli("run " + (dir / "stories260K.bin").string() + " --tokenizer " +
                                 (dir / "tok512.bin").string() + " --threads 2 " + args);
}

TEST(RunCommand, GreedyStreamsKnownText) {
  const CommandResult r = run_stories("--prompt '' --temp 0 -n 60");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball. She wanted to play with it, but it was too high\n");
  EXPECT_THAT(r.err, HasSubstr("TTFT"));
  EXPECT_THAT(r.err, HasSubstr("prefill"));
  EXPECT_THAT(r.err, HasSubstr("decode"));
  EXPECT_THAT(r.err, HasSubstr("peak RSS"));
}

TEST(RunCommand, TopKOneIsGreedy) {
  const CommandResult greedy = run_stories("--prompt 'Tim' --temp 0 -n 20");
  const CommandResult top_k = run_stories("--prompt 'Tim' --temp 1.5 --top-k 1 --seed 9 -n 20");
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  EXPECT_EQ(top_k.out, greedy.out);
}

TEST(RunCommand, SameSeedRepeatsSampledText) {
  const std::string args = "--prompt 'Lily' --temp 1.0 --top-k 0 --top-p 1 --min-p 0 -n 40 --seed ";
  const CommandResult first = run_stories(args + "123");
  const CommandResult second = run_stories(args + "123");
  const CommandResult other = run_stories(args + "124");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, second.out);
  EXPECT_NE(first.out, other.out);
}

TEST(RunCommand, InvalidSamplingIsOneLineError) {
  const CommandResult r = run_stories("--prompt 'x' --top-p 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("top-p is 2"));
}

}  // namespace
