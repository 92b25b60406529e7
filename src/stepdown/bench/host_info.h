#pragma once
// What a benchmark figure depends on besides the model: the CPU, its vector extensions,
// the OpenBLAS core type and the process's peak memory.
#include <string>
#include <vector>

namespace stepdown::bench {

struct HostInfo {
  std::string cpu_model;  // "model name" of the first processor in /proc/cpuinfo
  int hardware_threads = 0;
  // Which of avx2, avx512f, avx512_vnni, avx512_bf16 and f16c the CPU flags list, in that
  // order; the kernels dispatch on these.
  std::vector<std::string> cpu_features;
  std::string openblas_coretype;  // the OPENBLAS_CORETYPE environment variable, or "unset"
};

// The feature names read_host_info looks for.
const std::vector<std::string>& tracked_cpu_features();

// Reads /proc/cpuinfo and the environment. Fields stay empty where /proc/cpuinfo is
// missing (non-Linux hosts); never throws.
HostInfo read_host_info();

// Peak resident set size of this process so far, in bytes (getrusage ru_maxrss).
size_t peak_rss_bytes();

}  // namespace stepdown::bench
