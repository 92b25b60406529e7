// Dot products of ggml block-format weight rows (Q8_0 ... Q6_K) with f32 tokens. Each
// vector of codes is unpacked from the block bytes in registers (widen u8 -> u32, shift,
// mask), converted to f32 and scaled exactly as dequantize_row scales it, then multiplied
// into one accumulator per token. Highway compiles this file once per x86 target and picks
// one at run time. The layouts are described in block_codec.h.
//
// NOTE: activations stay f32, so each weight costs an unpack, a convert, a multiply (and an
// add for affine formats) and one FMA per token. ActivationPrecision::kInt8 sends Q8_0,
// Q4_0, Q4_1, Q5_0 and Q5_1 to integer kernels instead (int8_activations.h). A Q4_0
// matvec there takes about 2.3 times less CPU time. The K-quants have no such kernel yet.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "stepdown/kernels/dot_blocks.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "stepdown/kernels/block_codec.h"
#include "stepdown/kernels/row_dot.h"

HWY_BEFORE_NAMESPACE();
namespace stepdown::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 lanes, so a vector of codes never straddles two sub-blocks (16 or 32 codes)
// or the two nibble halves of a 16-byte group.
using DF = hn::CappedTag<float, 16>;
using DI = hn::Rebind<int32_t, DF>;
using DU = hn::Rebind<uint32_t, DF>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;

// Lanes(DF) bytes at p, each widened to a u32 lane.
HWY_INLINE VU LoadBytes(const uint8_t* p) { return hn::PromoteTo(DU(), hn::LoadU(hn::Rebind<uint8_t, DF>(), p)); }

// Codes in u32 lanes as f32 (exact: they are below 2^8).
HWY_INLINE VF ToFloat(VU codes) { return hn::ConvertTo(DF(), hn::BitCast(DI(), codes)); }

// scale * codes + offset as one FMA. This equals dequantize_row's two roundings bit for
// bit wherever scale * code is exact in f32. That holds for the Q4 and Q5 formats: an
// f16 scale has 11 significant bits, a K-quant scale d * sc at most 17, and codes at most
// 5 bits, so the product needs at most 22 of f32's 24 bits. The FMA then rounds once, at
// the add, where dequantize_row rounds too (targets without FMA multiply exactly, then
// add). Q6_K makes its own case where it calls this.
HWY_INLINE VF ScaleOffset(VF codes, float scale, float offset) {
  return hn::MulAdd(hn::Set(DF(), scale), codes, hn::Set(DF(), offset));
}

// One f32 accumulator per token, x (kTokens, stride). With one token, two accumulators
// take turns (by swapping, not by a run-time index, so both stay in registers) and
// consecutive FMAs do not wait on each other.
template <int kTokens>
struct Accumulators {
  static constexpr int kSplit = kTokens == 1 ? 2 : 1;
  VF acc[kTokens * kSplit];
  const float* x;
  int64_t stride;

  Accumulators(const float* x_tokens, int64_t x_stride) : x(x_tokens), stride(x_stride) {
    for (VF& a : acc) a = hn::Zero(DF());
  }

  // Adds w * x[t][i .. i + lanes) for every token t.
  HWY_INLINE void Add(VF w, int64_t i) {
    for (int t = 0; t < kTokens; ++t) acc[t] = hn::MulAdd(w, hn::LoadU(DF(), x + t * stride + i), acc[t]);
    if constexpr (kSplit == 2) {
      const VF next = acc[1];
      acc[1] = acc[0];
      acc[0] = next;
    }
  }

  void Store(float* out, int64_t out_stride) {
    for (int t = 0; t < kTokens; ++t) {
      VF sum = acc[t];
      if constexpr (kSplit == 2) sum = hn::Add(sum, acc[1]);
      out[t * out_stride] = hn::GetLane(hn::SumOfLanes(DF(), sum));
    }
  }
};

using codec_detail::load_u32;

// The f16 at p as f32, through the vector converter (one F16C instruction on AVX2 and
// AVX-512) instead of the branchy scalar decoder, which cost as much as the block itself.
HWY_INLINE float load_f16(const uint8_t* p) {
  const hn::CappedTag<float, 1> d1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(hn::Rebind<hwy::float16_t, decltype(d1)>(),
                                                 reinterpret_cast<const hwy::float16_t*>(p))));
}

// Bit 4 of each element from a 32-bit qh word: bit i belongs to element i.
HWY_INLINE VU HighBit(uint32_t qh, int first_element) {
  const DU du;
  const VU bits = hn::Set(du, qh) >> hn::Iota(du, static_cast<uint32_t>(first_element));
  return hn::ShiftLeft<4>(hn::And(bits, hn::Set(du, 1)));
}

