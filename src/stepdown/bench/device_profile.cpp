#include "stepdown/bench/device_profile.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "stepdown/bench/builtin_devices.h"
#include "stepdown/core/error.h"

namespace stepdown::bench {

namespace {

const std::vector<std::string>& top_level_keys() {
  static const std::vector<std::string> keys = {"name",           "description", "read_bandwidth_gbps",
                                                "memory_gb",      "peak_tflops", "native_formats",
                                                "network_rtt_ms", "measured",    "sources"};
  return keys;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// "FILE:LINE" of a node; yaml-cpp counts lines from 0.
std::string where(const std::string& source, const YAML::Node& node) {
  return fmt::format("{}:{}", source, node.Mark().line + 1);
}

std::string read_string(const YAML::Node& node, const std::string& key, const std::string& source) {
  if (!node.IsScalar()) raise<FormatError>("{}: '{}' must be a string", where(source, node), key);
  return node.as<std::string>();
}

double read_number(const YAML::Node& node, const std::string& key, const std::string& source) {
  if (!node.IsScalar()) raise<FormatError>("{}: '{}' must be a number", where(source, node), key);
  double value = 0.0;
  if (!YAML::convert<double>::decode(node, value)) {
    raise<FormatError>("{}: '{}' must be a number, found '{}'", where(source, node), key, node.Scalar());
  }
  if (!std::isfinite(value) || value < 0.0) {
    raise<FormatError>("{}: '{}' must be a finite number >= 0, found {}", where(source, node), key, node.Scalar());
  }
  return value;
}

bool read_bool(const YAML::Node& node, const std::string& key, const std::string& source) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    raise<FormatError>("{}: '{}' must be true or false", where(source, node), key);
  }
  return value;
}

// A key of `sources` must name a field the profile has: a top-level number or list, or
// "peak_tflops.<precision>" for a precision the profile lists.
bool names_a_field(const DeviceProfile& profile, const std::string& key) {
  static const std::vector<std::string> fields = {"read_bandwidth_gbps", "memory_gb", "native_formats", "network_rtt_ms"};
  if (contains(fields, key)) return true;
  const std::string prefix = "peak_tflops.";
  if (key.rfind(prefix, 0) != 0) return false;
  return profile.peak_tflops.count(key.substr(prefix.size())) > 0;
}

void read_peak_tflops(const YAML::Node& node, const std::string& source, DeviceProfile& profile) {
  if (!node.IsMap()) raise<FormatError>("{}: 'peak_tflops' must be a map of precision to TFLOPS", where(source, node));
  for (const auto& entry : node) {
    const std::string precision = entry.first.as<std::string>();
    if (!contains(precision_keys(), precision)) {
      raise<FormatError>("{}: unknown precision 'peak_tflops.{}'; expected one of {}", where(source, entry.first),
                         precision, fmt::join(precision_keys(), ", "));
    }
    profile.peak_tflops[precision] = read_number(entry.second, "peak_tflops." + precision, source);
  }
}

void read_native_formats(const YAML::Node& node, const std::string& source, DeviceProfile& profile) {
  if (!node.IsSequence()) raise<FormatError>("{}: 'native_formats' must be a list of strings", where(source, node));
  for (const auto& item : node) profile.native_formats.push_back(read_string(item, "native_formats", source));
}

void read_sources(const YAML::Node& node, const std::string& source, DeviceProfile& profile) {
  if (!node.IsMap()) raise<FormatError>("{}: 'sources' must be a map of field to source", where(source, node));
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (!names_a_field(profile, key)) {
      raise<FormatError>("{}: 'sources.{}' names no field of this profile; expected read_bandwidth_gbps, memory_gb, "
                         "native_formats, network_rtt_ms or peak_tflops.<precision> for a listed precision",
                         where(source, entry.first), key);
    }
    profile.sources[key] = read_string(entry.second, "sources." + key, source);
  }
}

// "cpu MHz" of the first processor in /proc/cpuinfo, or 0 when it is missing.
double cpu_mhz() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return 0.0;
    try {
      return std::stod(line.substr(colon + 1));
    } catch (const std::exception&) {
      return 0.0;
    }
  }
  return 0.0;
}

double physical_memory_gb() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0.0;
  return static_cast<double>(pages) * static_cast<double>(page_size) / 1e9;
}

