#include "stepdown/decide/devices.h"

#include <algorithm>
#include <cmath>

#include <yaml-cpp/yaml.h>

#include "stepdown/core/error.h"

namespace stepdown::decide {
namespace {

// Spec-sheet figures, not measurements. Raspberry Pi 5: LPDDR4X-4267 on a 32-bit bus
// (4267e6 * 4 bytes = 17.1 GB/s), four Cortex-A76 at 2.4 GHz with two 128-bit FMA pipes
// (16 f32 flops per cycle per core, 32 f16, 64 int8 with SDOT). Jetson Orin Nano 8 GB:
// 68 GB/s LPDDR5, 20 dense int8 TOPS and about 10 dense f16 TFLOPS on its Ampere GPU,
// and no FP8 (Ampere has none).
DeviceProfile raspberry_pi_5() {
  DeviceProfile device;
  device.name = "raspberry-pi-5";
  device.description = "Raspberry Pi 5, 8 GB (4x Cortex-A76 2.4 GHz, LPDDR4X-4267)";
  device.read_bandwidth_gbps = 17.1;
  device.memory_gb = 8;
  device.peak_tflops = {{"f32", 0.154}, {"f16", 0.307}, {"bf16", 0.154}, {"int8", 0.614}, {"int4", 0.614}};
  device.native_formats = {"f32", "f16", "int8"};
  device.sources = {{"read_bandwidth_gbps", "LPDDR4X-4267 x 32-bit bus, spec sheet"},
                    {"peak_tflops", "4 cores x 2.4 GHz x NEON FMA width, spec sheet"}};
  return device;
}

DeviceProfile jetson_orin_nano() {
  DeviceProfile device;
  device.name = "jetson-orin-nano";
  device.description = "NVIDIA Jetson Orin Nano 8 GB (Ampere GPU, LPDDR5 68 GB/s)";
  device.read_bandwidth_gbps = 68;
  device.memory_gb = 8;
  device.peak_tflops = {{"f32", 1.28}, {"f16", 10}, {"bf16", 10}, {"int8", 20}, {"int4", 20}};
  device.native_formats = {"f32", "f16", "bf16", "int8"};
  device.sources = {{"read_bandwidth_gbps", "NVIDIA Jetson Orin Nano data sheet"},
                    {"peak_tflops", "dense tensor-core figures from the data sheet"}};
  return device;
}

// The host's peak is an estimate (2.5 GHz, one 512-bit or two 256-bit FMAs per cycle:
// 32 f32 flops per cycle per thread). It is only the denominator of the compute
// efficiency, which calibrate() measures against the same figure, so host predictions do
// not depend on it. Predictions for other devices scale with the ratio of peaks.
DeviceProfile host_profile(double read_bandwidth_gbps, const bench::HostInfo& host, int threads) {
  const auto has = [&](const char* feature) {
    return std::find(host.cpu_features.begin(), host.cpu_features.end(), feature) != host.cpu_features.end();
  };
  const double f32 = std::max(threads, 1) * 2.5e9 * 32 / 1e12;
  DeviceProfile device;
  device.name = "host";
  device.description = host.cpu_model.empty() ? "this machine" : host.cpu_model;
  device.read_bandwidth_gbps = read_bandwidth_gbps;
  device.memory_gb = 0;  // 0: not checked, the host runs every rung anyway
  device.peak_tflops = {{"f32", f32}, {"f16", f32}, {"bf16", has("avx512_bf16") ? 2 * f32 : f32},
                        {"int8", has("avx512_vnni") ? 4 * f32 : 2 * f32}, {"fp8", f32}, {"int4", 2 * f32}};
  device.native_formats = {"f32"};
  if (has("avx512_bf16")) device.native_formats.push_back("bf16");
  if (has("avx512_vnni")) device.native_formats.push_back("int8");
  device.measured = true;
  device.sources = {{"read_bandwidth_gbps", "measured by the read-bandwidth probe in this run"},
                    {"peak_tflops", "estimate: threads x 2.5 GHz x 32 f32 flops per cycle"}};
  return device;
}

DeviceProfile load_profile_file(const std::filesystem::path& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& e) {
    raise<FormatError>("{}: cannot read the device profile: {}", path.string(), e.what());
  }
  if (!root.IsMap() || !root["read_bandwidth_gbps"]) {
    raise<FormatError>("{}: a device profile needs at least read_bandwidth_gbps (GB/s)", path.string());
  }
  DeviceProfile device;
  try {
    device.name = root["name"] ? root["name"].as<std::string>() : path.stem().string();
    device.description = root["description"] ? root["description"].as<std::string>() : device.name;
    device.read_bandwidth_gbps = root["read_bandwidth_gbps"].as<double>();
    if (root["memory_gb"]) device.memory_gb = root["memory_gb"].as<double>();
    if (root["peak_tflops"]) device.peak_tflops = root["peak_tflops"].as<std::map<std::string, double>>();
    if (root["native_formats"]) device.native_formats = root["native_formats"].as<std::vector<std::string>>();
    if (root["network_rtt_ms"]) device.network_rtt_ms = root["network_rtt_ms"].as<double>();
  } catch (const YAML::Exception& e) {
    raise<FormatError>("{}:{}: invalid device profile field: {}", path.string(), e.mark.line + 1, e.msg);
  }
  if (!(device.read_bandwidth_gbps > 0)) {
    raise<FormatError>("{}: read_bandwidth_gbps must be > 0, found {}", path.string(), device.read_bandwidth_gbps);
  }
  return device;
}

double peak_for(const DeviceProfile& device, const std::string& precision) {
  auto it = device.peak_tflops.find(precision);
  if (it != device.peak_tflops.end() && it->second > 0) return it->second;
  it = device.peak_tflops.find("f32");
  return it != device.peak_tflops.end() ? it->second : 0.0;
}

}  // namespace

