#include "stepdown/bench/bandwidth.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"

namespace stepdown::bench {

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Sum of the 64-bit words in [begin, end). Eight independent accumulators keep several
// cache lines in flight per core; integer adds cost nothing next to the loads, and the
// result is returned so the compiler cannot drop the reads.
uint64_t sum_words(const uint64_t* begin, const uint64_t* end) {
  uint64_t acc[8] = {};
  const uint64_t* p = begin;
  for (; p + 8 <= end; p += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += p[k];
  }
  for (; p < end; ++p) acc[0] += *p;
  uint64_t sum = 0;
  for (uint64_t a : acc) sum += a;
  return sum;
}

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
  const size_t words = std::max<size_t>(bytes / sizeof(uint64_t), 64);

  ThreadPool pool(options.threads);
  const auto threads = static_cast<int64_t>(pool.size());
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  std::vector<uint64_t> partial(static_cast<size_t>(threads) * 8, 0);  // one cache line per thread

  // Each thread writes its own slice first, so the pages are faulted in (and on NUMA hosts
  // placed) where that thread reads them; non-zero words keep the kernel from sharing one
  // zero page.
  const auto slice = [&](int64_t index, int64_t* begin, int64_t* end) {
    const auto per_thread = static_cast<int64_t>(words) / threads;
    *begin = index * per_thread;
    *end = index + 1 == threads ? static_cast<int64_t>(words) : *begin + per_thread;
  };
  pool.parallel_for(threads, [&](int64_t first, int64_t last) {
    for (int64_t index = first; index < last; ++index) {
      int64_t begin, end;
      slice(index, &begin, &end);
      for (int64_t i = begin; i < end; ++i) buffer[static_cast<size_t>(i)] = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15u;
    }
  });

  std::vector<double> rates;
  for (int run = 0; run < options.runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](int64_t first, int64_t last) {
      for (int64_t index = first; index < last; ++index) {
        int64_t begin, end;
        slice(index, &begin, &end);
        partial[static_cast<size_t>(index) * 8] += sum_words(buffer.get() + begin, buffer.get() + end);
      }
    });
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    rates.push_back(static_cast<double>(words * sizeof(uint64_t)) / elapsed.count() / 1e9);
  }

  // Keeps the sums observable, so the reads cannot be optimized away.
  uint64_t checksum = 0;
  for (uint64_t p : partial) checksum ^= p;
  asm volatile("" : : "r"(checksum));

  std::sort(rates.begin(), rates.end());
  BandwidthResult result;
  result.gb_per_s = rates.back();
  result.median_gb_per_s = rates[rates.size() / 2];
  result.buffer_bytes = words * sizeof(uint64_t);
  result.threads = static_cast<int>(threads);
  result.runs = options.runs;
  return result;
}

}  // namespace stepdown::bench
