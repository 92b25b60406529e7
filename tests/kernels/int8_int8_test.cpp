// W8A8 kernels. Every ISA path of the int8 dot product must equal the scalar int32 sum,
// which is exact. matvec and matmul must equal the one-thread scalar path bit for bit,
// because all paths share the activation quantization and the final f32 scaling. The W8A8
// result must stay within the activation rounding of the f32 product of the decoded weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "random_weights.h"
#include "stepdown/core/error.h"
#include "stepdown/kernels/int8_int8.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/kernels/reference.h"

namespace stepdown::kernels {
namespace {

std::vector<int8_t> random_codes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<int8_t> v(n);
  for (int8_t& c : v) c = static_cast<int8_t>(code(rng));
  return v;
}

TEST(DotInt8, EveryPathEqualsScalarSum) {
  const std::vector<Int8DotPath> paths = supported_int8_dot_paths();
  uint32_t seed = 1;
  for (int64_t n : {0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 172, 255, 1000, 1023}) {
    const std::vector<int8_t> a = random_codes(static_cast<size_t>(n), ++seed);
    const std::vector<int8_t> b = random_codes(static_cast<size_t>(n), ++seed);
    const int32_t want = dot_int8(a.data(), b.data(), n, Int8DotPath::kScalar);
    for (Int8DotPath path : paths) {
      EXPECT_EQ(dot_int8(a.data(), b.data(), n, path), want) << int8_dot_path_name(path) << " n = " << n;
    }
  }
}

TEST(DotInt8, ExtremeCodesDoNotSaturate) {
  // All products +-127 * 127: vpmaddubsw's int16 pair sums are at their largest.
  for (int sign : {1, -1}) {
    const std::vector<int8_t> a(1023, static_cast<int8_t>(127 * sign));
    const std::vector<int8_t> b(1023, 127);
    for (Int8DotPath path : supported_int8_dot_paths()) {
      EXPECT_EQ(dot_int8(a.data(), b.data(), 1023, path), sign * 127 * 127 * 1023) << int8_dot_path_name(path);
    }
  }
}

TEST(MatmulW8A8, ThreadedEqualsScalarPathOnOddShapes) {
  ThreadPool pool(2);
  uint32_t seed = 50;
  for (int64_t rows : {1, 3, 17, 255, 1023}) {
    for (int64_t cols : {1, 7, 33, 64, 172, 511, 1023}) {
      if (rows * cols > 300'000) continue;
      const test::RandomWeights weights(DType::INT8_W8A8, rows, cols, ++seed);
      for (int64_t n_tokens : {1, 3, 9}) {
        const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), ++seed);
        std::vector<float> want(static_cast<size_t>(rows * n_tokens), NAN);
        matmul_w8a8_on_path(weights.matrix, x.data(), n_tokens, want.data(), Int8DotPath::kScalar);
        std::vector<float> got(want.size(), NAN);
        if (n_tokens == 1) {
          matvec(weights.matrix, x, got, pool);
        } else {
          matmul(weights.matrix, x.data(), n_tokens, got.data(), pool);
        }
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ(got[i], want[i]) << "W (" << rows << ", " << cols << ") tokens " << n_tokens << " index " << i;
        }
      }
    }
  }
}

// Quantizing x moves each x_i by at most scale_x / 2, so the W8A8 product is within
// scale_x / 2 * sum |w_i| of the f32 product of the decoded weights (plus f32 rounding).
TEST(MatmulW8A8, CloseToFloatProduct) {
  ThreadPool pool(1);
  const int64_t rows = 37, cols = 300;
  const test::RandomWeights weights(DType::INT8_W8A8, rows, cols, 3);
  const std::vector<float> x = test::random_vector(static_cast<size_t>(cols), 4);
  std::vector<float> y(rows, NAN);
  matvec(weights.matrix, x, y, pool);
  float absmax = 0.0f;
  for (float v : x) absmax = std::max(absmax, std::fabs(v));
  const double x_scale = absmax / 127.0;
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(DType::INT8_W8A8, weights.matrix.data + r * weights.matrix.row_stride, row.data(), cols);
    double exact = 0.0, weight_l1 = 0.0, magnitude = 0.0;
    for (int64_t i = 0; i < cols; ++i) {
      exact += static_cast<double>(row[i]) * x[i];
      weight_l1 += std::fabs(row[i]);
      magnitude += std::fabs(static_cast<double>(row[i]) * x[i]);
    }
    EXPECT_NEAR(y[r], exact, 0.5 * x_scale * weight_l1 + 1e-6 * magnitude) << "row " << r;
  }
}

TEST(MatmulW8A8, ZeroAndSubnormalTokensGiveZero) {
  ThreadPool pool(1);
  const test::RandomWeights weights(DType::INT8_W8A8, 5, 40, 9);
  for (float value : {0.0f, 1e-40f}) {
    const std::vector<float> x(40, value);
    std::vector<float> y(5, NAN);
    matvec(weights.matrix, x, y, pool);
    for (float v : y) EXPECT_EQ(v, 0.0f) << "x = " << value;
  }
}

TEST(MatmulW8A8, OtherFormatIsInvalidArgument) {
  const test::RandomWeights weights(DType::INT8, 2, 8, 1);
  std::vector<float> x(8, 1.0f), y(2);
  ThreadPool pool(1);
  EXPECT_THROW(matmul_w8a8(weights.matrix, x.data(), 1, y.data(), pool), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::kernels
