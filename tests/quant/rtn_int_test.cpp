// RTN quantizers for stepdown's integer formats: quantize -> dequantize error bounds on
// Gaussian data, exact zeros for zero and subnormal input, and rejected input.
//
// Error bound: RTN moves each value by at most half its group's step d, and for data
// spread over many steps the error is close to uniform on [-d/2, d/2], whose mean square
// is d^2 / 12. Each test requires every |error| <= d/2 (with a 2^-10 relative slack for
// f16 rounding of the scale and min) and RMSE <= 1.2 * sqrt(mean of d^2 / 12).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/kernels/stepdown_formats.h"
#include "stepdown/quant/quantize_tensor.h"
#include "stepdown/quant/rtn_int.h"
#include "stepdown/quant/scheme.h"
#include "stepdown/quant/stepdown_schemes.h"

namespace stepdown::quant {
namespace {

constexpr DType kIntFormats[] = {DType::INT8,          DType::INT8_W8A8,     DType::INT8_G128,
                                 DType::INT4_G32,      DType::INT4_G64,      DType::INT4_G128,
                                 DType::INT4_G32_ASYM, DType::INT4_G64_ASYM, DType::INT4_G128_ASYM};

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<float> dequantize(DType dtype, const std::vector<std::byte>& bytes, int64_t rows, int64_t cols) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const size_t row_bytes = dtype_bytes(dtype, cols);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::dequantize_row(dtype, bytes.data() + r * row_bytes, out.data() + r * cols, cols);
  }
  return out;
}

// The RTN step d of element (r, i), read back from the stored scales.
float step_of(DType dtype, const std::byte* row, int64_t i) {
  const kernels::GroupLayout layout = kernels::group_layout(dtype);
  if (layout.group == 0) {
    float scale;
    std::memcpy(&scale, row, 4);
    return scale;
  }
  uint16_t d;
  std::memcpy(&d, row + (i / layout.group) * layout.bytes, 2);
  return f16_to_f32(d);
}

class RtnIntTest : public ::testing::TestWithParam<DType> {};

TEST_P(RtnIntTest, ErrorWithinHalfStepAndRmseBound) {
  const DType dtype = GetParam();
  const int64_t group = dtype_info(dtype).block_elems;
  for (int64_t cols : {group == 1 ? int64_t{1} : group, group == 1 ? int64_t{173} : 3 * group, int64_t{768}}) {
    const int64_t rows = 31;
    const std::vector<float> w = gaussian(static_cast<size_t>(rows * cols), static_cast<uint32_t>(cols));
    const std::vector<std::byte> q = quantize_tensor_stepdown("w", dtype, w, rows, cols);
    const std::vector<float> back = dequantize(dtype, q, rows, cols);
    const size_t row_bytes = dtype_bytes(dtype, cols);
    double squared_error = 0.0, expected = 0.0;
    int violations = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < cols; ++i) {
        const size_t k = static_cast<size_t>(r * cols + i);
        const double d = step_of(dtype, q.data() + r * row_bytes, i);
        const double error = static_cast<double>(back[k]) - w[k];
        const double slack = 0x1p-10 * (std::fabs(w[k]) + 1.0) * d + 1e-30;
        if (std::fabs(error) > 0.5 * d + slack && violations++ < 3) {
          ADD_FAILURE() << dtype_name(dtype) << " (" << r << ", " << i << "): " << w[k] << " -> " << back[k]
                        << ", step " << d;
        }
        squared_error += error * error;
        expected += d * d / 12.0;
      }
    }
    const double n = static_cast<double>(rows * cols);
    EXPECT_LE(std::sqrt(squared_error / n), 1.2 * std::sqrt(expected / n)) << dtype_name(dtype) << " cols " << cols;

    // The bounds above are relative to the stored step, so also check that the step is the
    // smallest that covers the group: range / levels, up to f16 rounding of the scale.
    const kernels::GroupLayout layout = kernels::group_layout(dtype);
    const int64_t span = layout.group == 0 ? cols : layout.group;
    double levels = 127.0;  // int8: codes -127..127
    if (layout.bits == 4) levels = layout.has_min ? 15.0 : 7.0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < cols; g += span) {
        double lo = 0.0, hi = 0.0, absmax = 0.0;
        for (int64_t i = g; i < g + span; ++i) {
          const double v = w[static_cast<size_t>(r * cols + i)];
          lo = i == g ? v : std::min(lo, v);
          hi = i == g ? v : std::max(hi, v);
          absmax = std::max(absmax, std::fabs(v));
        }
        const double range = layout.has_min ? hi - lo : absmax;
        const double d = step_of(dtype, q.data() + r * row_bytes, g);
        EXPECT_NEAR(d, range / levels, 0x1p-10 * range / levels) << dtype_name(dtype) << " row " << r << " group at " << g;
      }
    }
  }
}

