// The integer block kernels (ActivationPrecision::kInt8) against two scalar references.
//
// 1. Against dot_row_int8_activation_reference, the exact dot product of the weights with
//    the quantized activations x'. Integer sums are exact, so the kernels differ from it
//    only by f32 rounding: one product dw * dx per block, the FMA chains over blocks, the
//    offset chain and an 8-lane reduction. Fewer than cols + 8 roundings of terms no larger
//    than the reference's magnitude, so we require
//        |fast - reference| <= (cols + 8) * 2^-24 * magnitude.
// 2. Against the exact f32 reference W . x: rounding x to codes moves each value by at
//    most half its block's scale, plus f32 rounding of x * (127 / absmax) (under 127 * 3
//    units of 2^-24 in code units, so a relative 2^-12 covers it). We require
//        |fast - exact| <= quantization_bound * (1 + 2^-12) + (cols + 8) * 2^-24 * magnitude.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "random_weights.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/int8_activations.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/kernels/reference.h"

namespace stepdown::kernels {
namespace {

constexpr DType kFormats[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1};

double rounding_tolerance(int64_t cols, double magnitude) {
  return static_cast<double>(cols + 8) * 0x1p-24 * magnitude + 1e-30;
}

// The paths this CPU runs: the best one and every slower one.
std::vector<Int8DotPath> runnable_paths() {
  std::vector<Int8DotPath> paths;
  for (Int8DotPath path : {Int8DotPath::kAvx512Vnni, Int8DotPath::kAvx2, Int8DotPath::kScalar}) {
    if (static_cast<int>(path) >= static_cast<int>(best_int8_activation_path())) paths.push_back(path);
  }
  return paths;
}

// Counts results outside either tolerance, reporting the first few. y is (n_tokens, rows).
int count_failures(const WeightMatrix& w, const float* x, int64_t n_tokens, const std::vector<float>& y,
                   const std::string& what) {
  int failures = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      const Int8ActivationReference ref = dot_row_int8_activation_reference(w, r, x + t * w.cols);
      const RowDotReference exact = dot_row_reference(w, r, x + t * w.cols);
      const double got = y[static_cast<size_t>(t * w.rows + r)];
      const double rounding = rounding_tolerance(w.cols, ref.magnitude);
      const double quantized_error = std::fabs(got - ref.dot);
      const double exact_error = std::fabs(got - exact.dot);
      const double exact_tolerance = ref.quantization_bound * (1 + 0x1p-12) + rounding;
      if ((quantized_error > rounding || exact_error > exact_tolerance) && failures++ < 3) {
        ADD_FAILURE() << what << " " << dtype_name(w.dtype) << " W (" << w.rows << ", " << w.cols << ") token " << t
                      << " row " << r << ": got " << got << "; int8 reference " << ref.dot << " (tolerance "
                      << rounding << "); exact reference " << exact.dot << " (tolerance " << exact_tolerance << ")";
      }
    }
  }
  return failures;
}

class Int8ActivationTest : public ::testing::TestWithParam<DType> {};

TEST_P(Int8ActivationTest, EveryPathMatchesReferences) {
  const DType dtype = GetParam();
  uint32_t seed = 1000;
  for (int64_t rows : {1, 2, 3, 17, 64, 255, 1023}) {
    for (int64_t cols : {32, 64, 96, 128, 224, 480, 992}) {
      if (rows * cols > 200'000) continue;  // keeps the reference's cost bounded
      const test::RandomWeights weights(dtype, rows, cols, ++seed);
      const std::vector<float> x = test::random_vector(static_cast<size_t>(cols), ++seed);
      QuantizedActivations quantized;
      resize_quantized_activations(1, cols, quantized);
      quantize_activation_blocks(x.data(), 0, 1, quantized);
      for (Int8DotPath path : runnable_paths()) {
        std::vector<float> y(static_cast<size_t>(rows), NAN);
        dot_rows_int8_activations(weights.matrix, 0, rows, quantized, 0, 1, y.data(), rows, path);
        EXPECT_EQ(count_failures(weights.matrix, x.data(), 1, y, std::string(int8_dot_path_name(path))), 0);
      }
    }
  }
}

// Results are per (row, token) and must not depend on how calls split rows, tokens or
// threads: matmul over many tokens equals matvec of each token, bit for bit.
TEST_P(Int8ActivationTest, MatmulEqualsMatvecPerToken) {
  const DType dtype = GetParam();
  ThreadPool one(1), two(2);
  uint32_t seed = 2000;
  for (int64_t rows : {1, 19, 130}) {
    const int64_t cols = 160;
    const test::RandomWeights weights(dtype, rows, cols, ++seed);
    for (int64_t n_tokens : {1, 2, 3, 4, 5, 7, 8, 9, 17}) {
      const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), ++seed);
      std::vector<float> y(static_cast<size_t>(rows * n_tokens), NAN);
      matmul(weights.matrix, x.data(), n_tokens, y.data(), two, ActivationPrecision::kInt8);
      EXPECT_EQ(count_failures(weights.matrix, x.data(), n_tokens, y, "matmul"), 0);
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> y_one(static_cast<size_t>(rows), NAN);
        const std::span<const float> x_one(x.data() + t * cols, static_cast<size_t>(cols));
        matvec(weights.matrix, x_one, y_one, one, ActivationPrecision::kInt8);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(y[static_cast<size_t>(t * rows + r)], y_one[static_cast<size_t>(r)])
              << dtype_name(dtype) << " rows " << rows << " tokens " << n_tokens << " token " << t << " row " << r;
        }
      }
    }
  }
}

