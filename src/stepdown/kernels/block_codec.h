#pragma once
// Decoding of ggml's block formats into small integers and per-sub-block scales.
//
// Every format decodes to the same shape: integer codes q (int8, one per element), and for
// each sub-block of kSubElems elements a float scale and, for affine formats, a float
// offset. The value of element i is
//     w[i] = scale[s] * q[i]              (kHasOffset == false)
//     w[i] = scale[s] * q[i] + offset[s]  (kHasOffset == true),   s = i / kSubElems
// evaluated in float with one rounding per operation, which is exactly how ggml's
// dequantize_row_* and gguf-py compute it. Scales and offsets are formed as ggml forms
// them (d * sc, -(dmin * m)), so both the exact dequantizer and the fused dot products
// reproduce ggml's weights bit for bit.
//
// Layouts (all little-endian, f16 = IEEE binary16):
//   Q8_0 (32 elems, 34 B):  f16 d; int8 qs[32].                      w = d * qs[i]
//   Q4_0 (32, 18 B):        f16 d; u8 qs[16]. Low nibble of qs[j] is element j, high
//                           nibble element j + 16.                   w = d * (nib - 8)
//   Q4_1 (32, 20 B):        f16 d, m; u8 qs[16] as Q4_0.             w = d * nib + m
//   Q5_0 (32, 22 B):        f16 d; u32 qh; u8 qs[16]. Bit i of qh is bit 4 of element i.
//                                                                    w = d * (q5 - 16)
//   Q5_1 (32, 24 B):        f16 d, m; u32 qh; u8 qs[16].             w = d * q5 + m
//   Q4_K (256, 144 B):      f16 d, dmin; u8 scales[12]; u8 qs[128]. Eight sub-blocks of
//                           32 with 6-bit scale sc and min m packed in scales[12]; bytes
//                           qs[32c .. 32c+32) hold sub-block 2c (low nibbles) and 2c+1
//                           (high nibbles).                          w = (d*sc) * nib - (dmin*m)
//   Q5_K (256, 176 B):      f16 d, dmin; scales[12]; u8 qh[32]; u8 qs[128]. As Q4_K, and
//                           bit s of qh[l] is bit 4 of element l of sub-block s.
//   Q6_K (256, 210 B):      u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d. Sixteen
//                           sub-blocks of 16; each half of 128 elements uses 64 bytes of
//                           ql and 32 of qh (see decode below).      w = (d*sc) * (q6 - 32)
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "stepdown/core/dtype.h"
#include "stepdown/core/half.h"

namespace stepdown::kernels {

namespace codec_detail {

inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return f16_to_f32(h);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Splits 16 bytes of packed nibbles into 32 codes: low nibbles first, then high ones.
inline void split_nibbles_16(const uint8_t* qs, int8_t* q, int bias) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((qs[j] & 0x0f) - bias);
    q[j + 16] = static_cast<int8_t>((qs[j] >> 4) - bias);
  }
}

// Adds bit 4 from qh: bit i of qh belongs to element i.
inline void add_high_bits_32(uint32_t qh, int8_t* q, int bias) {
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<int8_t>(q[j] + static_cast<int>(((qh >> j) & 1u) << 4) - bias);
  }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. Sub-blocks 0..3
// keep theirs in the low 6 bits of bytes j and j + 4; sub-blocks 4..7 split theirs into
// a nibble in byte j + 4 and two high bits taken from the top of bytes j - 4 and j.
inline void k_scale_min(const uint8_t* scales, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Scales and offsets of the eight sub-blocks of a Q4_K/Q5_K block.
inline void k_scales_offsets(const uint8_t* b, float* scale, float* offset) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k_scale_min(b + 4, j, &sc, &m);
    scale[j] = d * static_cast<float>(sc);
    offset[j] = -(dmin * static_cast<float>(m));
  }
}

}  // namespace codec_detail

template <DType kType>
struct BlockCodec;

template <>
struct BlockCodec<DType::Q8_0> {
  static constexpr int kElems = 32, kBytes = 34, kSubElems = 32;
  static constexpr bool kHasOffset = false;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* /*offset*/) {
    scale[0] = codec_detail::load_f16(b);
    std::memcpy(q, b + 2, 32);
  }
};

template <>
struct BlockCodec<DType::Q4_0> {
  static constexpr int kElems = 32, kBytes = 18, kSubElems = 32;
  static constexpr bool kHasOffset = false;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* /*offset*/) {
    scale[0] = codec_detail::load_f16(b);
    codec_detail::split_nibbles_16(b + 2, q, 8);
  }
};

