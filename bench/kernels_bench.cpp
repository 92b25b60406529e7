// matvec throughput per weight format at SmolLM2-135M shapes, beside the host's measured
// read bandwidth. Weights are rotated through copies larger than the last-level cache, so
// every call streams its weights from DRAM as decode does.
//
//   build/bench/kernels_bench [--benchmark_filter=Q4_1]
//
// Names: matvec/FORMAT/... and matmul/FORMAT/... take the exact path (f32 activations);
// matvec_int8/... and matmul_int8/... quantize activations to int8 blocks
// (ActivationPrecision::kInt8) for the formats that have integer kernels.
//
// Counters: bytes_per_s (weight bytes read per second), flop_per_s (2 * rows * cols per
// call), of_probe (bytes_per_s over the probe's GB/s at the same thread count); for the
// prefill matmul, flop_per_s and tokens_per_s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

// The random weight generator the kernel tests use.
#include "../tests/kernels/random_weights.h"
#include "stepdown/bench/bandwidth.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"

namespace {

using stepdown::DType;
using stepdown::kernels::ActivationPrecision;
using stepdown::kernels::WeightMatrix;

struct Shape {
  int64_t rows, cols;
};

// SmolLM2-135M: hidden 576, FFN 1536, vocab 49152.
constexpr Shape kShapes[] = {{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
constexpr DType kFormats[] = {DType::F32,           DType::F16,           DType::BF16,          DType::Q8_0,
                              DType::Q4_0,          DType::Q4_1,          DType::Q5_0,          DType::Q5_1,
                              DType::Q4_K,          DType::Q5_K,          DType::Q6_K,          DType::INT8,
                              DType::INT8_G128,     DType::INT4_G32,      DType::INT4_G64,      DType::INT4_G128,
                              DType::INT4_G32_ASYM, DType::INT4_G64_ASYM, DType::INT4_G128_ASYM, DType::FP8_E4M3,
                              DType::INT8_W8A8};

// Total bytes of weight copies a benchmark cycles through: above the last-level cache.
size_t rotation_bytes() {
  return std::clamp<size_t>(2 * stepdown::bench::last_level_cache_bytes(), size_t{64} << 20, size_t{256} << 20);
}

// Copies of one random matrix, enough to exceed the caches. Only the latest set is kept.
struct WeightCopies {
  DType dtype;
  Shape shape;
  size_t matrix_bytes = 0;
  std::vector<std::byte> storage;
  int64_t count = 0;

  WeightMatrix copy(int64_t index) const {
    const size_t row_bytes = matrix_bytes / static_cast<size_t>(shape.rows);
    return WeightMatrix{dtype, storage.data() + static_cast<size_t>(index) * matrix_bytes, shape.rows, shape.cols,
                        row_bytes};
  }
};

const WeightCopies& weight_copies(DType dtype, Shape shape) {
  static std::unique_ptr<WeightCopies> cached;
  if (cached && cached->dtype == dtype && cached->shape.rows == shape.rows && cached->shape.cols == shape.cols) {
    return *cached;
  }
  cached.reset();
  const stepdown::kernels::test::RandomWeights source(dtype, shape.rows, shape.cols, 42);
  auto copies = std::make_unique<WeightCopies>();
  copies->dtype = dtype;
  copies->shape = shape;
  copies->matrix_bytes = source.storage.size();
  copies->count = std::max<int64_t>(1, static_cast<int64_t>(rotation_bytes() / copies->matrix_bytes));
  copies->storage.resize(copies->matrix_bytes * static_cast<size_t>(copies->count));
  for (int64_t i = 0; i < copies->count; ++i) {
    std::memcpy(copies->storage.data() + static_cast<size_t>(i) * copies->matrix_bytes, source.storage.data(),
                copies->matrix_bytes);
  }
  cached = std::move(copies);
  return *cached;
}

void bm_matvec(benchmark::State& state, DType dtype, Shape shape, int threads, double probe_gb_per_s,
               ActivationPrecision precision) {
  const WeightCopies& copies = weight_copies(dtype, shape);
  stepdown::ThreadPool pool(threads);
  const std::vector<float> x = stepdown::kernels::test::random_vector(static_cast<size_t>(shape.cols), 7);
  std::vector<float> y(static_cast<size_t>(shape.rows));
  int64_t next = 0;
  for (auto _ : state) {
    stepdown::kernels::matvec(copies.copy(next), x, y, pool, precision);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == copies.count ? 0 : next + 1;
  }
  const auto bytes = static_cast<double>(copies.matrix_bytes);
  state.counters["bytes_per_s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["flop_per_s"] = benchmark::Counter(2.0 * static_cast<double>(shape.rows * shape.cols),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.counters["of_probe"] =
      benchmark::Counter(bytes / (probe_gb_per_s * 1e9), benchmark::Counter::kIsIterationInvariantRate);
}

// Prefill: Y (n_tokens, rows) = X (n_tokens, cols) @ W^T over one copy of the weights.
void bm_matmul(benchmark::State& state, DType dtype, Shape shape, int64_t n_tokens, int threads,
               ActivationPrecision precision) {
  const WeightCopies& copies = weight_copies(dtype, shape);
  stepdown::ThreadPool pool(threads);
  const std::vector<float> x = stepdown::kernels::test::random_vector(static_cast<size_t>(shape.cols * n_tokens), 7);
  std::vector<float> y(static_cast<size_t>(shape.rows * n_tokens));
  for (auto _ : state) {
    stepdown::kernels::matmul(copies.copy(0), x.data(), n_tokens, y.data(), pool, precision);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["flop_per_s"] = benchmark::Counter(2.0 * static_cast<double>(shape.rows * shape.cols * n_tokens),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(n_tokens), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype != nullptr ? coretype : "unset");
  std::map<int, double> probe;
  for (int threads : {1, 2}) {
    const stepdown::bench::BandwidthResult result = stepdown::bench::measure_read_bandwidth({.threads = threads});
    probe[threads] = result.gb_per_s;
    const std::string line = fmt::format("{:.2f} GB/s best, {:.2f} median, {} runs over {} MiB", result.gb_per_s,
                                         result.median_gb_per_s, result.runs, result.buffer_bytes >> 20);
    benchmark::AddCustomContext(fmt::format("read_bandwidth_threads_{}", threads), line);
    fmt::print(stderr, "read bandwidth, {} thread(s): {}\n", threads, line);
  }

  for (const ActivationPrecision precision : {ActivationPrecision::kF32, ActivationPrecision::kInt8}) {
    const bool int8 = precision == ActivationPrecision::kInt8;
    const char* suffix = int8 ? "_int8" : "";
    for (DType dtype : kFormats) {
      if (int8 && !stepdown::kernels::has_int8_activation_kernel(dtype)) continue;
      for (Shape shape : kShapes) {
        // K-quants have 256-value blocks, so of these shapes only cols = 1536 fits them (and
        // only 1536 fits the 128-value groups of INT8_G128 and INT4_G128).
        if (shape.cols % stepdown::dtype_info(dtype).block_elems != 0) continue;
        for (int threads : {1, 2}) {
          const std::string name = fmt::format("matvec{}/{}/{}x{}/threads:{}", suffix, stepdown::dtype_name(dtype),
                                               shape.rows, shape.cols, threads);
          benchmark::RegisterBenchmark(name.c_str(), bm_matvec, dtype, shape, threads, probe[threads], precision)
              ->UseRealTime();
        }
      }
    }
  }
  constexpr Shape kPrefillShape{1536, 768};  // 768 = 3 * 256, so K-quants fit too
  for (const ActivationPrecision precision : {ActivationPrecision::kF32, ActivationPrecision::kInt8}) {
    const bool int8 = precision == ActivationPrecision::kInt8;
    for (DType dtype : kFormats) {
      if (int8 && !stepdown::kernels::has_int8_activation_kernel(dtype)) continue;
      for (int threads : {1, 2}) {
        const std::string name =
            fmt::format("matmul{}/{}/{}x{}/tokens:64/threads:{}", int8 ? "_int8" : "", stepdown::dtype_name(dtype),
                        kPrefillShape.rows, kPrefillShape.cols, threads);
        benchmark::RegisterBenchmark(name.c_str(), bm_matmul, dtype, kPrefillShape, int64_t{64}, threads, precision)
            ->UseRealTime();
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