struct Q8_0Row {
  static constexpr int kElems = 32, kBytes = 34;
  template <class Acc>
  static HWY_INLINE void Block(const uint8_t* b, int64_t base, Acc& acc) {
    const float d = load_f16(b);
    const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
    const int lanes = static_cast<int>(hn::Lanes(DF()));
    for (int j = 0; j < 32; j += lanes) {
      const VF codes = hn::ConvertTo(DF(), hn::PromoteTo(DI(), hn::LoadU(hn::Rebind<int8_t, DF>(), qs + j)));
      acc.Add(hn::Mul(hn::Set(DF(), d), codes), base + j);
    }
  }
};

// Q4_0, Q4_1, Q5_0 and Q5_1: 16 bytes of nibbles (low: elements 0..15, high: 16..31),
// optional fifth bits in a u32, optional f16 offset.
template <int kBytesTotal, bool kHasOffset, bool kHasHighBits>
struct Legacy32Row {
  static constexpr int kElems = 32, kBytes = kBytesTotal;
  static constexpr int kQsOffset = 2 + (kHasOffset ? 2 : 0) + (kHasHighBits ? 4 : 0);
  static constexpr int kQhOffset = kHasOffset ? 4 : 2;
  // Q4_0 centres its codes at 8 and Q5_0 at 16. Affine formats keep them unsigned.
  static constexpr float kSymmetricBias = kHasHighBits ? 16.0f : 8.0f;

  template <class Acc>
  static HWY_INLINE void Block(const uint8_t* b, int64_t base, Acc& acc) {
    const float d = load_f16(b);
    // d * (code - bias) = d * code + (-bias * d), both sides exact (see ScaleOffset).
    const float offset = kHasOffset ? load_f16(b + 2) : -kSymmetricBias * d;
    const uint32_t qh = kHasHighBits ? load_u32(b + kQhOffset) : 0;
    const uint8_t* qs = b + kQsOffset;
    const DU du;
    const int lanes = static_cast<int>(hn::Lanes(DF()));
    for (int j = 0; j < 16; j += lanes) {
      const VU bytes = LoadBytes(qs + j);
      VU low = hn::And(bytes, hn::Set(du, 0x0f));
      VU high = hn::ShiftRight<4>(bytes);
      if constexpr (kHasHighBits) {
        low = hn::Or(low, HighBit(qh, j));
        high = hn::Or(high, HighBit(qh, j + 16));
      }
      acc.Add(ScaleOffset(ToFloat(low), d, offset), base + j);
      acc.Add(ScaleOffset(ToFloat(high), d, offset), base + j + 16);
    }
  }
};

using Q4_0Row = Legacy32Row<18, false, false>;
using Q4_1Row = Legacy32Row<20, true, false>;
using Q5_0Row = Legacy32Row<22, false, true>;
using Q5_1Row = Legacy32Row<24, true, true>;

// Q4_K and Q5_K: group c of 32 bytes holds sub-block 2c in its low nibbles and 2c + 1 in
// its high nibbles. In Q5_K, bit s of qh[l] is bit 4 of element l of sub-block s.
template <bool kHasHighBits>
struct KQuant45Row {
  static constexpr int kElems = 256, kBytes = kHasHighBits ? 176 : 144;

  template <class Acc>
  static HWY_INLINE void Block(const uint8_t* b, int64_t base, Acc& acc) {
    const float d = load_f16(b);
    const float dmin = load_f16(b + 2);
    float scale[8], offset[8];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      codec_detail::k_scale_min(b + 4, j, &sc, &m);
      scale[j] = d * static_cast<float>(sc);
      offset[j] = -(dmin * static_cast<float>(m));
    }
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (kHasHighBits ? 48 : 16);
    const DU du;
    const int lanes = static_cast<int>(hn::Lanes(DF()));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; l += lanes) {
        const VU bytes = LoadBytes(qs + 32 * c + l);
        VU low = hn::And(bytes, hn::Set(du, 0x0f));
        VU high = hn::ShiftRight<4>(bytes);
        if constexpr (kHasHighBits) {
          const VU bits = LoadBytes(qh + l);
          low = hn::Or(low, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(bits, 2 * c), hn::Set(du, 1))));
          high = hn::Or(high, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(bits, 2 * c + 1), hn::Set(du, 1))));
        }
        acc.Add(ScaleOffset(ToFloat(low), scale[2 * c], offset[2 * c]), base + 64 * c + l);
        acc.Add(ScaleOffset(ToFloat(high), scale[2 * c + 1], offset[2 * c + 1]), base + 64 * c + 32 + l);
      }
    }
  }
};

using Q4_KRow = KQuant45Row<false>;
using Q5_KRow = KQuant45Row<true>;

