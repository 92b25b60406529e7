// Fast kernels (Highway, dispatched at run time) against the scalar references.
//
// Tolerance: the fast kernels decode weights bit for bit as dequantize_row does, so the
// only difference from the reference is the order of the f32 summation (lane-parallel
// partial sums, FMA). Any order of n f32 additions is off the exact sum by at most
// gamma_n * sum |w_i x_i| with gamma_n = n u / (1 - n u), u = 2^-24, and the final rounding
// to f32 adds u * |y|. The reference sums in double (error ~ n * 2^-53, negligible), so we
// require |fast - reference| <= (n + 2) * 2^-24 * sum |w_i x_i|.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "random_weights.h"
#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/kernels/reference.h"

namespace stepdown::kernels {
namespace {

// INT8_W8A8 is left out: it quantizes x, so it is held against its own reference in
// int8_int8_test.cpp.
constexpr DType kAllFormats[] = {DType::F32,       DType::F16,           DType::BF16,          DType::Q8_0,
                                 DType::Q4_0,      DType::Q4_1,          DType::Q5_0,          DType::Q5_1,
                                 DType::Q4_K,      DType::Q5_K,          DType::Q6_K,          DType::INT8,
                                 DType::INT8_G128, DType::INT4_G32,      DType::INT4_G64,      DType::INT4_G128,
                                 DType::INT4_G32_ASYM, DType::INT4_G64_ASYM, DType::INT4_G128_ASYM, DType::FP8_E4M3,
                                 DType::INT3_G64,  DType::INT3_G128,     DType::INT3_G64_ASYM, DType::INT3_G128_ASYM};

double tolerance(int64_t n, double magnitude) { return static_cast<double>(n + 2) * 0x1p-24 * magnitude + 1e-30; }

// Column counts to test for a format: odd lengths and 172 * k for plain floats, every
// small multiple of the block otherwise; all below 1024.
std::vector<int64_t> column_cases(DType dtype) {
  const int64_t block = dtype_info(dtype).block_elems;
  if (block == 1) return {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 172, 344, 516, 688, 860, 1023};
  std::vector<int64_t> cols;
  for (int64_t c = block; c < 1024; c += block) {
    if (c <= 4 * block || c % (7 * block) == 0 || c + block >= 1024) cols.push_back(c);
  }
  return cols;
}

// Checks y (n_tokens, rows) against the reference for every row and token.
void expect_close(const WeightMatrix& w, const float* x, int64_t n_tokens, const std::vector<float>& y,
                  const char* what) {
  int failures = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      const RowDotReference ref = dot_row_reference(w, r, x + t * w.cols);
      const double got = y[static_cast<size_t>(t * w.rows + r)];
      if (std::fabs(got - ref.dot) > tolerance(w.cols, ref.magnitude) && failures++ < 3) {
        ADD_FAILURE() << what << " " << dtype_name(w.dtype) << " W (" << w.rows << ", " << w.cols << ") token " << t
                      << " row " << r << ": got " << got << ", reference " << ref.dot << ", tolerance "
                      << tolerance(w.cols, ref.magnitude);
      }
    }
  }
}

TEST(DotF32, MatchesReferenceOnOddLengths) {
  for (int64_t n : {0, 1, 2, 3, 5, 15, 16, 17, 63, 64, 65, 172, 344, 1000, 1023}) {
    const std::vector<float> a = test::random_vector(static_cast<size_t>(n), 1);
    const std::vector<float> b = test::random_vector(static_cast<size_t>(n), 2);
    double magnitude = 0.0;
    for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(a[i]) * b[i]);
    const double reference = dot_f32_reference(a.data(), b.data(), n);
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), reference, tolerance(n, magnitude)) << "n = " << n;
  }
}

TEST(AxpyF32, MatchesFloat64OnOddLengths) {
  for (int64_t n : {0, 1, 3, 15, 16, 17, 64, 65, 172}) {
    const std::vector<float> x = test::random_vector(static_cast<size_t>(n), 3);
    std::vector<float> y = test::random_vector(static_cast<size_t>(n), 4);
    const std::vector<float> before = y;
    axpy_f32(-0.75f, x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      // One fused or two rounded operations: within 2 ulps of the float64 result.
      const double want = static_cast<double>(before[i]) - 0.75 * static_cast<double>(x[i]);
      EXPECT_NEAR(y[i], want, 2.5e-7 * (std::fabs(before[i]) + std::fabs(0.75 * x[i])) + 1e-30) << "n = " << n << " i = " << i;
    }
  }
}

class KernelFormatTest : public ::testing::TestWithParam<DType> {};

