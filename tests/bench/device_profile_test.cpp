// Device profiles: the builtin YAML files compiled into the binary, a user's own file, the
// errors for malformed files, and this host's profile.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <unistd.h>

#include "stepdown/bench/device_profile.h"
#include "stepdown/core/error.h"
#include "test_paths.h"

namespace stepdown::bench {
namespace {

const std::vector<std::string> kExpectedDevices = {"apple-m2",         "apple-m3-max",   "h100-sxm",
                                                   "h200",             "jetson-agx-orin-64gb", "jetson-orin-nano",
                                                   "raspberry-pi-5",   "snapdragon-8-gen-3"};

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("stepdown-device-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& yaml) {
  try {
    parse_device_profile(yaml, "user.yaml");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

const char* kValid =
    "name: edge-box\n"
    "description: a test device\n"
    "read_bandwidth_gbps: 50\n"
    "memory_gb: 16\n"
    "peak_tflops:\n"
    "  f16: 8\n"
    "  int8: 16\n"
    "native_formats: [int8, f16]\n"
    "network_rtt_ms: 3.5\n"
    "sources:\n"
    "  read_bandwidth_gbps: \"estimate: 128-bit LPDDR5 at 3200 MT/s\"\n"
    "  peak_tflops.int8: \"estimate: vendor figure halved for dense\"\n";

TEST(DeviceProfile, BuiltinNamesAreTheShippedFiles) { EXPECT_EQ(builtin_device_names(), kExpectedDevices); }

TEST(DeviceProfile, EveryBuiltinHasFiguresAndSources) {
  for (const std::string& name : builtin_device_names()) {
    SCOPED_TRACE(name);
    const DeviceProfile profile = builtin_device_profile(name);
    EXPECT_EQ(profile.name, name);
    EXPECT_FALSE(profile.description.empty());
    EXPECT_GT(profile.read_bandwidth_gbps, 0.0);
    EXPECT_GT(profile.memory_gb, 0.0);
    EXPECT_FALSE(profile.measured);
    EXPECT_FALSE(profile.native_formats.empty());
    EXPECT_FALSE(profile.peak_tflops.empty());
    EXPECT_TRUE(profile.sources.count("read_bandwidth_gbps"));
    EXPECT_TRUE(profile.sources.count("memory_gb"));
    EXPECT_TRUE(profile.sources.count("native_formats"));
    for (const auto& [precision, tflops] : profile.peak_tflops) {
      EXPECT_GT(tflops, 0.0) << precision;
      EXPECT_TRUE(profile.sources.count("peak_tflops." + precision)) << precision;
    }
    // Every figure cites a URL or is labelled an estimate.
    for (const auto& [key, source] : profile.sources) {
      const bool cited = source.find("http") != std::string::npos;
      const bool estimated = source.rfind("estimate:", 0) == 0;
      EXPECT_TRUE(cited || estimated) << key << ": " << source;
    }
  }
}

TEST(DeviceProfile, CloudDevicesHaveAssumedRoundTrip) {
  for (const char* name : {"h100-sxm", "h200"}) {
    const DeviceProfile profile = builtin_device_profile(name);
    EXPECT_GT(profile.network_rtt_ms, 0.0) << name;
    ASSERT_TRUE(profile.sources.count("network_rtt_ms")) << name;
    EXPECT_NE(profile.sources.at("network_rtt_ms").find("assumed"), std::string::npos) << name;
  }
  EXPECT_EQ(builtin_device_profile("jetson-orin-nano").network_rtt_ms, 0.0);
}

TEST(DeviceProfile, HopperHasFp8AndOrinHasNot) {
  const DeviceProfile h100 = builtin_device_profile("h100-sxm");
  EXPECT_TRUE(h100.peak_tflops.count("fp8"));
  EXPECT_NE(std::find(h100.native_formats.begin(), h100.native_formats.end(), "fp8"), h100.native_formats.end());
  const DeviceProfile orin = builtin_device_profile("jetson-agx-orin-64gb");
  EXPECT_FALSE(orin.peak_tflops.count("fp8"));
  EXPECT_DOUBLE_EQ(builtin_device_profile("h200").read_bandwidth_gbps, 4800.0);
}

TEST(DeviceProfile, EmbeddedCopyMatchesSourceFile) {
  for (const std::string& name : builtin_device_names()) {
    SCOPED_TRACE(name);
    const DeviceProfile embedded = builtin_device_profile(name);
    const DeviceProfile file = load_device_profile(test::source_dir() / "data" / "devices" / (name + ".yaml"));
    EXPECT_EQ(to_yaml(embedded), to_yaml(file));
  }
}

TEST(DeviceProfile, UnknownBuiltinListsKnownNames) {
  try {
    builtin_device_profile("tpu-v9");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("tpu-v9"), std::string::npos) << message;
    EXPECT_NE(message.find("jetson-orin-nano"), std::string::npos) << message;
    EXPECT_NE(message.find("h200"), std::string::npos) << message;
  }
}

TEST(DeviceProfile, LoadsUserFile) {
  const std::filesystem::path path = write_temp("edge-box.yaml", kValid);
  const DeviceProfile profile = load_device_profile(path);
  EXPECT_EQ(profile.name, "edge-box");
  EXPECT_DOUBLE_EQ(profile.read_bandwidth_gbps, 50.0);
  EXPECT_DOUBLE_EQ(profile.memory_gb, 16.0);
  EXPECT_DOUBLE_EQ(profile.peak_tflops.at("int8"), 16.0);
  EXPECT_EQ(profile.peak_tflops.size(), 2u);
  EXPECT_EQ(profile.native_formats, (std::vector<std::string>{"int8", "f16"}));
  EXPECT_DOUBLE_EQ(profile.network_rtt_ms, 3.5);
  EXPECT_EQ(profile.sources.size(), 2u);

  const DeviceProfile resolved = resolve_device_profile(path.string());
  EXPECT_EQ(to_yaml(resolved), to_yaml(profile));
  EXPECT_EQ(resolve_device_profile("h200").name, "h200");
}

TEST(DeviceProfile, YamlRoundTrip) {
  const DeviceProfile profile = parse_device_profile(kValid, "user.yaml");
  const DeviceProfile again = parse_device_profile(to_yaml(profile), "again.yaml");
  EXPECT_EQ(to_yaml(again), to_yaml(profile));
}

TEST(DeviceProfile, UnknownKeyNamesFileKeyAndLine) {
  const std::string message = error_of(std::string(kValid) + "clock_ghz: 2\n");
  EXPECT_NE(message.find("user.yaml:13"), std::string::npos) << message;
  EXPECT_NE(message.find("clock_ghz"), std::string::npos) << message;
}

TEST(DeviceProfile, UnknownPrecisionRejected) {
  const std::string message = error_of("name: x\nread_bandwidth_gbps: 1\nmemory_gb: 1\npeak_tflops:\n  fp4: 3\n");
  EXPECT_NE(message.find("user.yaml:5"), std::string::npos) << message;
  EXPECT_NE(message.find("peak_tflops.fp4"), std::string::npos) << message;
}

TEST(DeviceProfile, MissingRequiredKeyNamed) {
  const std::string message = error_of("name: x\nmemory_gb: 1\npeak_tflops: {f32: 1}\n");
  EXPECT_NE(message.find("read_bandwidth_gbps"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

TEST(DeviceProfile, BadNumbersRejected) {
  const std::string text_value = error_of("name: x\nread_bandwidth_gbps: fast\nmemory_gb: 1\npeak_tflops: {f32: 1}\n");
  EXPECT_NE(text_value.find("user.yaml:2"), std::string::npos) << text_value;
  EXPECT_NE(text_value.find("fast"), std::string::npos) << text_value;
  const std::string negative = error_of("name: x\nread_bandwidth_gbps: 1\nmemory_gb: -4\npeak_tflops: {f32: 1}\n");
  EXPECT_NE(negative.find("memory_gb"), std::string::npos) << negative;
  const std::string zero = error_of("name: x\nread_bandwidth_gbps: 0\nmemory_gb: 1\npeak_tflops: {f32: 1}\n");
  EXPECT_NE(zero.find("read_bandwidth_gbps"), std::string::npos) << zero;
  const std::string list = error_of("name: x\nread_bandwidth_gbps: 1\nmemory_gb: 1\npeak_tflops: [1, 2]\n");
  EXPECT_NE(list.find("peak_tflops"), std::string::npos) << list;
}

TEST(DeviceProfile, SourceForMissingFieldRejected) {
  const std::string message =
      error_of("name: x\nread_bandwidth_gbps: 1\nmemory_gb: 1\npeak_tflops: {f32: 1}\nsources:\n  peak_tflops.int8: a\n");
  EXPECT_NE(message.find("sources.peak_tflops.int8"), std::string::npos) << message;
  EXPECT_NE(message.find("user.yaml:6"), std::string::npos) << message;
}

TEST(DeviceProfile, InvalidYamlAndMissingFile) {
  EXPECT_THROW(parse_device_profile("name: [unclosed\n", "user.yaml"), FormatError);
  EXPECT_THROW(parse_device_profile("- a\n- b\n", "user.yaml"), FormatError);
  EXPECT_THROW(load_device_profile("/nonexistent/device.yaml"), IoError);
}

TEST(DeviceProfile, HostProfileUsesMeasuredBandwidth) {
  HostInfo info;
  info.cpu_model = "Test CPU";
  info.hardware_threads = 2;
  info.cpu_features = {"avx2", "avx512f", "avx512_vnni", "f16c"};
  const DeviceProfile host = host_device_profile(18.5, info);
  EXPECT_EQ(host.name, "host");
  EXPECT_TRUE(host.measured);
  EXPECT_DOUBLE_EQ(host.read_bandwidth_gbps, 18.5);
  EXPECT_GT(host.memory_gb, 0.0);
  ASSERT_TRUE(host.peak_tflops.count("f32"));
  // VNNI packs four int8 products per f32 lane; no avx512_bf16 flag, so bf16 runs at the f32 rate.
  EXPECT_DOUBLE_EQ(host.peak_tflops.at("int8"), 4.0 * host.peak_tflops.at("f32"));
  EXPECT_DOUBLE_EQ(host.peak_tflops.at("bf16"), host.peak_tflops.at("f32"));
  EXPECT_EQ(host.sources.at("peak_tflops.f32").rfind("estimate:", 0), 0u);
  EXPECT_EQ(host.native_formats, (std::vector<std::string>{"f32", "f16", "int8"}));

  const DeviceProfile measured = host_device_profile(18.5, info, {{"f32", 0.05}, {"int4", 0.02}});
  EXPECT_DOUBLE_EQ(measured.peak_tflops.at("f32"), 0.05);
  EXPECT_DOUBLE_EQ(measured.peak_tflops.at("int4"), 0.02);
  EXPECT_EQ(measured.sources.at("peak_tflops.f32").rfind("measured:", 0), 0u);
  EXPECT_EQ(measured.sources.at("peak_tflops.int8").rfind("estimate:", 0), 0u);
}

}  // namespace
}  // namespace stepdown::bench
