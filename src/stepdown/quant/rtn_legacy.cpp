// Round-to-nearest quantizers for F16, BF16 and ggml's 32-element block formats, written
// to give the same bytes as gguf-py's gguf.quants (gguf 0.19.0, quants.py) on the same f32
// input. Every step is computed in float in the same order as there: the scale is a
// float quotient, its reciprocal is 1/d (0 when d == 0), codes are trunc(x * id + bias)
// or round-half-away-from-zero for Q8_0, and the scale is rounded to f16 only when
// stored. The project compiles with -std=c++20 (no GNU extensions), so GCC does not
// contract a * b + c into an FMA that would change the rounding.
//
// When d is so small that 1/d overflows to infinity, x * id is infinite or NaN. numpy then
// casts to integer code 0 on x86, and so do we; d is zero in f16 anyway, so such a block
// dequantizes to exact zeros.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "stepdown/core/half.h"
#include "stepdown/quant/builtin_formats.h"

namespace stepdown::quant {
namespace {

constexpr int kBlock = 32;

void store_f16(std::byte* dst, float value) {
  const uint16_t h = f32_to_f16(value);
  std::memcpy(dst, &h, sizeof h);
}

float reciprocal_or_zero(float d) { return d == 0.0f ? 0.0f : 1.0f / d; }

// trunc(v) clamped to [0, max_code], with non-finite v giving 0 as numpy's cast does.
uint8_t truncated_code(float v, int max_code) {
  if (!std::isfinite(v)) return 0;
  const float t = std::trunc(v);
  if (t <= 0.0f) return 0;
  if (t >= static_cast<float>(max_code)) return static_cast<uint8_t>(max_code);
  return static_cast<uint8_t>(t);
}

// The element of largest magnitude, keeping its sign; the first one wins a tie, as
// numpy's argmax does.
float signed_absmax(const float* x) {
  float best = x[0];
  for (int i = 1; i < kBlock; ++i) {
    if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
  }
  return best;
}

// Packs 32 codes of up to 5 bits: low nibbles of elements j and j + 16 share qs[j], and
// bit 4 of element i is bit i of qh (when qh is not null).
void pack_nibbles(const uint8_t* q, std::byte* qs, std::byte* qh) {
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<std::byte>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
  }
  if (qh == nullptr) return;
  uint32_t high = 0;
  for (int i = 0; i < kBlock; ++i) high |= static_cast<uint32_t>((q[i] >> 4) & 1) << i;
  std::memcpy(qh, &high, sizeof high);
}

// Q4_0 and Q5_0: d = absmax-signed / -(2^(bits-1)), codes trunc(x / d + 2^(bits-1) + 0.5).
void quantize_symmetric_block(const float* x, std::byte* dst, int bits) {
  const float half_range = static_cast<float>(1 << (bits - 1));
  const float d = signed_absmax(x) / -half_range;
  const float id = reciprocal_or_zero(d);
  const float bias = half_range + 0.5f;
  uint8_t q[kBlock];
  for (int i = 0; i < kBlock; ++i) q[i] = truncated_code(x[i] * id + bias, (1 << bits) - 1);
  store_f16(dst, d);
  if (bits == 4) {
    pack_nibbles(q, dst + 2, nullptr);
  } else {
    pack_nibbles(q, dst + 6, dst + 2);
  }
}

// Q4_1 and Q5_1: d = (max - min) / (2^bits - 1), m = min, codes trunc((x - min) / d + 0.5).
void quantize_affine_block(const float* x, std::byte* dst, int bits) {
  const int max_code = (1 << bits) - 1;
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kBlock; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float d = (hi - lo) / static_cast<float>(max_code);
  const float id = reciprocal_or_zero(d);
  uint8_t q[kBlock];
  for (int i = 0; i < kBlock; ++i) q[i] = truncated_code((x[i] - lo) * id + 0.5f, max_code);
  store_f16(dst, d);
  store_f16(dst + 2, lo);
  if (bits == 4) {
    pack_nibbles(q, dst + 4, nullptr);
  } else {
    pack_nibbles(q, dst + 8, dst + 4);
  }
}

}  // namespace

void quantize_row_f32(const float* src, std::byte* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16(const float* src, std::byte* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_f16(dst + 2 * i, src[i]);
}

void quantize_row_bf16(const float* src, std::byte* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = f32_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &b, sizeof b);
  }
}

// Q8_0: d = absmax / 127, codes round-half-away(x / d).
void quantize_row_q8_0(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    std::byte* out = dst + b * 34;
    float amax = 0.0f;
    for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = reciprocal_or_zero(d);
    store_f16(out, d);
    for (int i = 0; i < kBlock; ++i) {
      const float v = std::round(x[i] * id);
      const int code = std::isfinite(v) ? static_cast<int>(v) : 0;
      out[2 + i] = static_cast<std::byte>(static_cast<int8_t>(code));
    }
  }
}

void quantize_row_q4_0(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) quantize_symmetric_block(src + b * kBlock, dst + b * 18, 4);
}

void quantize_row_q5_0(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) quantize_symmetric_block(src + b * kBlock, dst + b * 22, 5);
}

void quantize_row_q4_1(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) quantize_affine_block(src + b * kBlock, dst + b * 20, 4);
}

void quantize_row_q5_1(const float* src, std::byte* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) quantize_affine_block(src + b * kBlock, dst + b * 24, 5);
}

std::vector<QuantFormat> builtin_quant_formats() {
  const auto entry = [](const char* name, DType dtype, QuantizeRowFn fn) {
    const DTypeInfo& info = dtype_info(dtype);
    return QuantFormat{name, dtype, info.block_elems, info.block_bytes, std::move(fn), {}};
  };
  return {
      entry("f32", DType::F32, quantize_row_f32),    entry("f16", DType::F16, quantize_row_f16),
      entry("bf16", DType::BF16, quantize_row_bf16), entry("q8_0", DType::Q8_0, quantize_row_q8_0),
      entry("q4_0", DType::Q4_0, quantize_row_q4_0), entry("q4_1", DType::Q4_1, quantize_row_q4_1),
      entry("q5_0", DType::Q5_0, quantize_row_q5_0), entry("q5_1", DType::Q5_1, quantize_row_q5_1),
      entry("q4_k", DType::Q4_K, quantize_row_q4_k), entry("q5_k", DType::Q5_K, quantize_row_q5_k),
      entry("q6_k", DType::Q6_K, quantize_row_q6_k),
  };
}

}  // namespace stepdown::quant
