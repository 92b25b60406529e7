// The ladder's order and when a rung is skipped; the latency model's calibration.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/decide/devices.h"
#include "stepdown/decide/rungs.h"

namespace stepdown::decide {
namespace {

using ::testing::HasSubstr;

TEST(DecideRungs, LadderOrder) {
  std::vector<std::string> names;
  for (const RungDefinition& rung : ladder()) names.push_back(rung.name);
  EXPECT_EQ(names, (std::vector<std::string>{"baseline", "bf16", "int8", "w8a8", "int8-outlier", "fp8", "int4-awq",
                                             "int4-gptq", "int4", "mixed", "smaller-architecture"}));
  int previous = 0;
  for (const RungDefinition& rung : ladder()) {
    EXPECT_GE(rung.rung_index, previous) << rung.name;
    previous = rung.rung_index;
  }
  EXPECT_EQ(find_rung("int8")->scheme, "q8_0");
  EXPECT_EQ(find_rung("int4-gptq")->method, "gptq");
  EXPECT_EQ(find_rung("int9"), nullptr);
}

TEST(DecideRungs, Fp8SkippedWithoutNativeFp8) {
  const RungDefinition& fp8 = *find_rung("fp8");
  EXPECT_EQ(skip_reason(fp8, true, {"f32", "int8"}), "no native FP8 on any target device");
  EXPECT_EQ(skip_reason(fp8, true, {"fp8"}), std::nullopt);
}

TEST(DecideRungs, W8a8NeedsNativeInt8) {
  const RungDefinition& w8a8 = *find_rung("w8a8");
  EXPECT_EQ(skip_reason(w8a8, true, {"f32"}), "no target device has native int8 compute");
  EXPECT_EQ(skip_reason(w8a8, true, {"int8"}), std::nullopt);
}

TEST(DecideRungs, UnregisteredMethodIsNamed) {
  const std::optional<std::string> reason = skip_reason(*find_rung("int4-awq"), false, {"f32"});
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(*reason, "quantization method 'awq' is not registered in this build");
  EXPECT_EQ(skip_reason(*find_rung("int8"), false, {"f32"}), std::nullopt);
}

TEST(DecideRungs, SmallerArchitectureNeverBuilt) {
  EXPECT_THAT(*skip_reason(*find_rung("smaller-architecture"), true, {"f32"}), HasSubstr("not built"));
}

TEST(DecideRungs, ComputePrecision) {
  EXPECT_EQ(compute_precision("", "rtn"), "f32");
  EXPECT_EQ(compute_precision("bf16", "rtn"), "bf16");
  EXPECT_EQ(compute_precision("q8_0", "rtn"), "int8");
  EXPECT_EQ(compute_precision("fp8", "fp8"), "fp8");
}

TEST(DecideDevices, CalibrateThenPredictReturnsMeasurement) {
  bench::HostInfo host;
  host.hardware_threads = 2;
  host.cpu_features = {"avx2"};
  const DeviceProfile profile = resolve_device("host", 20.0, host, HostProbes{});
  ModelCost cost;
  cost.weight_bytes_per_token = 270e6;
  cost.kv_bytes_per_token = 1e6;
  cost.flops_per_token = 270e6;
  cost.compute_precision = "f32";
  cost.prompt_tokens = 64;
  cost.output_tokens = 32;
  const Efficiency efficiency = calibrate(profile, cost, 150.0, 25.0);
  const LatencyPrediction prediction = predict(profile, cost, efficiency);
  EXPECT_NEAR(prediction.tpot_ms, 25.0, 1e-6);
  EXPECT_NEAR(prediction.ttft_ms, 150.0, 1e-6);

  // The same efficiencies on a device with less bandwidth predict a slower decode.
  const LatencyPrediction pi = predict(resolve_device("raspberry-pi-5", 20.0, host, HostProbes{}), cost, efficiency);
  EXPECT_GT(pi.tpot_ms, prediction.tpot_ms);
}

TEST(DecideDevices, UnknownDeviceListsNames) {
  try {
    resolve_device("pdp-11", 1, bench::HostInfo{}, HostProbes{});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("pdp-11"));
    EXPECT_THAT(e.what(), HasSubstr("jetson-orin-nano"));
  }
}

TEST(DecideDevices, HostProfileUsesMeasuredBandwidth) {
  bench::HostInfo host;
  host.hardware_threads = 2;
  host.cpu_features = {"avx2", "avx512f", "avx512_vnni"};
  const DeviceProfile profile = resolve_device("host", 12.5, host, HostProbes{{{"f32", 0.2}}, {}});
  EXPECT_DOUBLE_EQ(profile.read_bandwidth_gbps, 12.5);
  EXPECT_DOUBLE_EQ(profile.peak_tflops.at("f32"), 0.2);
}

TEST(DecideDevices, HostFormatsWithoutProbeKeepEfficiency) {
  Efficiency efficiency;
  efficiency.bandwidth = 0.5;
  efficiency.compute = 0.25;
  const Efficiency same = for_host_formats(efficiency, "f32", HostProbes{});
  EXPECT_DOUBLE_EQ(same.bandwidth, 0.5);
  EXPECT_TRUE(same.bandwidth_by_precision.empty());
}

}  // namespace
}  // namespace stepdown::decide
