// stepdown report: renders the sample decision record into a folder, and rejects files
// that are not decision records.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "test_paths.h"

namespace stepdown {
namespace {

std::filesystem::path scratch(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("stepdown-report-cli-" + std::to_string(getpid())) / name;
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(ReportCli, RendersSampleRecord) {
  const std::filesystem::path out = scratch("sample");
  const std::filesystem::path sample = test::source_dir() / "tests" / "decide" / "data" / "decision-sample.json";
  const test::CliResult result = test::run_cli("report '" + sample.string() + "' -o '" + out.string() + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(std::filesystem::exists(out / "report.md"));
  EXPECT_TRUE(std::filesystem::exists(out / "report.html"));
  EXPECT_TRUE(std::filesystem::exists(out / "plots" / "strata.svg"));
}

TEST(ReportCli, MissingGnuplotStillRenders) {
  const std::filesystem::path out = scratch("no-gnuplot");
  const std::filesystem::path sample = test::source_dir() / "tests" / "decide" / "data" / "decision-sample.json";
  const test::CliResult result =
      test::run_cli("report '" + sample.string() + "' -o '" + out.string() + "' --gnuplot /nonexistent/gnuplot");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("Plots are missing"), std::string::npos) << result.err;
  EXPECT_TRUE(std::filesystem::exists(out / "report.html"));
}

TEST(ReportCli, RejectsOtherJson) {
  const std::filesystem::path dir = scratch("bad");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "gate.json") << R"({"schema": "stepdown.gate/1"})";
  std::ofstream(dir / "broken.json") << "{\"schema\": ";
  const test::CliResult wrong = test::run_cli("report '" + (dir / "gate.json").string() + "' -o '" + (dir / "out").string() + "'");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("stepdown.decision/1"), std::string::npos) << wrong.err;
  const test::CliResult broken = test::run_cli("report '" + (dir / "broken.json").string() + "' -o '" + (dir / "out").string() + "'");
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_NE(broken.err.find("invalid JSON"), std::string::npos) << broken.err;
  const test::CliResult missing = test::run_cli("report /nonexistent/decision.json -o '" + (dir / "out").string() + "'");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("not found"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace stepdown
