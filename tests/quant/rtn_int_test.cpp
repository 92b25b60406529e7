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
                                 DType::INT4_G32_ASYM, DType::INT4_G64_ASYM, DType::INT4_G128_ASYM,
                                 DType::INT3_G64,      DType::INT3_G128,     DType::INT3_G64_ASYM,
                                 DType::INT3_G128_ASYM};

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
    if (layout.bits == 3) levels = layout.has_min ? 7.0 : 3.0;
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

TEST(RtnInt, Int3CodesStayInRangeAndUsePlanes) {
  // Symmetric INT3 stores c = code + 4 with code in [-3, 3], so c is never 0. A group whose
  // values are -3 d .. 3 d in order also checks the plane layout against int3_code.
  std::vector<float> w(64);
  for (int64_t e = 0; e < 64; ++e) w[static_cast<size_t>(e)] = static_cast<float>(e % 7 - 3);
  w[0] = 3.0f;  // absmax 3 gives d = 1 exactly
  const std::vector<std::byte> q = quantize_tensor_stepdown("w", DType::INT3_G64, w, 1, 64);
  ASSERT_EQ(q.size(), 26u);
  const auto* planes = reinterpret_cast<const uint8_t*>(q.data() + 2);
  for (int64_t e = 0; e < 64; ++e) {
    EXPECT_EQ(kernels::int3_code(planes, 64, e) - 4, static_cast<int>(w[static_cast<size_t>(e)])) << e;
  }
  const std::vector<float> big = gaussian(128 * 6, 9, 2.0f);
  for (DType dtype : {DType::INT3_G64, DType::INT3_G128}) {
    const kernels::GroupLayout layout = kernels::group_layout(dtype);
    const std::vector<std::byte> bytes = quantize_tensor_stepdown("w", dtype, big, 6, 128);
    for (size_t b = 0; b < bytes.size() / layout.bytes; ++b) {
      const auto* block_planes = reinterpret_cast<const uint8_t*>(bytes.data() + b * layout.bytes + 2);
      for (int64_t e = 0; e < layout.group; ++e) EXPECT_NE(kernels::int3_code(block_planes, layout.group, e), 0);
    }
  }
}

class GroupApiTest : public ::testing::TestWithParam<DType> {};

// GPTQ quantizes a group's columns one at a time under params chosen before the columns
// change. Here the params come from one set of values and the codes from another, scaled
// by 1.5 so that some codes clamp. dequantize_code must equal, bit for bit, what
// dequantize_row reads back from pack_group's bytes.
TEST_P(GroupApiTest, FixedScaleCodesDecodeAsPacked) {
  const DType dtype = GetParam();
  const int64_t cols = 256;
  const int64_t group = quant_group_size(dtype, cols);
  ASSERT_EQ(cols % group, 0);
  const std::vector<float> chosen_from = gaussian(static_cast<size_t>(cols), 21);
  std::vector<float> values = gaussian(static_cast<size_t>(cols), 22);
  for (float& v : values) v *= 1.5f;
  const size_t row_bytes = dtype_bytes(dtype, cols);
  const size_t block_bytes = group == cols ? row_bytes : static_cast<size_t>(kernels::group_layout(dtype).bytes);
  std::vector<std::byte> row(row_bytes);
  std::vector<float> expected(static_cast<size_t>(cols));
  int clamped = 0;
  for (int64_t g = 0; g < cols; g += group) {
    const GroupParams params = choose_group_params(dtype, chosen_from.data() + g, group);
    std::vector<int> codes(static_cast<size_t>(group));
    for (int64_t i = 0; i < group; ++i) {
      const float x = values[static_cast<size_t>(g + i)];
      codes[static_cast<size_t>(i)] = quantize_code(dtype, params, x);
      expected[static_cast<size_t>(g + i)] = dequantize_code(dtype, params, codes[static_cast<size_t>(i)]);
      if (std::fabs(expected[static_cast<size_t>(g + i)] - x) > 0.5f * params.scale * 1.001f) ++clamped;
    }
    pack_group(dtype, params, codes.data(), group, row.data() + (g / group) * block_bytes);
  }
  EXPECT_GT(clamped, 0) << "the 1.5x values should leave some codes clamped";
  std::vector<float> decoded(static_cast<size_t>(cols));
  kernels::dequantize_row(dtype, row.data(), decoded.data(), cols);
  for (int64_t i = 0; i < cols; ++i) {
    EXPECT_EQ(decoded[static_cast<size_t>(i)], expected[static_cast<size_t>(i)]) << dtype_name(dtype) << " " << i;
  }
}