std::vector<std::string> builtin_devices() { return {"jetson-orin-nano", "raspberry-pi-5"}; }

DeviceProfile resolve_device(const std::string& name_or_path, double host_read_bandwidth_gbps,
                             const bench::HostInfo& host, int threads) {
  if (name_or_path == "host") return host_profile(host_read_bandwidth_gbps, host, threads);
  if (name_or_path == "raspberry-pi-5") return raspberry_pi_5();
  if (name_or_path == "jetson-orin-nano") return jetson_orin_nano();
  const std::filesystem::path path(name_or_path);
  if (path.extension() == ".yaml" || path.extension() == ".yml") {
    if (!std::filesystem::exists(path)) raise<InvalidArgument>("device profile {} not found", path.string());
    return load_profile_file(path);
  }
  std::string names = "host";
  for (const std::string& name : builtin_devices()) names += ", " + name;
  raise<InvalidArgument>("unknown device \"{}\"; expected one of: {}, or a device profile .yaml file", name_or_path,
                         names);
}

LatencyPrediction predict(const DeviceProfile& device, const ModelCost& cost, const Efficiency& efficiency) {
  LatencyPrediction prediction;

  // Decode streams every weight and the past keys and values once per token.
  const double bytes = cost.weight_bytes_per_token + cost.kv_bytes_per_token;
  const double bandwidth = device.read_bandwidth_gbps * 1e9 * efficiency.bandwidth;
  prediction.tpot_ms = bandwidth > 0 ? 1e3 * bytes / bandwidth : INFINITY;

  // Prefill is compute-bound: every prompt token costs flops_per_token.
  const double compute = peak_for(device, cost.compute_precision) * 1e12 * efficiency.compute;
  const double prefill_flops = cost.flops_per_token * static_cast<double>(cost.prompt_tokens);
  prediction.ttft_ms = (compute > 0 ? 1e3 * prefill_flops / compute : INFINITY) + device.network_rtt_ms;

  prediction.e2e_ms = prediction.ttft_ms + static_cast<double>(std::max<int64_t>(cost.output_tokens - 1, 0)) *
                                               prediction.tpot_ms;
  // kv_bytes_per_token is the cache read at the mean decode context, close to its final size
  // when the prompt is longer than the output.
  const double resident_bytes = cost.weight_bytes_per_token + cost.kv_bytes_per_token;
  prediction.fits_memory = device.memory_gb <= 0 || resident_bytes <= device.memory_gb * 1e9;
  return prediction;
}

Efficiency calibrate(const DeviceProfile& host, const ModelCost& cost, double measured_ttft_ms,
                     double measured_tpot_ms) {
  Efficiency efficiency;
  const double bytes = cost.weight_bytes_per_token + cost.kv_bytes_per_token;
  if (measured_tpot_ms > 0 && host.read_bandwidth_gbps > 0) {
    efficiency.bandwidth = bytes / (measured_tpot_ms / 1e3) / (host.read_bandwidth_gbps * 1e9);
  }
  const double peak = peak_for(host, cost.compute_precision) * 1e12;
  const double prefill_ms = measured_ttft_ms - host.network_rtt_ms;
  if (prefill_ms > 0 && peak > 0) {
    efficiency.compute = cost.flops_per_token * static_cast<double>(cost.prompt_tokens) / (prefill_ms / 1e3) / peak;
  }
  return efficiency;
}

}  // namespace stepdown::decide