bool has_feature(const HostInfo& info, const std::string& feature) { return contains(info.cpu_features, feature); }

std::string yaml_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

const std::vector<std::string>& precision_keys() {
  static const std::vector<std::string> keys = {"f32", "f16", "bf16", "int8", "fp8", "int4"};
  return keys;
}

DeviceProfile parse_device_profile(std::string_view yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    raise<FormatError>("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg);
  }
  if (!root.IsMap()) raise<FormatError>("{}: expected a map of profile fields at the top level", source);

  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    if (!contains(top_level_keys(), key)) {
      raise<FormatError>("{}: unknown key '{}'; expected one of {}", where(source, entry.first), key,
                         fmt::join(top_level_keys(), ", "));
    }
  }
  for (const char* required : {"name", "read_bandwidth_gbps", "memory_gb", "peak_tflops"}) {
    if (!root[required]) raise<FormatError>("{}: missing required key '{}'", source, required);
  }

  DeviceProfile profile;
  profile.name = read_string(root["name"], "name", source);
  if (profile.name.empty()) raise<FormatError>("{}: 'name' must not be empty", where(source, root["name"]));
  if (root["description"]) profile.description = read_string(root["description"], "description", source);
  profile.read_bandwidth_gbps = read_number(root["read_bandwidth_gbps"], "read_bandwidth_gbps", source);
  if (profile.read_bandwidth_gbps <= 0.0) {
    raise<FormatError>("{}: 'read_bandwidth_gbps' must be > 0", where(source, root["read_bandwidth_gbps"]));
  }
  profile.memory_gb = read_number(root["memory_gb"], "memory_gb", source);
  read_peak_tflops(root["peak_tflops"], source, profile);
  if (root["native_formats"]) read_native_formats(root["native_formats"], source, profile);
  if (root["network_rtt_ms"]) profile.network_rtt_ms = read_number(root["network_rtt_ms"], "network_rtt_ms", source);
  if (root["measured"]) profile.measured = read_bool(root["measured"], "measured", source);
  if (root["sources"]) read_sources(root["sources"], source, profile);
  return profile;
}

DeviceProfile load_device_profile(const std::filesystem::path& yaml_file) {
  std::ifstream in(yaml_file);
  if (!in) raise<IoError>("device profile {}: cannot open the file for reading", yaml_file.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) raise<IoError>("device profile {}: read failed", yaml_file.string());
  return parse_device_profile(text.str(), yaml_file.string());
}

std::vector<std::string> builtin_device_names() {
  std::vector<std::string> names;
  for (const EmbeddedDeviceFile& file : embedded_device_files()) names.emplace_back(file.name);
  std::sort(names.begin(), names.end());
  return names;
}

DeviceProfile builtin_device_profile(std::string_view name) {
  for (const EmbeddedDeviceFile& file : embedded_device_files()) {
    if (name == file.name) return parse_device_profile(file.yaml, file.file_name);
  }
  raise<InvalidArgument>("unknown device '{}'; builtin devices are {} (or pass a profile .yaml file)", name,
                         fmt::join(builtin_device_names(), ", "));
}

DeviceProfile resolve_device_profile(std::string_view name_or_path) {
  const std::string text(name_or_path);
  const bool is_file = text.find('/') != std::string::npos || text.ends_with(".yaml") || text.ends_with(".yml");
  return is_file ? load_device_profile(text) : builtin_device_profile(text);
}

