#include "stepdown/bench/compute_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "stepdown/bench/bandwidth.h"
#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/quantize_tensor.h"

namespace stepdown::bench {

namespace {

constexpr size_t kMiB = size_t{1} << 20;

void check_options(const ComputeProbeOptions& options) {
  if (options.rows < 1 || options.cols < 1 || options.products < 1 || options.runs < 1) {
    raise<InvalidArgument>("compute probe: rows, cols, products and runs must be at least 1, got {}, {}, {}, {}",
                           options.rows, options.cols, options.products, options.runs);
  }
  if (options.cols % 32 != 0) {
    raise<InvalidArgument>("compute probe: cols must be a multiple of 32 (the q8_0 and q4_0 block), got {}", options.cols);
  }
  if (options.tokens < 1) raise<InvalidArgument>("compute probe: tokens must be at least 1, got {}", options.tokens);
}

// W (rows, cols) in `format_name`, quantized from uniform values in [-1, 1]; the kernels'
// speed does not depend on the values.
std::vector<std::byte> random_matrix(const std::string& format_name, int64_t rows, int64_t cols, ThreadPool& pool,
                                     const quant::QuantFormat*& format) {
  format = quant::find_quant_format(format_name);
  if (format == nullptr) raise<InvalidArgument>("compute probe: weight format '{}' is not registered", format_name);
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> weights(static_cast<size_t>(rows * cols));
  for (float& w : weights) w = uniform(generator);
  return quant::quantize_tensor("compute_probe", *format, weights, rows, cols, pool);
}

// Seconds of the fastest of `runs` timed runs of `products` products of W (rows, cols)
// with X (tokens, cols): kernels::matvec for one token, kernels::matmul for more.
double best_seconds(const kernels::WeightMatrix& matrix, int64_t tokens, int products, int runs, ThreadPool& pool) {
  std::vector<float> x(static_cast<size_t>(tokens * matrix.cols), 0.5f);
  std::vector<float> y(static_cast<size_t>(tokens * matrix.rows));
  const auto product = [&] {
    if (tokens == 1) {
      kernels::matvec(matrix, x, y, pool);
    } else {
      kernels::matmul(matrix, x.data(), tokens, y.data(), pool);
    }
  };

  // One untimed product brings the matrix into cache, or faults its pages in.
  product();
  double best = 0.0;
  for (int run = 0; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < products; ++i) product();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    if (run == 0 || elapsed.count() < best) best = elapsed.count();
  }
  return best;
}

}  // namespace

const std::map<std::string, std::string>& probe_formats() {
  static const std::map<std::string, std::string> formats = {
      {"f32", "f32"}, {"f16", "f16"}, {"bf16", "bf16"}, {"int8", "q8_0"}, {"int4", "q4_0"}};
  return formats;
}

std::map<std::string, double> measure_host_compute(const ComputeProbeOptions& options) {
  check_options(options);
  ThreadPool pool(options.threads);

  const double flops_per_product =
      2.0 * static_cast<double>(options.rows) * static_cast<double>(options.cols) * static_cast<double>(options.tokens);
  std::map<std::string, double> tflops;
  for (const auto& [precision, format_name] : probe_formats()) {
    const quant::QuantFormat* format = nullptr;
    const std::vector<std::byte> packed = random_matrix(format_name, options.rows, options.cols, pool, format);
    const kernels::WeightMatrix matrix{format->dtype, packed.data(), options.rows, options.cols,
                                       packed.size() / static_cast<size_t>(options.rows)};
    const double seconds = best_seconds(matrix, options.tokens, options.products, options.runs, pool);
    tflops[precision] = flops_per_product * options.products / seconds / 1e12;
  }
  return tflops;
}

std::map<std::string, double> measure_host_streaming(const StreamingProbeOptions& options) {
  if (options.cols < 32 || options.cols % 32 != 0 || options.runs < 1) {
    raise<InvalidArgument>("streaming probe: cols must be a positive multiple of 32 and runs at least 1, got {} and {}",
                           options.cols, options.runs);
  }
  size_t target_bytes = options.matrix_bytes;
  if (target_bytes == 0) target_bytes = std::clamp(4 * last_level_cache_bytes(), 64 * kMiB, 256 * kMiB);
  ThreadPool pool(options.threads);

  // A small matrix is quantized once and its rows repeated to fill the target size, which
  // costs far less than quantizing a DRAM-sized matrix.
  constexpr int64_t kSeedRows = 64;
  std::map<std::string, double> gb_per_s;
  for (const auto& [precision, format_name] : probe_formats()) {
    const quant::QuantFormat* format = nullptr;
    const std::vector<std::byte> seed = random_matrix(format_name, kSeedRows, options.cols, pool, format);
    const size_t row_bytes = seed.size() / kSeedRows;
    const int64_t rows = std::max<int64_t>(kSeedRows, static_cast<int64_t>(target_bytes / row_bytes));
    std::vector<std::byte> packed(static_cast<size_t>(rows) * row_bytes);
    for (int64_t row = 0; row < rows; ++row) {
      std::memcpy(packed.data() + static_cast<size_t>(row) * row_bytes, seed.data() + static_cast<size_t>(row % kSeedRows) * row_bytes,
                  row_bytes);
    }
    const kernels::WeightMatrix matrix{format->dtype, packed.data(), rows, options.cols, row_bytes};
    gb_per_s[precision] = static_cast<double>(packed.size()) / best_seconds(matrix, 1, 1, options.runs, pool) / 1e9;
  }
  return gb_per_s;
}

}  // namespace stepdown::bench
