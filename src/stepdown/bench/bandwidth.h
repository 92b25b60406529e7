#pragma once
// Host memory read bandwidth: the roofline that decode speed is measured against. Decode
// streams every weight once per token, so tokens/s <= read GB/s / bytes per token.
#include <cstddef>
#include <cstdint>

namespace stepdown::bench {

struct BandwidthOptions {
  // Bytes read per pass; 0 picks 4x the last-level cache size, clamped to [256 MiB, 1 GiB],
  // so the data comes from DRAM and not from a cache.
  size_t buffer_bytes = 0;
  // Threads reading at once, each a contiguous slice; 0 uses every hardware thread.
  int threads = 0;
  // Timed passes. The fastest is reported, because slower passes mostly lose time to
  // other processes on the host.
  int runs = 5;
};

struct BandwidthResult {
  double gb_per_s = 0.0;  // 1e9 bytes per second, best pass
  double median_gb_per_s = 0.0;
  size_t buffer_bytes = 0;
  int threads = 0;
  int runs = 0;
};

// Measures read bandwidth with a streaming sum over a buffer far larger than the caches.
// Takes about runs * buffer_bytes / bandwidth seconds plus one pass to fault the pages in.
BandwidthResult measure_read_bandwidth(const BandwidthOptions& options = {});

// Last-level cache size in bytes as the OS reports it, or 0 when unknown.
size_t last_level_cache_bytes();

}  // namespace stepdown::bench