TEST_P(RtnIntTest, ZeroAndSubnormalRowsGiveExactZeros) {
  const DType dtype = GetParam();
  const int64_t cols = dtype_info(dtype).block_elems == 1 ? 45 : 2 * dtype_info(dtype).block_elems;
  std::vector<float> w(static_cast<size_t>(2 * cols), 0.0f);
  for (int64_t i = 0; i < cols; ++i) w[static_cast<size_t>(cols + i)] = (i % 2 ? -1.0f : 1.0f) * 1e-39f * (i + 1) / cols;
  const std::vector<float> back = dequantize(dtype, quantize_tensor_stepdown("w", dtype, w, 2, cols), 2, cols);
  for (size_t k = 0; k < back.size(); ++k) EXPECT_EQ(back[k], 0.0f) << dtype_name(dtype) << " element " << k;
}

TEST_P(RtnIntTest, NonFiniteInputNamesTensor) {
  const DType dtype = GetParam();
  const int64_t cols = dtype_info(dtype).block_elems == 1 ? 8 : dtype_info(dtype).block_elems;
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> w = gaussian(static_cast<size_t>(2 * cols), 5);
    w[static_cast<size_t>(cols + 3)] = bad;
    try {
      quantize_tensor_stepdown("blk.0.ffn_up.weight", dtype, w, 2, cols);
      ADD_FAILURE() << dtype_name(dtype) << ": no error for " << bad;
    } catch (const InvalidArgument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("blk.0.ffn_up.weight"), std::string::npos) << message;
      EXPECT_NE(message.find("(1, 3)"), std::string::npos) << message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(IntFormats, RtnIntTest, ::testing::ValuesIn(kIntFormats),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

TEST(RtnInt, RowNotMultipleOfGroupNamesBothNumbers) {
  // stories260K's FFN rows are 172 wide, which no group of 32, 64 or 128 divides.
  const std::vector<float> w = gaussian(2 * 172, 1);
  try {
    quantize_tensor_stepdown("blk.0.ffn_down.weight", DType::INT4_G128, w, 2, 172);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("blk.0.ffn_down.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("172"), std::string::npos) << message;
    EXPECT_NE(message.find("128"), std::string::npos) << message;
  }
}

TEST(RtnInt, SymmetricCodesStayInRange) {
  // -128 must never be written (the W8A8 kernel negates codes), nor nibble 0 for INT4.
  const std::vector<float> w = gaussian(128 * 4, 2, 3.0f);
  const std::vector<std::byte> int8 = quantize_tensor_stepdown("w", DType::INT8, w, 4, 128);
  for (size_t i = 0; i < int8.size(); ++i) {
    if (i % (4 + 128) < 4) continue;  // the row's f32 scale
    EXPECT_NE(static_cast<int8_t>(int8[i]), -128) << i;
  }
  const std::vector<std::byte> int4 = quantize_tensor_stepdown("w", DType::INT4_G32, w, 4, 128);
  for (size_t i = 0; i < int4.size(); ++i) {
    if (i % 18 < 2) continue;
    const auto byte = static_cast<uint8_t>(int4[i]);
    EXPECT_NE(byte & 0x0f, 0) << i;
    EXPECT_NE(byte >> 4, 0) << i;
  }
}

TEST(RtnInt, RoundsHalfAwayFromZero) {
  // absmax 127 gives scale exactly 1, so 2.5 -> 3 and -2.5 -> -3 (ties away from zero).
  const std::vector<float> w = {127.0f, 2.5f, -2.5f, 0.5f};
  const std::vector<float> back = dequantize(DType::INT8, quantize_tensor_stepdown("w", DType::INT8, w, 1, 4), 1, 4);
  EXPECT_EQ(back[1], 3.0f);
  EXPECT_EQ(back[2], -3.0f);
  EXPECT_EQ(back[3], 1.0f);
}

TEST(StepdownDType, RowHeaderCountsInRowBytes) {
  EXPECT_EQ(dtype_bytes(DType::INT8, 100), 104u);
  EXPECT_EQ(dtype_bytes(DType::FP8_E4M3, 7), 11u);
  EXPECT_EQ(dtype_bytes(DType::INT4_G32_ASYM, 64), 40u);
  EXPECT_EQ(dtype_bytes(DType::Q8_0, 64), 68u);
  EXPECT_FALSE(dtype_from_ggml_id(static_cast<uint32_t>(DType::INT8)).has_value());
  EXPECT_EQ(dtype_from_name("int4_g128_asym"), DType::INT4_G128_ASYM);
}

TEST(StepdownSchemes, RegisteredGroupFormatsQuantizeAlike) {
  register_stepdown_quant_schemes();
  for (const char* name : {"int8", "int8-g128", "int4-g32", "int4-g64", "int4-g128", "int4-g32-asym",
                           "int4-g128-asym", "fp8"}) {
    EXPECT_NE(find_scheme(name), nullptr) << name;
    EXPECT_NE(find_quant_format(name), nullptr) << name;
  }
  // Formats without a row header go through the registry's quantize_tensor unchanged.
  ThreadPool pool(2);
  const std::vector<float> w = gaussian(5 * 256, 11);
  for (DType dtype : {DType::INT8_G128, DType::INT4_G32, DType::INT4_G128_ASYM}) {
    const QuantFormat* format = find_quant_format(dtype);
    ASSERT_NE(format, nullptr) << dtype_name(dtype);
    EXPECT_EQ(quantize_tensor("w", *format, w, 5, 256, pool), quantize_tensor_stepdown("w", dtype, w, 5, 256))
        << dtype_name(dtype);
  }
}

}  // namespace
}  // namespace stepdown::quant