DeviceProfile host_device_profile(double measured_read_bandwidth_gbps, const HostInfo& info) {
  DeviceProfile profile;
  profile.name = "host";
  profile.description = info.cpu_model.empty() ? "this host" : "this host: " + info.cpu_model;
  profile.read_bandwidth_gbps = measured_read_bandwidth_gbps;
  profile.memory_gb = physical_memory_gb();
  profile.measured = true;
  profile.sources["read_bandwidth_gbps"] = "measured: streaming-read probe (bench/bandwidth.h), best pass";
  profile.sources["memory_gb"] = "measured: physical pages x page size (sysconf)";

  // Flops per cycle per hardware thread for f32: two FMA pipes x lanes x 2 (multiply and
  // add). bf16 dot products (vdpbf16ps) and int8 dot products (VNNI vpdpbusd) pack 2 and 4
  // products into each f32 lane.
  const bool avx512 = has_feature(info, "avx512f");
  const bool avx2 = has_feature(info, "avx2");
  double f32_lanes = 4.0;  // SSE
  if (avx2) f32_lanes = 8.0;
  if (avx512) f32_lanes = 16.0;
  const double f32_flops_per_cycle = 2.0 * f32_lanes * 2.0;
  const double ghz = cpu_mhz() / 1e3;
  const double threads = std::max(info.hardware_threads, 1);
  const double f32_tflops = threads * ghz * f32_flops_per_cycle / 1e3;
  const double bf16_factor = has_feature(info, "avx512_bf16") ? 2.0 : 1.0;
  double int8_factor = 1.0;
  if (avx2) int8_factor = 2.0;
  if (has_feature(info, "avx512_vnni")) int8_factor = 4.0;

  // NOTE: this counts every hardware thread as a core with its own FMA pipes, so on a host
  // with SMT the estimate is up to 2x too high. measure_host_compute replaces it.
  const std::string derivation = fmt::format(
      "estimate: {} hardware threads x {:.2f} GHz (cpu MHz in /proc/cpuinfo) x {} f32 flops/cycle (2 FMA pipes x {} "
      "lanes x 2)",
      threads, ghz, f32_flops_per_cycle, f32_lanes);
  profile.peak_tflops["f32"] = f32_tflops;
  profile.peak_tflops["f16"] = f32_tflops;
  profile.peak_tflops["bf16"] = f32_tflops * bf16_factor;
  profile.peak_tflops["int8"] = f32_tflops * int8_factor;
  profile.peak_tflops["int4"] = f32_tflops * int8_factor;
  profile.sources["peak_tflops.f32"] = derivation;
  profile.sources["peak_tflops.f16"] = derivation + "; f16 is converted to f32 (f16c), so the f32 rate";
  profile.sources["peak_tflops.bf16"] = derivation + fmt::format("; x {} for bf16 dot products", bf16_factor);
  profile.sources["peak_tflops.int8"] = derivation + fmt::format("; x {} for int8 dot products", int8_factor);
  profile.sources["peak_tflops.int4"] = derivation + "; int4 is unpacked to int8, so the int8 rate";

  profile.native_formats = {"f32"};
  if (has_feature(info, "f16c")) profile.native_formats.push_back("f16");
  if (has_feature(info, "avx512_bf16")) profile.native_formats.push_back("bf16");
  if (int8_factor > 1.0) profile.native_formats.push_back("int8");
  profile.sources["native_formats"] = "measured: CPU flags in /proc/cpuinfo (f16c, avx512_bf16, avx512_vnni, avx2)";
  return profile;
}

DeviceProfile host_device_profile(double measured_read_bandwidth_gbps, const HostInfo& info,
                                  const std::map<std::string, double>& measured_peak_tflops) {
  DeviceProfile profile = host_device_profile(measured_read_bandwidth_gbps, info);
  for (const auto& [precision, tflops] : measured_peak_tflops) {
    profile.peak_tflops[precision] = tflops;
    profile.sources["peak_tflops." + precision] =
        "measured: products of cache-resident weights with a batch of tokens through stepdown's prefill "
        "kernel (bench/compute_probe.h), best of several runs";
  }
  return profile;
}

std::string to_yaml(const DeviceProfile& profile) {
  std::string out;
  out += fmt::format("name: {}\n", yaml_quoted(profile.name));
  out += fmt::format("description: {}\n", yaml_quoted(profile.description));
  out += fmt::format("read_bandwidth_gbps: {}\n", profile.read_bandwidth_gbps);
  out += fmt::format("memory_gb: {}\n", profile.memory_gb);
  out += "peak_tflops:\n";
  for (const auto& [precision, tflops] : profile.peak_tflops) out += fmt::format("  {}: {}\n", precision, tflops);
  out += "native_formats: [";
  for (size_t i = 0; i < profile.native_formats.size(); ++i) {
    out += (i > 0 ? ", " : "") + yaml_quoted(profile.native_formats[i]);
  }
  out += "]\n";
  out += fmt::format("network_rtt_ms: {}\n", profile.network_rtt_ms);
  out += fmt::format("measured: {}\n", profile.measured ? "true" : "false");
  if (!profile.sources.empty()) {
    out += "sources:\n";
    for (const auto& [key, text] : profile.sources) out += fmt::format("  {}: {}\n", key, yaml_quoted(text));
  }
  return out;
}

}  // namespace stepdown::bench
