// Round-to-nearest quantizers for ggml's K-quant super-blocks of 256 values (layouts in
// kernels/block_codec.h). This is stepdown's own scale search, not a port of ggml's:
//
//   1. Each sub-block gets the float scale (and, for Q4_K/Q5_K, min) that minimizes its
//      squared error, searched over 21 candidate grids around the range-spanning one,
//      each followed by a least-squares fit of scale and offset to the chosen codes.
//   2. The sub-block scales are quantized against one f16 super-block scale: 6 bits
//      unsigned for Q4_K/Q5_K (scale and min separately), int8 for Q6_K.
//   3. The codes are recomputed against the stored scales, evaluated in float exactly as
//      the dequantizer forms them (d * sc, dmin * m), so rounding step 2 does not leave
//      codes chosen for scales that no longer exist.
//
// tests/quant/kquant_rmse_test.cpp holds the resulting RMSE against llama.cpp's own
// quantizer on the same data. An all-zero or subnormal super-block stores d = 0 and
// dequantizes to exact zeros.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "stepdown/core/half.h"
#include "stepdown/quant/builtin_formats.h"

namespace stepdown::quant {
namespace {

constexpr int kSuper = 256;
constexpr int kSearchSteps = 10;  // candidate grids at nmax + 0.1 k, k in [-10, 10]

struct AffineFit {
  float scale = 0.0f;  // >= 0
  float min = 0.0f;    // >= 0; the value is scale * q - min
};

int round_clamped(float v, int lo, int hi) {
  if (!std::isfinite(v)) return 0;
  return std::clamp(static_cast<int>(std::lround(v)), lo, hi);
}

float squared_error_affine(const float* x, const int* q, int n, float scale, float offset) {
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float diff = scale * static_cast<float>(q[i]) + offset - x[i];
    err += diff * diff;
  }
  return err;
}

// Scale s >= 0 and offset b <= 0 of the codes q (0..nmax) that best fit x: value = s q + b.
// The offset is kept <= 0 because the file stores it as -(dmin * m) with m unsigned.
AffineFit fit_affine(const float* x, int n, int nmax) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (!(hi > lo)) return {0.0f, -lo};

  AffineFit best{(hi - lo) / static_cast<float>(nmax), -lo};
  int q[32];
  for (int i = 0; i < n; ++i) q[i] = round_clamped((x[i] - lo) / best.scale, 0, nmax);
  float best_err = squared_error_affine(x, q, n, best.scale, -best.min);

  for (int k = -kSearchSteps; k <= kSearchSteps; ++k) {
    const float iscale = (static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / (hi - lo);
    double sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; ++i) {
      q[i] = round_clamped((x[i] - lo) * iscale, 0, nmax);
      sq += q[i];
      sqq += static_cast<double>(q[i]) * q[i];
      sx += x[i];
      sqx += static_cast<double>(q[i]) * x[i];
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) continue;
    double s = (n * sqx - sq * sx) / det;
    double b = (sqq * sx - sq * sqx) / det;
    if (b > 0) {
      b = 0;
      s = sqx / sqq;
    }
    if (s <= 0) continue;
    const float err = squared_error_affine(x, q, n, static_cast<float>(s), static_cast<float>(b));
    if (err < best_err) {
      best_err = err;
      best = {static_cast<float>(s), static_cast<float>(-b)};
    }
  }
  return best;
}

// Signed scale s of codes q (-32..31) that best fits x: value = s q.
float fit_symmetric(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax == 0.0f) return 0.0f;
  float best_scale = max / -32.0f;
  float best_err = std::numeric_limits<float>::infinity();
  int q[16];
  // The largest value may map to -32 (the longer side of the code range) or to +31.
  for (int side = 0; side < 2; ++side) {
    const float end = side == 0 ? -32.0f : 31.0f;
    for (int k = -kSearchSteps; k <= kSearchSteps; ++k) {
      const float iscale = (end + (side == 0 ? -0.1f : 0.1f) * static_cast<float>(k)) / max;
      double sqq = 0, sqx = 0;
      for (int i = 0; i < n; ++i) {
        q[i] = round_clamped(x[i] * iscale, -32, 31);
        sqq += static_cast<double>(q[i]) * q[i];
        sqx += static_cast<double>(q[i]) * x[i];
      }
      if (sqq <= 0) continue;
      const float s = static_cast<float>(sqx / sqq);
      const float err = squared_error_affine(x, q, n, s, 0.0f);
      if (err < best_err) {
        best_err = err;
        best_scale = s;
      }
    }
  }
  return best_scale;
}