TEST_P(KernelFormatTest, MatvecMatchesReference) {
  const DType dtype = GetParam();
  ThreadPool one(1), two(2);
  uint32_t seed = 10;
  for (int64_t rows : {1, 3, 17, 64, 255, 1023}) {
    for (int64_t cols : column_cases(dtype)) {
      if (rows * cols > 300'000) continue;  // keeps the reference's cost bounded
      const test::RandomWeights weights(dtype, rows, cols, ++seed);
      const std::vector<float> x = test::random_vector(static_cast<size_t>(cols), ++seed);
      for (ThreadPool* pool : {&one, &two}) {
        std::vector<float> y(static_cast<size_t>(rows), NAN);
        matvec(weights.matrix, x, y, *pool);
        expect_close(weights.matrix, x.data(), 1, y, pool->size() == 1 ? "matvec, 1 thread" : "matvec, 2 threads");
      }
    }
  }
}

TEST_P(KernelFormatTest, MatmulMatchesReferenceForEveryTileSize) {
  const DType dtype = GetParam();
  ThreadPool pool(2);
  const int64_t block = dtype_info(dtype).block_elems;
  const int64_t cols = block == 1 ? 172 : (block == 32 ? 96 : 512);
  uint32_t seed = 100;
  for (int64_t rows : {1, 19, 130}) {
    const test::RandomWeights weights(dtype, rows, cols, ++seed);
    for (int64_t n_tokens : {1, 2, 3, 7, 8, 9, 16, 17}) {
      const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), ++seed);
      std::vector<float> y(static_cast<size_t>(rows * n_tokens), NAN);
      matmul(weights.matrix, x.data(), n_tokens, y.data(), pool);
      expect_close(weights.matrix, x.data(), n_tokens, y, "matmul");
    }
  }
}

// The prefill kernels tile rows and tokens in registers; odd row and column counts leave
// partial tiles and vector tails in both directions.
TEST_P(KernelFormatTest, MatmulMatchesReferenceOnOddShapes) {
  const DType dtype = GetParam();
  ThreadPool pool(2);
  uint32_t seed = 300;
  for (int64_t rows : {1, 5, 33}) {
    for (int64_t cols : column_cases(dtype)) {
      if (rows * cols > 20'000) continue;  // keeps the reference's cost bounded
      const test::RandomWeights weights(dtype, rows, cols, ++seed);
      for (int64_t n_tokens : {4, 11}) {
        const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), ++seed);
        std::vector<float> y(static_cast<size_t>(rows * n_tokens), NAN);
        matmul(weights.matrix, x.data(), n_tokens, y.data(), pool);
        expect_close(weights.matrix, x.data(), n_tokens, y, "matmul");
      }
    }
  }
}

TEST_P(KernelFormatTest, RowStrideLargerThanRow) {
  const DType dtype = GetParam();
  const int64_t cols = dtype_info(dtype).block_elems == 1 ? 33 : dtype_info(dtype).block_elems * 2;
  const int64_t rows = 5;
  // Store the matrix as the left half of a (rows, 2 * cols) matrix.
  const test::RandomWeights wide(dtype, rows, 2 * cols, 7);
  WeightMatrix w = wide.matrix;
  w.cols = cols;
  const std::vector<float> x = test::random_vector(static_cast<size_t>(cols), 8);
  ThreadPool pool(2);
  std::vector<float> y(static_cast<size_t>(rows), NAN);
  matvec(w, x, y, pool);
  expect_close(w, x.data(), 1, y, "matvec with padded rows");
}

// With x = e_i (one-hot) every product but one is zero, so y[r] is the weight W[r][i] as
// the fused kernel decoded it: it must equal dequantize_row's value exactly.
void expect_fused_decode_exact(DType dtype) {
  const int64_t block = dtype_info(dtype).block_elems;
  const int64_t cols = block == 1 ? 45 : 2 * block;
  const int64_t rows = 3;
  const test::RandomWeights weights(dtype, rows, cols, 77);
  std::vector<float> decoded(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(dtype, weights.matrix.data + r * weights.matrix.row_stride, decoded.data() + r * cols, cols);
  }
  ThreadPool pool(1);
  int mismatches = 0;
  for (int64_t first = 0; first < cols; first += 8) {
    const int64_t n_tokens = std::min<int64_t>(8, cols - first);
    std::vector<float> x(static_cast<size_t>(n_tokens * cols), 0.0f);
    for (int64_t t = 0; t < n_tokens; ++t) x[static_cast<size_t>(t * cols + first + t)] = 1.0f;
    std::vector<float> y(static_cast<size_t>(n_tokens * rows), NAN);
    matmul(weights.matrix, x.data(), n_tokens, y.data(), pool);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        const float want = decoded[static_cast<size_t>(r * cols + first + t)];
        const float got = y[static_cast<size_t>(t * rows + r)];
        if (got != want && mismatches++ < 5) {
          ADD_FAILURE() << dtype_name(dtype) << " W[" << r << "][" << first + t << "]: fused " << got
                        << ", dequantize_row " << want;
        }
      }
    }
    std::vector<float> x_one(x.begin(), x.begin() + cols);
    std::vector<float> y_one(static_cast<size_t>(rows), NAN);
    matvec(weights.matrix, x_one, y_one, pool);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(y_one[static_cast<size_t>(r)], decoded[static_cast<size_t>(r * cols + first)])
          << dtype_name(dtype) << " matvec W[" << r << "][" << first << "]";
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(KernelFormatTest, FusedDecodeEqualsDequantizeRow) { expect_fused_decode_exact(GetParam()); }

