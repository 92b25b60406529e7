#pragma once
// Scalar FP8 E4M3 conversions as the OCP 8-bit floating point specification (v1.0) defines
// the format: 1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits; no infinities; the
// codes 0x7f and 0xff are NaN, so the largest finite magnitude is 0x7e = 448.
#include <cmath>
#include <cstdint>
#include <limits>

namespace stepdown {

inline constexpr float kFp8E4M3Max = 448.0f;

inline float fp8_e4m3_to_f32(uint8_t code) {
  const int exponent = (code >> 3) & 0x0f;
  const int mantissa = code & 0x07;
  float magnitude;
  if (exponent == 0x0f && mantissa == 0x07) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = static_cast<float>(mantissa) * 0x1p-9f;  // subnormal: mantissa * 2^-6 / 8
  } else {
    magnitude = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);  // (1 + m/8) 2^(e-7)
  }
  return (code & 0x80) != 0 ? -magnitude : magnitude;
}

// The E4M3 code nearest to `value`, ties to even. Callers clamp to +-448 first: a finite
// value beyond that saturates to +-448, and NaN maps to the NaN code 0x7f.
inline uint8_t f32_to_fp8_e4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  const float magnitude = std::fmin(std::fabs(value), kFp8E4M3Max);
  if (magnitude < 0x1p-6f) {
    // Subnormal range, step 2^-9. nearbyint rounds to even in the default rounding mode.
    // A result of 8 is the code of 2^-6, the smallest normal, so it needs no special case.
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(std::nearbyint(magnitude * 0x1p9f)));
  }
  int exponent;
  std::frexp(magnitude, &exponent);  // magnitude = f * 2^exponent, f in [0.5, 1)
  int unbiased = exponent - 1;       // magnitude in [2^unbiased, 2^(unbiased + 1))
  // Eight mantissa steps per binade: the scaled value lies in [8, 16) and is exact in f32.
  int steps = static_cast<int>(std::nearbyint(std::ldexp(magnitude, 3 - unbiased)));
  if (steps == 16) {
    steps = 8;
    ++unbiased;
  }
  return static_cast<uint8_t>(sign | ((unbiased + 7) << 3) | (steps - 8));
}

}  // namespace stepdown
