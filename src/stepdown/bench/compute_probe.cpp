#include "stepdown/bench/compute_probe.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/quantize_tensor.h"

namespace stepdown::bench {

const std::map<std::string, std::string>& probe_formats() {
  static const std::map<std::string, std::string> formats = {
      {"f32", "f32"}, {"f16", "f16"}, {"bf16", "bf16"}, {"int8", "q8_0"}, {"int4", "q4_0"}};
  return formats;
}

std::map<std::string, double> measure_host_compute(const ComputeProbeOptions& options) {
  if (options.rows < 1 || options.cols < 1 || options.products < 1 || options.runs < 1) {
    raise<InvalidArgument>("compute probe: rows, cols, products and runs must be at least 1, got {}, {}, {}, {}",
                           options.rows, options.cols, options.products, options.runs);
  }
  if (options.cols % 32 != 0) {
    raise<InvalidArgument>("compute probe: cols must be a multiple of 32 (the q8_0 and q4_0 block), got {}", options.cols);
  }
  ThreadPool pool(options.threads);

  // Random weights and input in [-1, 1]; the kernels' speed does not depend on the values.
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> weights(static_cast<size_t>(options.rows * options.cols));
  for (float& w : weights) w = uniform(generator);
  std::vector<float> x(static_cast<size_t>(options.cols));
  for (float& v : x) v = uniform(generator);
  std::vector<float> y(static_cast<size_t>(options.rows));

  const double flops_per_product = 2.0 * static_cast<double>(options.rows) * static_cast<double>(options.cols);
  std::map<std::string, double> tflops;
  for (const auto& [precision, format_name] : probe_formats()) {
    const quant::QuantFormat* format = quant::find_quant_format(format_name);
    if (format == nullptr) raise<InvalidArgument>("compute probe: weight format '{}' is not registered", format_name);
    const std::vector<std::byte> packed =
        quant::quantize_tensor("compute_probe", *format, weights, options.rows, options.cols, pool);

    kernels::WeightMatrix matrix;
    matrix.dtype = format->dtype;
    matrix.data = packed.data();
    matrix.rows = options.rows;
    matrix.cols = options.cols;
    matrix.row_stride = packed.size() / static_cast<size_t>(options.rows);

    // One untimed product brings the matrix into cache.
    kernels::matvec(matrix, x, y, pool);
    double best_seconds = 0.0;
    for (int run = 0; run < options.runs; ++run) {
      const auto start = std::chrono::steady_clock::now();
      for (int product = 0; product < options.products; ++product) kernels::matvec(matrix, x, y, pool);
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      if (run == 0 || elapsed.count() < best_seconds) best_seconds = elapsed.count();
    }
    tflops[precision] = flops_per_product * options.products / best_seconds / 1e12;
  }
  return tflops;
}

}  // namespace stepdown::bench
