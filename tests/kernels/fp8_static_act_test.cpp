// FP8_E4M3_A8: the fast kernel (FP8_E4M3 dot product on E4M3-rounded activations) against
// the scalar reference, and against the FP8_E4M3 product where rounding x changes nothing.
//
// Tolerance: both compute sum_j w_q[j] * xq[j] in f32, where every product of two E4M3
// values is exact. The fast kernel multiplies the weight scale in before the sum (one
// rounding per term) and sums in lane order; the reference sums sequentially. Each sum is
// off the exact one by at most (n + 2) * 2^-24 * sum |terms|, so the two may differ by
// twice that, plus the roundings of the two final products.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "random_weights.h"
#include "stepdown/core/error.h"
#include "stepdown/core/fp8.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/fp8_static_act.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {
namespace {

// W (rows, cols) in FP8_E4M3_A8 with random codes and weight scales, and the same weights
// as an FP8_E4M3 matrix.
struct A8Weights {
  test::RandomWeights fp8;
  std::vector<std::byte> storage;
  WeightMatrix matrix;

  A8Weights(int64_t rows, int64_t cols, float act_scale, uint32_t seed) : fp8(DType::FP8_E4M3, rows, cols, seed) {
    const size_t fp8_row_bytes = dtype_bytes(DType::FP8_E4M3, cols);
    const size_t row_bytes = dtype_bytes(DType::FP8_E4M3_A8, cols);
    storage.resize(row_bytes * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      std::byte* row = storage.data() + static_cast<size_t>(r) * row_bytes;
      std::memcpy(row, &act_scale, 4);
      std::memcpy(row + 4, fp8.storage.data() + static_cast<size_t>(r) * fp8_row_bytes, fp8_row_bytes);
    }
    matrix = WeightMatrix{DType::FP8_E4M3_A8, storage.data(), rows, cols, row_bytes};
  }
};

// sum_j |w[r][j] * xq[j]| * act_scale for token x, in double.
double magnitude(const WeightMatrix& w, int64_t r, const float* x, float act_scale) {
  std::vector<float> weights(static_cast<size_t>(w.cols)), xq(static_cast<size_t>(w.cols));
  dequantize_row(w.dtype, w.data + static_cast<size_t>(r) * w.row_stride, weights.data(), w.cols);
  quantize_activations_e4m3(x, w.cols, act_scale, xq.data());
  double sum = 0.0;
  for (int64_t j = 0; j < w.cols; ++j) sum += std::fabs(static_cast<double>(weights[j]) * xq[j]);
  return sum * act_scale;
}

double tolerance(int64_t n, double magnitude) { return 2.0 * static_cast<double>(n + 4) * 0x1p-24 * magnitude + 1e-30; }

void expect_close_to_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, const std::vector<float>& y,
                               float act_scale, const char* what) {
  std::vector<float> reference(static_cast<size_t>(n_tokens * w.rows));
  matmul_fp8_a8_reference(w, x, n_tokens, reference.data());
  int failures = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      const size_t i = static_cast<size_t>(t * w.rows + r);
      const double limit = tolerance(w.cols, magnitude(w, r, x + t * w.cols, act_scale));
      if (std::fabs(static_cast<double>(y[i]) - reference[i]) > limit && failures++ < 3) {
        ADD_FAILURE() << what << " W (" << w.rows << ", " << w.cols << ") token " << t << " row " << r << ": got "
                      << y[i] << ", reference " << reference[i] << ", tolerance " << limit;
      }
    }
  }
}

// Gaussian x with std 1 and act_scale 1/128, so |x| > 3.5 clips to +-3.5: about 5 values in
// 10,000, which the comparison covers too.
constexpr float kActScale = 1.0f / 128.0f;

