#pragma once
// What a target device offers a decoding model: memory read bandwidth, memory size, peak
// compute per precision and the number formats it runs natively. Latency prediction
// (latency_predict.h) scales a measured run on this host to these figures.
//
// Profiles are YAML files with the schema of data/devices/*.yaml; those files are
// compiled into the binary as the builtin profiles, and load_device_profile reads a
// user's own file with the same schema.
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/bench/host_info.h"

namespace stepdown::bench {

struct DeviceProfile {
  std::string name;         // lower-case id, e.g. "jetson-orin-nano"
  std::string description;  // one line for people
  double read_bandwidth_gbps = 0.0;  // memory read bandwidth, 1e9 bytes per second
  double memory_gb = 0.0;            // memory a model can use, 1e9 bytes
  // Dense peak throughput in TFLOPS (TOPS for integer keys) per compute precision:
  // "f32", "f16", "bf16", "int8", "fp8", "int4". A missing key means the device has no
  // fast path for that precision.
  std::map<std::string, double> peak_tflops;
  std::vector<std::string> native_formats;  // weight formats with hardware support: "fp8", "int8", "bf16", ...
  double network_rtt_ms = 0;  // round trip to a remote device; 0 for a local one
  bool measured = false;      // true when the figures were measured on the device itself
  // Source of each figure, keyed by field ("read_bandwidth_gbps", "peak_tflops.int8",
  // ...): a datasheet URL and title, or "estimate: " and how it was derived.
  std::map<std::string, std::string> sources;
};

// The precision keys peak_tflops may use.
const std::vector<std::string>& precision_keys();

// Parses a profile from YAML text. `source` names the file in messages. Throws FormatError
// naming the source, the key and the line for a missing or unknown key, a value of the
// wrong type, a negative or non-finite number, or a sources key that names no field.
DeviceProfile parse_device_profile(std::string_view yaml_text, const std::string& source);

// Reads a profile from a YAML file. Throws IoError when the file cannot be read and
// FormatError as parse_device_profile does.
DeviceProfile load_device_profile(const std::filesystem::path& yaml_file);

// A profile compiled in from data/devices/<name>.yaml. Throws InvalidArgument listing the
// known names when there is none of that name.
DeviceProfile builtin_device_profile(std::string_view name);

// Names of the builtin profiles, sorted.
std::vector<std::string> builtin_device_names();

// A builtin profile by name, or a YAML file when `name_or_path` ends in .yaml or .yml or
// contains a '/'.
DeviceProfile resolve_device_profile(std::string_view name_or_path);

// This host as a device: the measured read bandwidth, the physical memory, and peak
// compute derived from hardware threads x clock x SIMD width (an estimate, labelled so in
// sources).
DeviceProfile host_device_profile(double measured_read_bandwidth_gbps, const HostInfo& info);

// This host with peak compute measured by measure_host_compute (compute_probe.h) in place
// of the derived estimate; precisions missing from `measured_peak_tflops` keep the estimate.
DeviceProfile host_device_profile(double measured_read_bandwidth_gbps, const HostInfo& info,
                                  const std::map<std::string, double>& measured_peak_tflops);

// The profile as YAML text in the schema parse_device_profile reads.
std::string to_yaml(const DeviceProfile& profile);

}  // namespace stepdown::bench
