#include <gtest/gtest.h>

#include "stepdown/core/dtype.h"
#include "stepdown/core/error.h"
#include "stepdown/core/half.h"

namespace stepdown {
namespace {

TEST(DType, GgmlIdsAndBlockSizes) {
  EXPECT_EQ(dtype_from_ggml_id(8), DType::Q8_0);
  EXPECT_EQ(dtype_from_ggml_id(30), DType::BF16);
  EXPECT_FALSE(dtype_from_ggml_id(16).has_value());
  EXPECT_EQ(dtype_bytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(dtype_bytes(DType::Q6_K, 256), 210u);
  EXPECT_DOUBLE_EQ(dtype_bits_per_weight(DType::Q8_0), 8.5);
  EXPECT_THROW(dtype_bytes(DType::Q4_0, 33), InvalidArgument);
}

TEST(Half, F16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    if (is_nan) continue;
    EXPECT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << "f16 bits " << h;
  }
}

TEST(Half, F16RoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between 1.0 and the next f16 (1 + 2^-10): ties go to even.
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds up to Inf
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);  // halfway to the smallest subnormal: ties to zero
  EXPECT_EQ(f32_to_f16(0x1.8p-25f), 0x0001);
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
}

}  // namespace
}  // namespace stepdown