TEST(Fp8A8Kernel, MatvecMatchesReferenceOnOddShapes) {
  ThreadPool one(1), two(2);
  uint32_t seed = 10;
  for (int64_t rows : {1, 3, 17, 64, 255, 1023}) {
    for (int64_t cols : {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 172, 344, 516, 1023}) {
      if (rows * cols > 300'000) continue;  // keeps the reference's cost bounded
      const A8Weights weights(rows, cols, kActScale, ++seed);
      const std::vector<float> x = test::random_vector(static_cast<size_t>(cols), ++seed);
      for (ThreadPool* pool : {&one, &two}) {
        std::vector<float> y(static_cast<size_t>(rows), NAN);
        matvec(weights.matrix, x, y, *pool);
        expect_close_to_reference(weights.matrix, x.data(), 1, y, kActScale,
                                  pool->size() == 1 ? "matvec, 1 thread" : "matvec, 2 threads");
      }
    }
  }
}

TEST(Fp8A8Kernel, MatmulMatchesReferenceOnOddShapes) {
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (int64_t rows : {1, 19, 130}) {
    for (int64_t cols : {1, 17, 172, 1023}) {
      const A8Weights weights(rows, cols, kActScale, ++seed);
      for (int64_t n_tokens : {1, 2, 3, 7, 8, 9, 16, 17}) {
        const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), ++seed);
        std::vector<float> y(static_cast<size_t>(rows * n_tokens), NAN);
        matmul(weights.matrix, x.data(), n_tokens, y.data(), pool);
        expect_close_to_reference(weights.matrix, x.data(), n_tokens, y, kActScale, "matmul");
      }
    }
  }
}

// x = act_scale * e4m3(code) with act_scale a power of two: x / act_scale is exact and
// rounding it to E4M3 changes nothing, and scaling by a power of two is exact, so the fast
// kernel gives the FP8_E4M3 product bit for bit.
TEST(Fp8A8Kernel, EqualsFp8ProductWhenActivationsAreExact) {
  ThreadPool pool(2);
  const float act_scale = 0.125f;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(0, 253);
  for (int64_t cols : {1, 16, 65, 172, 1023}) {
    const int64_t rows = 37, n_tokens = 9;
    const A8Weights weights(rows, cols, act_scale, static_cast<uint32_t>(cols));
    std::vector<float> x(static_cast<size_t>(cols * n_tokens));
    for (float& v : x) {
      const int c = code(rng);
      v = act_scale * fp8_e4m3_to_f32(static_cast<uint8_t>(c < 127 ? c : c + 1));  // skip the NaN codes
    }
    std::vector<float> a8(static_cast<size_t>(rows * n_tokens)), fp8(a8.size()), reference(a8.size());
    matmul(weights.matrix, x.data(), n_tokens, a8.data(), pool);
    matmul(weights.fp8.matrix, x.data(), n_tokens, fp8.data(), pool);
    matmul_fp8_a8_reference(weights.matrix, x.data(), n_tokens, reference.data());
    for (size_t i = 0; i < a8.size(); ++i) {
      EXPECT_EQ(a8[i], fp8[i]) << "cols " << cols << " index " << i;
      const int64_t t = static_cast<int64_t>(i) / rows, r = static_cast<int64_t>(i) % rows;
      EXPECT_NEAR(reference[i], fp8[i], tolerance(cols, magnitude(weights.matrix, r, x.data() + t * cols, act_scale)))
          << "cols " << cols << " index " << i;
    }
  }
}

// matmul_group runs FP8_E4M3_A8 members on their own kernel and the rest together, as the
// model does for q/k/v when an override gives them different formats.
TEST(Fp8A8Kernel, GroupWithOtherFormatEqualsSeparateCalls) {
  ThreadPool pool(2);
  const int64_t cols = 96, n_tokens = 5;
  const A8Weights a8(21, cols, kActScale, 31);
  const test::RandomWeights q8(DType::Q8_0, 13, cols, 32);
  const std::vector<float> x = test::random_vector(static_cast<size_t>(cols * n_tokens), 33);
  std::vector<float> a8_alone(21 * n_tokens), q8_alone(13 * n_tokens);
  matmul(a8.matrix, x.data(), n_tokens, a8_alone.data(), pool);
  matmul(q8.matrix, x.data(), n_tokens, q8_alone.data(), pool);

  std::vector<float> a8_grouped(a8_alone.size(), NAN), q8_grouped(q8_alone.size(), NAN);
  const MatmulProduct products[] = {{&q8.matrix, q8_grouped.data()}, {&a8.matrix, a8_grouped.data()}};
  matmul_group(products, x.data(), n_tokens, pool);
  for (size_t i = 0; i < a8_alone.size(); ++i) EXPECT_EQ(a8_grouped[i], a8_alone[i]) << "FP8_E4M3_A8 index " << i;
  for (size_t i = 0; i < q8_alone.size(); ++i) EXPECT_EQ(q8_grouped[i], q8_alone[i]) << "Q8_0 index " << i;
}