template <>
struct BlockCodec<DType::Q4_1> {
  static constexpr int kElems = 32, kBytes = 20, kSubElems = 32;
  static constexpr bool kHasOffset = true;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* offset) {
    scale[0] = codec_detail::load_f16(b);
    offset[0] = codec_detail::load_f16(b + 2);
    codec_detail::split_nibbles_16(b + 4, q, 0);
  }
};

template <>
struct BlockCodec<DType::Q5_0> {
  static constexpr int kElems = 32, kBytes = 22, kSubElems = 32;
  static constexpr bool kHasOffset = false;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* /*offset*/) {
    scale[0] = codec_detail::load_f16(b);
    codec_detail::split_nibbles_16(b + 6, q, 0);
    codec_detail::add_high_bits_32(codec_detail::load_u32(b + 2), q, 16);
  }
};

template <>
struct BlockCodec<DType::Q5_1> {
  static constexpr int kElems = 32, kBytes = 24, kSubElems = 32;
  static constexpr bool kHasOffset = true;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* offset) {
    scale[0] = codec_detail::load_f16(b);
    offset[0] = codec_detail::load_f16(b + 2);
    codec_detail::split_nibbles_16(b + 8, q, 0);
    codec_detail::add_high_bits_32(codec_detail::load_u32(b + 4), q, 0);
  }
};

template <>
struct BlockCodec<DType::Q4_K> {
  static constexpr int kElems = 256, kBytes = 144, kSubElems = 32;
  static constexpr bool kHasOffset = true;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* offset) {
    codec_detail::k_scales_offsets(b, scale, offset);
    const uint8_t* qs = b + 16;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<int8_t>(qs[32 * c + l] & 0x0f);
        q[64 * c + 32 + l] = static_cast<int8_t>(qs[32 * c + l] >> 4);
      }
    }
  }
};

template <>
struct BlockCodec<DType::Q5_K> {
  static constexpr int kElems = 256, kBytes = 176, kSubElems = 32;
  static constexpr bool kHasOffset = true;
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* offset) {
    codec_detail::k_scales_offsets(b, scale, offset);
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + 48;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int high_lo = (qh[l] >> (2 * c)) & 1;
        const int high_hi = (qh[l] >> (2 * c + 1)) & 1;
        q[64 * c + l] = static_cast<int8_t>((qs[32 * c + l] & 0x0f) | (high_lo << 4));
        q[64 * c + 32 + l] = static_cast<int8_t>((qs[32 * c + l] >> 4) | (high_hi << 4));
      }
    }
  }
};

template <>
struct BlockCodec<DType::Q6_K> {
  static constexpr int kElems = 256, kBytes = 210, kSubElems = 16;
  static constexpr bool kHasOffset = false;
  // Each half h of 128 elements is four runs of 32: run k takes its low 4 bits from the
  // low (k = 0, 1) or high (k = 2, 3) nibbles of ql[64h + 32(k % 2) + l], and its top 2
  // bits from bits 2k, 2k+1 of qh[32h + l].
  static void decode(const uint8_t* b, int8_t* q, float* scale, float* /*offset*/) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = codec_detail::load_f16(b + 208);
    for (int s = 0; s < 16; ++s) scale[s] = d * static_cast<float>(sc[s]);
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        for (int l = 0; l < 32; ++l) {
          const int low = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
          const int high = (qh[32 * h + l] >> (2 * k)) & 3;
          q[128 * h + 32 * k + l] = static_cast<int8_t>((low | (high << 4)) - 32);
        }
      }
    }
  }
};

// Calls fn(BlockCodec<T>{}) for the block format `dtype`; returns false for other types.
template <class Fn>
bool visit_block_codec(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Q8_0: fn(BlockCodec<DType::Q8_0>{}); return true;
    case DType::Q4_0: fn(BlockCodec<DType::Q4_0>{}); return true;
    case DType::Q4_1: fn(BlockCodec<DType::Q4_1>{}); return true;
    case DType::Q5_0: fn(BlockCodec<DType::Q5_0>{}); return true;
    case DType::Q5_1: fn(BlockCodec<DType::Q5_1>{}); return true;
    case DType::Q4_K: fn(BlockCodec<DType::Q4_K>{}); return true;
    case DType::Q5_K: fn(BlockCodec<DType::Q5_K>{}); return true;
    case DType::Q6_K: fn(BlockCodec<DType::Q6_K>{}); return true;
    default: return false;
  }
}

}  // namespace stepdown::kernels