// Q6_K: each half h of 128 elements is four runs of 32; run k takes its low 4 bits from
// the low (k = 0, 1) or high (k = 2, 3) nibbles of ql[64h + 32(k % 2) + l] and its top 2
// bits from bits 2k, 2k + 1 of qh[32h + l]. Sub-blocks are 16 elements.
struct Q6_KRow {
  static constexpr int kElems = 256, kBytes = 210;

  template <class Acc>
  static HWY_INLINE void Block(const uint8_t* b, int64_t base, Acc& acc) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = load_f16(b + 208);
    const DU du;
    const int lanes = static_cast<int>(hn::Lanes(DF()));
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; l += lanes) {
        const VU high_bits = LoadBytes(qh + 32 * h + l);
        const VU low_bytes_a = LoadBytes(ql + 64 * h + l);
        const VU low_bytes_b = LoadBytes(ql + 64 * h + 32 + l);
        for (int k = 0; k < 4; ++k) {
          const VU low_bytes = k % 2 == 0 ? low_bytes_a : low_bytes_b;
          // Bytes were widened to u32, so shifting out the low nibble leaves just the high one.
          const VU low = k < 2 ? hn::And(low_bytes, hn::Set(du, 0x0f)) : hn::ShiftRight<4>(low_bytes);
          const VU high = hn::And(hn::ShiftRightSame(high_bits, 2 * k), hn::Set(du, 3));
          const int element = 128 * h + 32 * k + l;
          const float scale = d * static_cast<float>(sc[element / 16]);
          const VU codes = hn::Or(low, hn::ShiftLeft<4>(high));
#if HWY_NATIVE_FMA
          // dequantize_row rounds scale * (code - 32) once. A fused scale * code +
          // (-32 * scale) rounds that same exact value once, so it gives the same f32.
          acc.Add(ScaleOffset(ToFloat(codes), scale, -32.0f * scale), base + element);
#else
          // Without FMA, scale * code (up to 25 bits) would round on its own; subtract first.
          const VF centred = hn::ConvertTo(DF(), hn::Sub(hn::BitCast(DI(), codes), hn::Set(DI(), 32)));
          acc.Add(hn::Mul(hn::Set(DF(), scale), centred), base + element);
#endif
        }
      }
    }
  }
};

template <class Format, int kTokens>
void DotFormatRows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, float* y,
                   int64_t y_stride) {
  const int64_t n_blocks = w.cols / Format::kElems;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const auto* row = reinterpret_cast<const uint8_t*>(w.data + static_cast<size_t>(r) * w.row_stride);
    Accumulators<kTokens> acc(x, w.cols);
    for (int64_t b = 0; b < n_blocks; ++b) {
      Format::Block(row + b * Format::kBytes, b * Format::kElems, acc);
    }
    acc.Store(y + r, y_stride);
  }
}

template <class Format>
void DotFormatRowsTokens(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                         int64_t n_tokens, float* y, int64_t y_stride) {
  switch (n_tokens) {
    case 1: return DotFormatRows<Format, 1>(w, row_begin, row_end, x, y, y_stride);
    case 2: return DotFormatRows<Format, 2>(w, row_begin, row_end, x, y, y_stride);
    case 3: return DotFormatRows<Format, 3>(w, row_begin, row_end, x, y, y_stride);
    case 4: return DotFormatRows<Format, 4>(w, row_begin, row_end, x, y, y_stride);
    case 5: return DotFormatRows<Format, 5>(w, row_begin, row_end, x, y, y_stride);
    case 6: return DotFormatRows<Format, 6>(w, row_begin, row_end, x, y, y_stride);
    case 7: return DotFormatRows<Format, 7>(w, row_begin, row_end, x, y, y_stride);
    default: return DotFormatRows<Format, 8>(w, row_begin, row_end, x, y, y_stride);
  }
}

void DotRowsBlocks(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                   float* y, int64_t y_stride) {
  switch (w.dtype) {
    case DType::Q8_0: return DotFormatRowsTokens<Q8_0Row>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q4_0: return DotFormatRowsTokens<Q4_0Row>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q4_1: return DotFormatRowsTokens<Q4_1Row>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q5_0: return DotFormatRowsTokens<Q5_0Row>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q5_1: return DotFormatRowsTokens<Q5_1Row>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q4_K: return DotFormatRowsTokens<Q4_KRow>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q5_K: return DotFormatRowsTokens<Q5_KRow>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::Q6_K: return DotFormatRowsTokens<Q6_KRow>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    default: return;  // dot_rows sends only block formats here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace stepdown::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace stepdown::kernels {

HWY_EXPORT(DotRowsBlocks);

void dot_rows_blocks(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                     float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(DotRowsBlocks)(w, row_begin, row_end, x, n_tokens, y, y_stride);
}

}  // namespace stepdown::kernels
#endif  // HWY_ONCE
