#include "stepdown/bench/host_info.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace stepdown::bench {

namespace {

// The value after "key<spaces>: " on a /proc/cpuinfo line, or nothing when the key differs.
bool cpuinfo_value(const std::string& line, const std::string& key, std::string& value) {
  if (line.compare(0, key.size(), key) != 0) return false;
  const size_t colon = line.find(':', key.size());
  if (colon == std::string::npos) return false;
  // Only blanks may sit between the key and the colon, so "flags" does not match "flagsx".
  if (line.find_first_not_of(" \t", key.size()) != colon) return false;
  const size_t start = line.find_first_not_of(' ', colon + 1);
  value = start == std::string::npos ? std::string() : line.substr(start);
  return true;
}

}  // namespace

const std::vector<std::string>& tracked_cpu_features() {
  static const std::vector<std::string> features = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "f16c"};
  return features;
}

HostInfo read_host_info() {
  HostInfo info;
  info.hardware_threads = static_cast<int>(std::thread::hardware_concurrency());
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  info.openblas_coretype = coretype != nullptr && *coretype != '\0' ? coretype : "unset";

  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::string flags;
  bool have_flags = false;
  while (std::getline(cpuinfo, line) && (info.cpu_model.empty() || !have_flags)) {
    std::string value;
    if (info.cpu_model.empty() && cpuinfo_value(line, "model name", value)) info.cpu_model = value;
    if (!have_flags && cpuinfo_value(line, "flags", value)) {
      flags = value;
      have_flags = true;
    }
  }

  std::istringstream words(flags);
  std::vector<std::string> present;
  for (std::string word; words >> word;) present.push_back(word);
  for (const std::string& feature : tracked_cpu_features()) {
    if (std::find(present.begin(), present.end(), feature) != present.end()) info.cpu_features.push_back(feature);
  }
  return info;
}

size_t peak_rss_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<size_t>(usage.ru_maxrss) * 1024;  // ru_maxrss is in KiB on Linux
}

}  // namespace stepdown::bench
