// FP8 E4M3 conversions and quantizer. The code values checked by hand come from the OCP
// 8-bit floating point specification v1.0 (E4M3: bias 7, max 448 = 0x7e, NaN = 0x7f/0xff,
// smallest subnormal 2^-9).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/fp8.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/fp8.h"
#include "stepdown/quant/rtn_int.h"

namespace stepdown {
namespace {

TEST(Fp8E4M3, EveryCodeRoundTrips) {
  for (int code = 0; code < 256; ++code) {
    const float value = fp8_e4m3_to_f32(static_cast<uint8_t>(code));
    if ((code & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(value)) << code;
      continue;
    }
    EXPECT_TRUE(std::isfinite(value)) << code;
    EXPECT_EQ(f32_to_fp8_e4m3(value), code) << "code " << code << " value " << value;
  }
}

TEST(Fp8E4M3, KnownValues) {
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0xfe), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), 0x1p-6f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), 0x1p-9f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x80), 0.0f);
  EXPECT_TRUE(std::signbit(fp8_e4m3_to_f32(0x80)));
}

TEST(Fp8E4M3, RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(f32_to_fp8_e4m3(1.0625f), 0x38);  // tie between 1 (even) and 1.125
  EXPECT_EQ(f32_to_fp8_e4m3(1.1875f), 0x3a);  // tie between 1.125 and 1.25 (even)
  EXPECT_EQ(f32_to_fp8_e4m3(432.0f), 0x7e);   // tie between 416 and 448 (even)
  EXPECT_EQ(f32_to_fp8_e4m3(0x1p-10f), 0x00); // tie between 0 (even) and 2^-9
  EXPECT_EQ(f32_to_fp8_e4m3(3 * 0x1p-10f), 0x02);
  EXPECT_EQ(f32_to_fp8_e4m3(15 * 0x1p-10f), 0x08);  // rounds up into the normal range
  EXPECT_EQ(f32_to_fp8_e4m3(449.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(1e30f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-1e30f), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(NAN), 0x7f);
}

std::vector<float> dequantize_fp8(const std::vector<std::byte>& bytes, int64_t rows, int64_t cols) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const size_t row_bytes = dtype_bytes(DType::FP8_E4M3, cols);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::dequantize_row(DType::FP8_E4M3, bytes.data() + r * row_bytes, out.data() + r * cols, cols);
  }
  return out;
}

// The E4M3 grid around |v| (in units of the row scale) has half-step 2^(e-4) for v in
// [2^e, 2^(e+1)), e >= -6, and 2^-10 below 2^-6. Every error must be within half a step
// (plus f32 rounding of the division), and the RMSE within 1.2 x the uniform-error value
// sqrt(mean(h^2 / 3)).
TEST(QuantizeFp8, ErrorWithinHalfStepAndRmseBound) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t cols : {1, 17, 172, 1023}) {
    const int64_t rows = 9;
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (float& v : w) v = normal(rng);
    const std::vector<std::byte> q = quant::quantize_tensor_stepdown("w", DType::FP8_E4M3, w, rows, cols);
    const std::vector<float> back = dequantize_fp8(q, rows, cols);
    double squared_error = 0.0, expected = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      float scale;
      std::memcpy(&scale, q.data() + r * dtype_bytes(DType::FP8_E4M3, cols), 4);
      for (int64_t i = 0; i < cols; ++i) {
        const size_t k = static_cast<size_t>(r * cols + i);
        const double scaled = std::fabs(w[k]) / scale;
        const double half_step = scaled < 0x1p-6 ? 0x1p-10 : std::ldexp(1.0, std::ilogb(scaled) - 4);
        const double bound = half_step * scale;
        const double error = static_cast<double>(back[k]) - w[k];
        EXPECT_LE(std::fabs(error), bound * (1 + 1e-6) + 1e-6 * std::fabs(w[k])) << "(" << r << ", " << i << ")";
        squared_error += error * error;
        expected += bound * bound / 3.0;
      }
    }
    EXPECT_LE(std::sqrt(squared_error), 1.2 * std::sqrt(expected)) << "cols " << cols;
  }
}

TEST(QuantizeFp8, RowMaxMapsTo448AndNeverNaN) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> uniform(-1e4f, 1e4f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> w(33);
    for (float& v : w) v = uniform(rng);
    std::vector<std::byte> q(dtype_bytes(DType::FP8_E4M3, 33));
    quant::quantize_row_fp8(w.data(), q.data(), 33);
    bool has_max = false;
    for (int i = 0; i < 33; ++i) {
      const auto code = static_cast<uint8_t>(q[4 + i]);
      EXPECT_NE(code & 0x7f, 0x7f) << "trial " << trial << " element " << i;
      has_max |= (code & 0x7f) == 0x7e;
    }
    EXPECT_TRUE(has_max) << "trial " << trial;
  }
}

TEST(QuantizeFp8, ZeroAndSubnormalRowsGetScaleZero) {
  for (float value : {0.0f, -0.0f, 1e-40f, -3e-39f}) {
    const std::vector<float> w(10, value);
    std::vector<std::byte> q(dtype_bytes(DType::FP8_E4M3, 10));
    quant::quantize_row_fp8(w.data(), q.data(), 10);
    float scale;
    std::memcpy(&scale, q.data(), 4);
    EXPECT_EQ(scale, 0.0f) << value;
    for (float v : dequantize_fp8(q, 1, 10)) EXPECT_EQ(v, 0.0f) << value;
  }
}

TEST(QuantizeFp8, NonFiniteInputNamesTensor) {
  std::vector<float> w(12, 1.0f);
  w[7] = INFINITY;
  try {
    quant::quantize_tensor_stepdown("output.weight", DType::FP8_E4M3, w, 2, 6);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("output.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(1, 1)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stepdown