// kInt8 must really take the integer path: on random data some results differ from the
// exact path's, and kF32 stays the default.
TEST_P(Int8ActivationTest, Int8DiffersFromExactPath) {
  const DType dtype = GetParam();
  const test::RandomWeights weights(dtype, 64, 256, 31);
  const std::vector<float> x = test::random_vector(256, 32);
  ThreadPool pool(1);
  std::vector<float> y_int8(64), y_exact(64), y_default(64);
  matvec(weights.matrix, x, y_int8, pool, ActivationPrecision::kInt8);
  matvec(weights.matrix, x, y_exact, pool, ActivationPrecision::kF32);
  matvec(weights.matrix, x, y_default, pool);
  EXPECT_NE(y_int8, y_exact);
  EXPECT_EQ(y_default, y_exact);
}

INSTANTIATE_TEST_SUITE_P(IntegerFormats, Int8ActivationTest, ::testing::ValuesIn(kFormats),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

TEST(QuantizeActivationBlocks, CodesWithinHalfAScale) {
  const int64_t cols = 256;
  std::vector<float> x = test::random_vector(static_cast<size_t>(cols * 3), 5);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(64 + i)] = 0.0f;  // token 0, block 2 all zero
  x[static_cast<size_t>(cols + 7)] = 1000.0f;                         // token 1, block 0 has an outlier
  QuantizedActivations q;
  resize_quantized_activations(3, cols, q);
  quantize_activation_blocks(x.data(), 0, 3, q);
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      const auto index = static_cast<size_t>(t * (cols / 32) + b);
      const float scale = q.scales[index];
      int32_t sum = 0;
      for (int64_t i = 0; i < 32; ++i) {
        const auto at = static_cast<size_t>(t * cols + b * 32 + i);
        const int8_t code = q.codes[at];
        ASSERT_GE(code, -127);
        EXPECT_LE(std::fabs(static_cast<double>(x[at]) - static_cast<double>(scale) * code), 0.5 * scale * (1 + 0x1p-12))
            << "token " << t << " value " << i;
        sum += code;
      }
      EXPECT_EQ(q.scaled_sums[index], scale * static_cast<float>(sum));
      for (int64_t g = 0; g < 8; ++g) {
        const auto group = static_cast<size_t>((t * cols + b * 32) / 4 + g);
        const auto first = static_cast<size_t>(t * cols + b * 32 + 4 * g);
        EXPECT_EQ(q.group_sums[group], q.codes[first] + q.codes[first + 1] + q.codes[first + 2] + q.codes[first + 3]);
        EXPECT_EQ(q.group_scales[group], scale);
        EXPECT_EQ(q.group_scaled_sums[group], q.scaled_sums[index] / 8);
      }
    }
  }
  EXPECT_EQ(q.scales[2], 0.0f);
  EXPECT_FLOAT_EQ(q.scales[static_cast<size_t>(cols / 32)], 1000.0f / 127.0f);
  EXPECT_EQ(q.codes[static_cast<size_t>(cols + 7)], 127);
}

TEST(QuantizeActivationBlocks, NonFiniteValueGivesNaN) {
  std::vector<float> x = test::random_vector(64, 9);
  x[40] = INFINITY;
  const test::RandomWeights weights(DType::Q8_0, 3, 64, 10);
  ThreadPool pool(1);
  std::vector<float> y(3);
  matvec(weights.matrix, x, y, pool, ActivationPrecision::kInt8);
  for (float value : y) EXPECT_TRUE(std::isnan(value));
}

}  // namespace
}  // namespace stepdown::kernels