void store_f16(std::byte* dst, float value) {
  const uint16_t h = f32_to_f16(value);
  std::memcpy(dst, &h, sizeof h);
}

// An f16 super-block scale d with max_value / d close to levels, as stored (rounded).
float super_scale(float max_value, float levels) { return f16_to_f32(f32_to_f16(max_value / levels)); }

// Packs eight 6-bit scales and mins into 12 bytes (inverse of block_codec's k_scale_min).
void pack_scales_mins(const uint8_t* sc, const uint8_t* m, uint8_t* out) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
  }
}

// Q4_K (bits 4) and Q5_K (bits 5): eight sub-blocks of 32, value = (d sc) q - (dmin m).
void quantize_k_affine(const float* x, std::byte* dst, int bits) {
  const int nmax = (1 << bits) - 1;
  AffineFit fits[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    fits[j] = fit_affine(x + 32 * j, 32, nmax);
    max_scale = std::max(max_scale, fits[j].scale);
    max_min = std::max(max_min, fits[j].min);
  }
  const float d = super_scale(max_scale, 63.0f);
  const float dmin = super_scale(max_min, 63.0f);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0.0f ? static_cast<uint8_t>(round_clamped(fits[j].scale / d, 0, 63)) : 0;
    m[j] = dmin > 0.0f ? static_cast<uint8_t>(round_clamped(fits[j].min / dmin, 0, 63)) : 0;
  }

  uint8_t q[kSuper];
  for (int j = 0; j < 8; ++j) {
    const float scale = d * static_cast<float>(sc[j]);
    const float offset = dmin * static_cast<float>(m[j]);
    for (int i = 0; i < 32; ++i) {
      q[32 * j + i] = scale > 0.0f ? static_cast<uint8_t>(round_clamped((x[32 * j + i] + offset) / scale, 0, nmax)) : 0;
    }
  }

  std::memset(dst, 0, static_cast<size_t>(bits == 4 ? 144 : 176));
  store_f16(dst, d);
  store_f16(dst + 2, dmin);
  pack_scales_mins(sc, m, reinterpret_cast<uint8_t*>(dst + 4));
  auto* qh = reinterpret_cast<uint8_t*>(dst + 16);
  auto* qs = reinterpret_cast<uint8_t*>(dst + (bits == 4 ? 16 : 48));
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
      if (bits == 5) qh[l] |= static_cast<uint8_t>((((lo >> 4) & 1) << (2 * c)) | (((hi >> 4) & 1) << (2 * c + 1)));
    }
  }
}

// Q6_K: sixteen sub-blocks of 16, value = (d sc) (q - 32) with sc an int8.
void quantize_q6_k_block(const float* x, std::byte* dst) {
  float scales[16];
  float max_abs = 0.0f;
  for (int s = 0; s < 16; ++s) {
    scales[s] = fit_symmetric(x + 16 * s, 16);
    max_abs = std::max(max_abs, std::fabs(scales[s]));
  }
  const float d = super_scale(max_abs, 127.0f);
  int8_t sc[16];
  for (int s = 0; s < 16; ++s) sc[s] = d > 0.0f ? static_cast<int8_t>(round_clamped(scales[s] / d, -128, 127)) : 0;

  uint8_t q[kSuper];  // biased codes 0..63
  for (int s = 0; s < 16; ++s) {
    const float scale = d * static_cast<float>(sc[s]);
    for (int i = 0; i < 16; ++i) {
      const int code = scale != 0.0f ? round_clamped(x[16 * s + i] / scale, -32, 31) : 0;
      q[16 * s + i] = static_cast<uint8_t>(code + 32);
    }
  }

  std::memset(dst, 0, 210);
  auto* ql = reinterpret_cast<uint8_t*>(dst);
  auto* qh = reinterpret_cast<uint8_t*>(dst + 128);
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t code = q[128 * h + 32 * k + l];
        ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((code & 0x0f) << (4 * (k / 2)));
        qh[32 * h + l] |= static_cast<uint8_t>((code >> 4) << (2 * k));
      }
    }
  }
  std::memcpy(dst + 192, sc, 16);
  store_f16(dst + 208, d);
}

}  // namespace

void quantize_row_q4_k(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuper; ++b) quantize_k_affine(src + b * kSuper, dst + b * 144, 4);
}

void quantize_row_q5_k(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuper; ++b) quantize_k_affine(src + b * kSuper, dst + b * 176, 5);
}

void quantize_row_q6_k(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuper; ++b) quantize_q6_k_block(src + b * kSuper, dst + b * 210);
}

}  // namespace stepdown::quant