INSTANTIATE_TEST_SUITE_P(AllFormats, KernelFormatTest, ::testing::ValuesIn(kAllFormats),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

// The tests above run on the best target of this CPU. This one repeats a smaller sweep and
// the one-hot exactness check on every target Highway compiled and the CPU supports.
TEST(KernelTargets, EveryCompiledTargetMatchesReference) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  ThreadPool pool(2);
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    uint32_t seed = 500;
    for (DType dtype : kAllFormats) {
      const int64_t cols = dtype_info(dtype).block_elems == 1 ? 189 : dtype_info(dtype).block_elems * 3;
      const test::RandomWeights weights(dtype, 37, cols, ++seed);
      for (int64_t n_tokens : {1, 5}) {
        const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), ++seed);
        std::vector<float> y(static_cast<size_t>(37 * n_tokens), NAN);
        matmul(weights.matrix, x.data(), n_tokens, y.data(), pool);
        expect_close(weights.matrix, x.data(), n_tokens, y, hwy::TargetName(target));
      }
      const std::vector<float> a = test::random_vector(static_cast<size_t>(cols), ++seed);
      double magnitude = 0.0;
      for (float v : a) magnitude += static_cast<double>(v) * v;
      EXPECT_NEAR(dot_f32(a.data(), a.data(), cols), dot_f32_reference(a.data(), a.data(), cols),
                  tolerance(cols, magnitude));
      expect_fused_decode_exact(dtype);
    }
    std::cout << "checked target " << hwy::TargetName(target) << "\n";
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A group runs every product in one parallel loop. Each output must still equal its own
// matmul bit for bit, whatever the row counts and formats in the group.
TEST(MatmulGroup, EqualsSeparateProducts) {
  ThreadPool pool(2);
  const int64_t cols = 192;
  const test::RandomWeights q(DType::Q8_0, 37, cols, 1);
  const test::RandomWeights k(DType::F16, 16, cols, 2);
  const test::RandomWeights v(DType::Q4_1, 5, cols, 3);
  for (ActivationPrecision precision : {ActivationPrecision::kF32, ActivationPrecision::kInt8}) {
    for (int64_t n_tokens : {1, 6}) {
      const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), 4);
      std::vector<std::vector<float>> grouped, separate;
      std::vector<MatmulProduct> products;
      for (const test::RandomWeights* w : {&q, &k, &v}) {
        grouped.emplace_back(static_cast<size_t>(w->matrix.rows * n_tokens), NAN);
        separate.emplace_back(static_cast<size_t>(w->matrix.rows * n_tokens), NAN);
      }
      int index = 0;
      for (const test::RandomWeights* w : {&q, &k, &v}) {
        products.push_back({&w->matrix, grouped[static_cast<size_t>(index)].data()});
        matmul(w->matrix, x.data(), n_tokens, separate[static_cast<size_t>(index)].data(), pool, precision);
        ++index;
      }
      matmul_group(products, x.data(), n_tokens, pool, precision);
      for (size_t i = 0; i < grouped.size(); ++i) {
        EXPECT_EQ(grouped[i], separate[i]) << "product " << i << ", " << n_tokens << " tokens, precision "
                                           << static_cast<int>(precision);
      }
    }
  }
}

TEST(MatmulGroup, DifferentColumnsIsInvalidArgument) {
  ThreadPool pool(1);
  const test::RandomWeights a(DType::Q8_0, 4, 64, 1);
  const test::RandomWeights b(DType::Q8_0, 4, 96, 2);
  std::vector<float> x(64), ya(4), yb(4);
  const MatmulProduct products[] = {{&a.matrix, ya.data()}, {&b.matrix, yb.data()}};
  EXPECT_THROW(matmul_group(products, x.data(), 1, pool), InvalidArgument);
}

TEST(Matvec, ShapeMismatchIsInvalidArgument) {
  const test::RandomWeights weights(DType::Q8_0, 4, 64, 1);
  ThreadPool pool(1);
  std::vector<float> x(63), y(4);
  EXPECT_THROW(matvec(weights.matrix, x, y, pool), InvalidArgument);
  WeightMatrix partial = weights.matrix;
  partial.cols = 48;
  std::vector<float> x48(48);
  EXPECT_THROW(matvec(partial, x48, y, pool), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::kernels
