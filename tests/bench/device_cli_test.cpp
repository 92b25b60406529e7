// stepdown devices: the table of builtin profiles, one profile as YAML or JSON, and the
// errors for an unknown name or a malformed file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace stepdown {
namespace {

TEST(DevicesCli, ListsBuiltinProfiles) {
  const test::CliResult result = test::run_cli("devices");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("jetson-orin-nano"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("h200"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("raspberry-pi-5"), std::string::npos) << result.out;
}

TEST(DevicesCli, ListAsJson) {
  const test::CliResult result = test::run_cli("devices --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json list = nlohmann::json::parse(result.out);
  ASSERT_EQ(list.size(), 8u);
  EXPECT_EQ(list[0]["name"], "apple-m2");
  EXPECT_DOUBLE_EQ(list[0]["read_bandwidth_gbps"].get<double>(), 100.0);
}

TEST(DevicesCli, OneProfileWithSources) {
  const test::CliResult result = test::run_cli("devices h100-sxm --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json profile = nlohmann::json::parse(result.out);
  EXPECT_DOUBLE_EQ(profile["peak_tflops"]["fp8"].get<double>(), 1978.9);
  EXPECT_NE(profile["sources"]["network_rtt_ms"].get<std::string>().find("assumed"), std::string::npos);

  const test::CliResult yaml = test::run_cli("devices jetson-orin-nano");
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_NE(yaml.out.find("read_bandwidth_gbps: 68"), std::string::npos) << yaml.out;
}

TEST(DevicesCli, UnknownNameFails) {
  const test::CliResult result = test::run_cli("devices tpu-v9");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("unknown device 'tpu-v9'"), std::string::npos) << result.err;
}

TEST(DevicesCli, MalformedFileNamesLine) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("stepdown-device-cli-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(path) << "name: x\nread_bandwidth_gbps: 1\nmemory_gb: 1\npeak_tflops: {f32: 1}\nturbo: true\n";
  const test::CliResult result = test::run_cli("devices " + path.string());
  std::filesystem::remove(path);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find(path.string() + ":5"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("turbo"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace stepdown
