#pragma once
// Target devices and latency prediction for the climb: the one place decide calls device
// profiles (bench/device_profile.h) and the latency model (bench/latency_predict.h).
// NOTE: until those headers land, this file carries its own small versions with the same
// fields and a two-entry builtin table of spec-sheet estimates. When they land, the types
// below become aliases of bench's and the functions forward to it.
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/bench/host_info.h"

namespace stepdown::decide {

struct DeviceProfile {
  std::string name;
  std::string description;
  double read_bandwidth_gbps = 0;
  double memory_gb = 0;
  std::map<std::string, double> peak_tflops;  // keys "f32","f16","bf16","int8","fp8","int4"
  std::vector<std::string> native_formats;    // "fp8","int8","bf16",...
  double network_rtt_ms = 0;
  bool measured = false;
  std::map<std::string, std::string> sources;
};

struct ModelCost {
  double weight_bytes_per_token = 0;
  double kv_bytes_per_token = 0;
  double flops_per_token = 0;
  std::string compute_precision;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
};

// Fractions of the device's peak bandwidth and compute that the kernels reach.
struct Efficiency {
  double bandwidth = 0;
  double compute = 0;
};

struct LatencyPrediction {
  double ttft_ms = 0;
  double tpot_ms = 0;
  double e2e_ms = 0;
  bool fits_memory = true;
};

// The profile of a target named in the policy: "host", a builtin name, or a YAML file
// path. Throws InvalidArgument listing the known names for anything else.
DeviceProfile resolve_device(const std::string& name_or_path, double host_read_bandwidth_gbps,
                             const bench::HostInfo& host, int threads);

std::vector<std::string> builtin_devices();

LatencyPrediction predict(const DeviceProfile& device, const ModelCost& cost, const Efficiency& efficiency);

// The efficiency that makes predict() on `host` return the measured TTFT and TPOT.
Efficiency calibrate(const DeviceProfile& host, const ModelCost& cost, double measured_ttft_ms,
                     double measured_tpot_ms);

}  // namespace stepdown::decide