TEST(Fp8A8Kernel, ClipsActivationsBeyondCalibratedRange) {
  ThreadPool pool(1);
  const float act_scale = 0.5f;  // range +-224
  const A8Weights weights(5, 8, act_scale, 3);
  std::vector<float> x = {1.0f, -2.0f, 1000.0f, 0.5f, -5000.0f, 3.0f, 0.0f, 224.0f};
  std::vector<float> clipped = x;
  clipped[2] = 224.0f;
  clipped[4] = -224.0f;
  std::vector<float> y(5), y_clipped(5);
  matvec(weights.matrix, x, y, pool);
  matvec(weights.matrix, clipped, y_clipped, pool);
  for (size_t r = 0; r < y.size(); ++r) EXPECT_EQ(y[r], y_clipped[r]) << "row " << r;

  std::vector<float> xq(x.size());
  quantize_activations_e4m3(x.data(), static_cast<int64_t>(x.size()), act_scale, xq.data());
  EXPECT_EQ(xq[2], 448.0f);
  EXPECT_EQ(xq[4], -448.0f);
  EXPECT_EQ(xq[7], 448.0f);
}

TEST(Fp8A8Kernel, RoundsActivationsToNearestEven) {
  // 17 and 19 lie halfway between E4M3 neighbours (16, 18, 20); ties go to the even
  // mantissa: 16 and 20. 2^-10 is half the smallest subnormal and goes to 0.
  const std::vector<float> x = {17.0f, 19.0f, -17.0f, 0x1p-10f, 0x1p-9f, 500.0f};
  std::vector<float> xq(x.size());
  quantize_activations_e4m3(x.data(), static_cast<int64_t>(x.size()), 1.0f, xq.data());
  EXPECT_EQ(xq[0], 16.0f);
  EXPECT_EQ(xq[1], 20.0f);
  EXPECT_EQ(xq[2], -16.0f);
  EXPECT_EQ(xq[3], 0.0f);
  EXPECT_EQ(xq[4], 0x1p-9f);
  EXPECT_EQ(xq[5], 448.0f);
}

TEST(Fp8A8Kernel, DequantizeRowIgnoresActivationScale) {
  const A8Weights weights(3, 40, 0.3f, 9);
  std::vector<float> a8(40), fp8(40);
  for (int64_t r = 0; r < 3; ++r) {
    dequantize_row(DType::FP8_E4M3_A8, weights.storage.data() + r * weights.matrix.row_stride, a8.data(), 40);
    dequantize_row(DType::FP8_E4M3, weights.fp8.storage.data() + r * weights.fp8.matrix.row_stride, fp8.data(), 40);
    for (size_t j = 0; j < a8.size(); ++j) EXPECT_EQ(a8[j], fp8[j]) << "row " << r << " column " << j;
  }
}

TEST(Fp8A8Kernel, RejectsMismatchedOrInvalidActivationScales) {
  ThreadPool pool(1);
  A8Weights weights(4, 16, 0.5f, 11);
  const std::vector<float> x(16, 1.0f);
  std::vector<float> y(4);
  const float other = 0.25f;
  std::memcpy(weights.storage.data() + 2 * weights.matrix.row_stride, &other, 4);
  EXPECT_THROW(matvec(weights.matrix, x, y, pool), InvalidArgument);

  for (float bad : {0.0f, -1.0f, NAN, INFINITY}) {
    for (int64_t r = 0; r < 4; ++r) std::memcpy(weights.storage.data() + r * weights.matrix.row_stride, &bad, 4);
    EXPECT_THROW(matvec(weights.matrix, x, y, pool), InvalidArgument) << "act_scale " << bad;
  }
}

}  // namespace
}  // namespace stepdown::kernels
