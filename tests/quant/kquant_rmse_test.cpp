// K-quant error against llama.cpp's own quantizer: scripts/golden/make_kquant_fixtures.py
// stores test tensors and the RMSE that llama.cpp (llama_model_quantize, llama-cpp-python
// 0.3.36) reaches on each at Q4_K, Q5_K and Q6_K. stepdown's RMSE must be at most 1.05x.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/quantize_tensor.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

struct Fixture {
  struct Tensor {
    int64_t rows = 0, cols = 0;
    std::vector<float> values;
  };
  struct Result {
    std::string name;
    DType dtype;
    double llama_rmse;
  };
  std::map<std::string, Tensor> tensors;
  std::vector<Result> results;
};

Fixture load_fixture() {
  std::ifstream in(test::source_dir() / "tests/golden/quant/kquant_data.bin", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  const auto take = [&](void* dst, size_t n) {
    std::memcpy(dst, bytes.data() + at, n);
    at += n;
  };
  const auto u32 = [&] {
    uint32_t v;
    take(&v, 4);
    return v;
  };
  const auto str = [&] {
    std::string s(u32(), '\0');
    take(s.data(), s.size());
    return s;
  };
  Fixture f;
  if (bytes.empty()) return f;
  for (uint32_t n = u32(), i = 0; i < n; ++i) {
    const std::string name = str();
    Fixture::Tensor t;
    t.rows = u32();
    t.cols = u32();
    t.values.resize(static_cast<size_t>(t.rows * t.cols));
    take(t.values.data(), 4 * t.values.size());
    f.tensors[name] = std::move(t);
  }
  for (uint32_t n = u32(), i = 0; i < n; ++i) {
    Fixture::Result r;
    r.name = str();
    r.dtype = static_cast<DType>(u32());
    take(&r.llama_rmse, 8);
    f.results.push_back(r);
  }
  return f;
}

TEST(KQuantRmse, WithinLlamaCppBound) {
  const Fixture fixture = load_fixture();
  ASSERT_EQ(fixture.results.size(), 21u) << "fixture missing; run scripts/golden/make_kquant_fixtures.py";
  ThreadPool pool(2);
  for (const Fixture::Result& r : fixture.results) {
    const Fixture::Tensor& t = fixture.tensors.at(r.name);
    const QuantFormat* format = find_quant_format(r.dtype);
    ASSERT_NE(format, nullptr);
    const std::vector<std::byte> blocks = quantize_tensor(r.name, *format, t.values, t.rows, t.cols, pool);
    std::vector<float> back(t.values.size());
    const size_t row_bytes = blocks.size() / static_cast<size_t>(t.rows);
    for (int64_t row = 0; row < t.rows; ++row) {
      kernels::dequantize_row(format->dtype, blocks.data() + row * row_bytes, back.data() + row * t.cols, t.cols);
    }
    double sum = 0;
    for (size_t i = 0; i < back.size(); ++i) {
      const double diff = static_cast<double>(back[i]) - t.values[i];
      sum += diff * diff;
    }
    const double rmse = std::sqrt(sum / static_cast<double>(back.size()));
    std::cout << format->name << " " << r.name << ": stepdown RMSE " << rmse << ", llama.cpp " << r.llama_rmse
              << " (ratio " << rmse / r.llama_rmse << ")\n";
    EXPECT_LE(rmse, 1.05 * r.llama_rmse) << format->name << " " << r.name;
  }
}

}  // namespace
}  // namespace stepdown::quant