// With params chosen from the same values, the group API writes what quantize_row writes.
TEST_P(GroupApiTest, ChosenParamsReproduceRtn) {
  const DType dtype = GetParam();
  const int64_t cols = 384;
  const int64_t group = quant_group_size(dtype, cols);
  const std::vector<float> w = gaussian(static_cast<size_t>(cols), 31);
  const std::vector<std::byte> rtn = quantize_tensor_stepdown("w", dtype, w, 1, cols);
  const size_t block_bytes =
      group == cols ? rtn.size() : static_cast<size_t>(kernels::group_layout(dtype).bytes);
  std::vector<std::byte> packed(rtn.size());
  for (int64_t g = 0; g < cols; g += group) {
    const GroupParams params = choose_group_params(dtype, w.data() + g, group);
    std::vector<int> codes(static_cast<size_t>(group));
    for (int64_t i = 0; i < group; ++i) codes[static_cast<size_t>(i)] = quantize_code(dtype, params, w[static_cast<size_t>(g + i)]);
    pack_group(dtype, params, codes.data(), group, packed.data() + (g / group) * block_bytes);
  }
  EXPECT_EQ(packed, rtn) << dtype_name(dtype);
}

TEST_P(GroupApiTest, PackRejectsOutOfRangeCode) {
  const DType dtype = GetParam();
  const int64_t group = quant_group_size(dtype, 128);
  std::vector<int> codes(static_cast<size_t>(group), 0);
  const kernels::GroupLayout layout = kernels::group_layout(dtype);
  codes[5] = layout.has_min ? -1 : (layout.bits == 3 ? 4 : (layout.bits == 4 ? 8 : 128));
  std::vector<std::byte> out(dtype_bytes(dtype, group));
  EXPECT_THROW(pack_group(dtype, GroupParams{0.5f, 0.0f}, codes.data(), group, out.data()), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(IntFormats, GroupApiTest, ::testing::ValuesIn(kIntFormats),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

TEST(GroupApi, PackRejectsScaleThatIsNotF16) {
  std::vector<int> codes(64, 1);
  std::vector<std::byte> out(26);
  EXPECT_THROW(pack_group(DType::INT3_G64, GroupParams{0.1f, 0.0f}, codes.data(), 64, out.data()), InvalidArgument);
  EXPECT_THROW(quant_group_size(DType::FP8_E4M3, 64), InvalidArgument);
  EXPECT_EQ(quant_group_size(DType::INT8, 173), 173);
  EXPECT_EQ(quant_group_size(DType::INT3_G128, 256), 128);
}

TEST(StepdownDType, RowHeaderCountsInRowBytes) {
  EXPECT_EQ(dtype_bytes(DType::INT8, 100), 104u);
  EXPECT_EQ(dtype_bytes(DType::FP8_E4M3, 7), 11u);
  EXPECT_EQ(dtype_bytes(DType::INT4_G32_ASYM, 64), 40u);
  EXPECT_EQ(dtype_bytes(DType::Q8_0, 64), 68u);
  EXPECT_FALSE(dtype_from_ggml_id(static_cast<uint32_t>(DType::INT8)).has_value());
  EXPECT_EQ(dtype_from_name("int4_g128_asym"), DType::INT4_G128_ASYM);
  EXPECT_EQ(dtype_bytes(DType::INT3_G64, 128), 52u);
  EXPECT_EQ(dtype_bytes(DType::INT3_G128_ASYM, 128), 52u);
  EXPECT_EQ(dtype_bits_per_weight(DType::INT3_G128), 3.125);
  EXPECT_EQ(stepdown_format_name(DType::INT3_G128_ASYM), "int3-g128-asym");
  EXPECT_EQ(dtype_from_stepdown_format_name("int8-w8a8"), DType::INT8_W8A8);
  EXPECT_FALSE(dtype_from_stepdown_format_name("q4_0").has_value());
}

TEST(StepdownSchemes, RegisteredGroupFormatsQuantizeAlike) {
  for (const char* name : {"int8", "int8-g128", "int4-g32", "int4-g64", "int4-g128", "int4-g32-asym",
                           "int4-g128-asym", "fp8", "int3-g64", "int3-g128", "int3-g64-asym", "int3-g128-asym"}) {
    EXPECT_NE(find_scheme(name), nullptr) << name;
    EXPECT_NE(find_quant_format(name), nullptr) << name;
  }
  ASSERT_NE(find_scheme("w8a8"), nullptr);
  EXPECT_EQ(find_quant_format(find_scheme("w8a8")->weight_format)->dtype, DType::INT8_W8A8);
  // Formats without a row header go through the registry's quantize_tensor unchanged.
  ThreadPool pool(2);
  const std::vector<float> w = gaussian(5 * 256, 11);
  for (DType dtype : {DType::INT8_G128, DType::INT4_G32, DType::INT4_G128_ASYM, DType::INT3_G64, DType::INT3_G128_ASYM}) {
    const QuantFormat* format = find_quant_format(dtype);
    ASSERT_NE(format, nullptr) << dtype_name(dtype);
    EXPECT_EQ(quantize_tensor("w", *format, w, 5, 256, pool), quantize_tensor_stepdown("w", dtype, w, 5, 256))
        << dtype_name(dtype);
  }
}

}  // namespace
}  // namespace stepdown::quant
