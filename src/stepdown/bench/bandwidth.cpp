#include "stepdown/bench/bandwidth.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::bench {

namespace {
constexpr size_t kMiB = size_t{1} << 20;
}  // namespace

size_t last_level_cache_bytes() {
  for (int name : {_SC_LEVEL4_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long size = sysconf(name);
    if (size > 0) return static_cast<size_t>(size);
  }
  return 0;
}

BandwidthResult measure_read_bandwidth(const BandwidthOptions& options) {
  if (options.runs < 1) raise<InvalidArgument>("bandwidth probe: runs must be at least 1, got {}", options.runs);
  size_t bytes = options.buffer_bytes;
  if (bytes == 0) bytes = std::clamp(4 * last_level_cache_bytes(), 256 * kMiB, 1024 * kMiB);
  const auto floats = static_cast<int64_t>(std::max<size_t>(bytes / sizeof(float), 1024));

  ThreadPool pool(options.threads);
  const int64_t threads = pool.size();
  std::unique_ptr<float[]> buffer(new float[static_cast<size_t>(floats)]);
  std::vector<float> partial(static_cast<size_t>(threads) * 16, 0.0f);  // one cache line per thread

  const int64_t per_thread = floats / threads;
  const auto slice_begin = [&](int64_t index) { return index * per_thread; };
  const auto slice_end = [&](int64_t index) { return index + 1 == threads ? floats : (index + 1) * per_thread; };

  // Each thread writes its own slice first, so the pages are faulted in (and on NUMA hosts
  // placed) where that thread reads them; non-zero values keep the kernel from mapping one
  // shared zero page.
  pool.parallel_for(threads, [&](int64_t first, int64_t last) {
    for (int64_t index = first; index < last; ++index) {
      std::fill(buffer.get() + slice_begin(index), buffer.get() + slice_end(index), 1.0f);
    }
  });

  std::vector<double> rates;
  for (int run = 0; run < options.runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](int64_t first, int64_t last) {
      for (int64_t index = first; index < last; ++index) {
        const float* begin = buffer.get() + slice_begin(index);
        partial[static_cast<size_t>(index) * 16] += kernels::sum_f32(begin, slice_end(index) - slice_begin(index));
      }
    });
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    rates.push_back(static_cast<double>(floats) * sizeof(float) / elapsed.count() / 1e9);
  }

  // Keeps the sums observable, so the reads cannot be optimized away.
  float checksum = 0.0f;
  for (float p : partial) checksum += p;
  asm volatile("" : : "r"(checksum));

  std::sort(rates.begin(), rates.end());
  BandwidthResult result;
  result.gb_per_s = rates.back();
  result.median_gb_per_s = rates[rates.size() / 2];
  result.buffer_bytes = static_cast<size_t>(floats) * sizeof(float);
  result.threads = static_cast<int>(threads);
  result.runs = options.runs;
  return result;
}

}  // namespace stepdown::bench
