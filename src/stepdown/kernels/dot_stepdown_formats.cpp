// Fused dot products of stepdown's own weight formats (INT8, INT8_G128, INT4 and INT3
// groups, FP8) with f32 tokens. Codes are widened in registers, converted to f32 and scaled exactly as
// dequantize_row_stepdown scales them, then multiplied into one accumulator per token.
// Highway compiles this file once per x86 target and picks one at run time. The layouts
// are described in stepdown_formats.h; INT8_W8A8 has its own integer kernel (int8_int8.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "stepdown/kernels/dot_stepdown_formats.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <algorithm>
#include <cstring>

#include <hwy/highway.h>

#include "stepdown/core/fp8.h"
#include "stepdown/kernels/row_dot.h"
#include "stepdown/kernels/stepdown_formats.h"

HWY_BEFORE_NAMESPACE();
namespace stepdown::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 lanes, so a vector of codes never straddles the two nibble halves of the
// smallest (32-element) group.
using DF = hn::CappedTag<float, 16>;
using DI = hn::Rebind<int32_t, DF>;
using DU = hn::Rebind<uint32_t, DF>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;

// One f32 accumulator per token for x (kTokens, stride), plus a scalar tail sum per token
// for per-row formats whose length is not a whole number of vectors.
template <int kTokens>
struct TokenSums {
  VF acc[kTokens];
  float tail[kTokens] = {};
  const float* x;
  int64_t stride;

  TokenSums(const float* x_tokens, int64_t x_stride) : x(x_tokens), stride(x_stride) {
    for (VF& a : acc) a = hn::Zero(DF());
  }

  HWY_INLINE void Add(VF w, int64_t i) {
    for (int t = 0; t < kTokens; ++t) acc[t] = hn::MulAdd(w, hn::LoadU(DF(), x + t * stride + i), acc[t]);
  }

  void AddScalar(float w, int64_t i) {
    for (int t = 0; t < kTokens; ++t) tail[t] += w * x[t * stride + i];
  }

  void Store(float* out, int64_t out_stride) {
    for (int t = 0; t < kTokens; ++t) out[t * out_stride] = hn::GetLane(hn::SumOfLanes(DF(), acc[t])) + tail[t];
  }
};

HWY_INLINE float LoadF16(const uint8_t* p) {
  const hn::CappedTag<float, 1> d1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(hn::Rebind<hwy::float16_t, decltype(d1)>(),
                                                 reinterpret_cast<const hwy::float16_t*>(p))));
}

HWY_INLINE float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Lanes(DF) int8 codes at p as f32.
HWY_INLINE VF Int8Codes(const int8_t* p) {
  return hn::ConvertTo(DF(), hn::PromoteTo(DI(), hn::LoadU(hn::Rebind<int8_t, DF>(), p)));
}

// Lanes(DF) E4M3 codes at p as f32. A normal code's exponent and mantissa shifted into an
// f32's fields and rebased by 127 - 7 = 120 give its value; a code with exponent field 0 is
// mantissa * 2^-9. The NaN codes decode to 480 here, but no quantizer writes them.
HWY_INLINE VF Fp8Codes(const uint8_t* p) {
  const DU du;
  const DI di;
  const VU bytes = hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint8_t, DF>(), p));
  const VU magnitude = hn::And(bytes, hn::Set(du, 0x7f));
  const VU sign = hn::ShiftLeft<24>(hn::And(bytes, hn::Set(du, 0x80)));
  const VF normal = hn::BitCast(DF(), hn::Add(hn::ShiftLeft<20>(magnitude), hn::Set(du, 120u << 23)));
  const VF subnormal = hn::Mul(hn::ConvertTo(DF(), hn::BitCast(di, magnitude)), hn::Set(DF(), 0x1p-9f));
  const auto is_subnormal = hn::RebindMask(DF(), hn::BitCast(di, magnitude) < hn::Set(di, 8));
  const VF value = hn::IfThenElse(is_subnormal, subnormal, normal);
  return hn::BitCast(DF(), hn::Or(hn::BitCast(du, value), sign));
}

// Per-row formats: f32 scale in the row header, then one code per element.
template <bool kFp8>
struct PerRow {
  template <class Sums>
  static HWY_INLINE void Row(const uint8_t* row, int64_t cols, Sums& sums) {
    const float scale = LoadF32(row);
    const VF scale_v = hn::Set(DF(), scale);
    const uint8_t* codes = row + 4;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
    int64_t i = 0;
    for (; i + lanes <= cols; i += lanes) {
      const VF values = kFp8 ? Fp8Codes(codes + i) : Int8Codes(reinterpret_cast<const int8_t*>(codes + i));
      sums.Add(hn::Mul(scale_v, values), i);
    }
    for (; i < cols; ++i) {
      const float value = kFp8 ? fp8_e4m3_to_f32(codes[i]) : static_cast<float>(static_cast<int8_t>(codes[i]));
      sums.AddScalar(scale * value, i);
    }
  }
};

// INT8_G128: f16 d, then 128 int8 codes. d has 11 significant bits and codes 8, so
// d * q is exact and Mul gives dequantize_row's value.
struct Int8Groups {
  template <class Sums>
  static HWY_INLINE void Row(const uint8_t* row, int64_t cols, Sums& sums) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
    for (int64_t b = 0; b < cols / 128; ++b) {
      const uint8_t* block = row + b * 130;
      const VF d = hn::Set(DF(), LoadF16(block));
      const auto* q = reinterpret_cast<const int8_t*>(block + 2);
      for (int64_t j = 0; j < 128; j += lanes) sums.Add(hn::Mul(d, Int8Codes(q + j)), 128 * b + j);
    }
  }
};

// INT4 groups of kGroup: f16 d (and f16 m), then kGroup / 2 bytes of nibbles. d * nib is
// exact (11 + 4 bits), so one FMA d * nib + offset rounds once, at the add, as
// dequantize_row does. For symmetric groups the offset -8 d is exact too.
template <int kGroup, bool kAsym>
struct Int4Groups {
  static constexpr int kBytes = (kAsym ? 4 : 2) + kGroup / 2;

  template <class Sums>
  static HWY_INLINE void Row(const uint8_t* row, int64_t cols, Sums& sums) {
    const DU du;
    const DI di;
    const int lanes = static_cast<int>(hn::Lanes(DF()));
    for (int64_t b = 0; b < cols / kGroup; ++b) {
      const uint8_t* block = row + b * kBytes;
      const float d = LoadF16(block);
      const float offset = kAsym ? LoadF16(block + 2) : -8.0f * d;
      const VF d_v = hn::Set(DF(), d);
      const VF offset_v = hn::Set(DF(), offset);
      const uint8_t* qs = block + (kAsym ? 4 : 2);
      const int64_t base = b * kGroup;
      for (int j = 0; j < kGroup / 2; j += lanes) {
        const VU bytes = hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint8_t, DF>(), qs + j));
        const VF low = hn::ConvertTo(DF(), hn::BitCast(di, hn::And(bytes, hn::Set(du, 0x0f))));
        const VF high = hn::ConvertTo(DF(), hn::BitCast(di, hn::ShiftRight<4>(bytes)));
        sums.Add(hn::MulAdd(d_v, low, offset_v), base + j);
        sums.Add(hn::MulAdd(d_v, high, offset_v), base + j + kGroup / 2);
      }
    }
  }
};

// Lane i is 1 << i, for testing one bit of a broadcast word per lane.
alignas(64) constexpr uint32_t kLaneBits[16] = {1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,
                                                1u << 6,  1u << 7,  1u << 8,  1u << 9,  1u << 10, 1u << 11,
                                                1u << 12, 1u << 13, 1u << 14, 1u << 15};

// The high bits of group elements e .. e + lanes - 1 from the hi plane (kGroup / 8 bytes),
// as bits 0 .. lanes - 1 of the result.
template <int kGroup>
HWY_INLINE uint32_t Int3HighBits(const uint8_t* hi, int e, int lanes) {
  const int first = e / 8;
  const int last = std::min((e + lanes - 1) / 8, kGroup / 8 - 1);
  uint32_t bits = 0;
  for (int k = first; k <= last; ++k) bits |= static_cast<uint32_t>(hi[k]) << (8 * (k - first));
  return bits >> (e % 8);
}

// INT3 groups of kGroup: f16 d (and f16 m), the plane of high bits, then the plane of low
// bit pairs. A vector covers consecutive elements of one quarter of the group, so its low
// bits are one shift of consecutive lo bytes and its high bits one broadcast word tested
// per lane. d * c is exact (11 + 3 bits) and so is -4 d, so one FMA rounds once, at the add,
// as dequantize_row does.
template <int kGroup, bool kAsym>
struct Int3Groups {
  static constexpr int kBytes = (kAsym ? 4 : 2) + 3 * kGroup / 8;
  static constexpr int kQuarter = kGroup / 4;

  template <class Sums>
  static HWY_INLINE void Row(const uint8_t* row, int64_t cols, Sums& sums) {
    const DU du;
    const DI di;
    const int lanes = static_cast<int>(hn::Lanes(DF()));
    const VU lane_bits = hn::LoadU(du, kLaneBits);
    const VU low_mask = hn::Set(du, 3);
    const VU high_value = hn::Set(du, 4);
    for (int64_t b = 0; b < cols / kGroup; ++b) {
      const uint8_t* block = row + b * kBytes;
      const float d = LoadF16(block);
      const float offset = kAsym ? LoadF16(block + 2) : -4.0f * d;
      const VF d_v = hn::Set(DF(), d);
      const VF offset_v = hn::Set(DF(), offset);
      const uint8_t* hi = block + (kAsym ? 4 : 2);
      const uint8_t* lo = hi + kGroup / 8;
      const int64_t base = b * kGroup;
      for (int k = 0; k < 4; ++k) {
        for (int j = 0; j < kQuarter; j += lanes) {
          const int e = k * kQuarter + j;
          const VU lo_bytes = hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint8_t, DF>(), lo + j));
          const VU low = hn::And(hn::ShiftRightSame(lo_bytes, 2 * k), low_mask);
          const VU word = hn::Set(du, Int3HighBits<kGroup>(hi, e, lanes));
          const VU high = hn::IfThenElseZero(hn::TestBit(word, lane_bits), high_value);
          const VF code = hn::ConvertTo(DF(), hn::BitCast(di, hn::Or(low, high)));
          sums.Add(hn::MulAdd(d_v, code, offset_v), base + e);
        }
      }
    }
  }
};

template <class Format, int kTokens>
void DotRows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, float* y, int64_t y_stride) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const auto* row = reinterpret_cast<const uint8_t*>(w.data + static_cast<size_t>(r) * w.row_stride);
    TokenSums<kTokens> sums(x, w.cols);
    Format::Row(row, w.cols, sums);
    sums.Store(y + r, y_stride);
  }
}

template <class Format>
void DotRowsTokens(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                   float* y, int64_t y_stride) {
  switch (n_tokens) {
    case 1: return DotRows<Format, 1>(w, row_begin, row_end, x, y, y_stride);
    case 2: return DotRows<Format, 2>(w, row_begin, row_end, x, y, y_stride);
    case 3: return DotRows<Format, 3>(w, row_begin, row_end, x, y, y_stride);
    case 4: return DotRows<Format, 4>(w, row_begin, row_end, x, y, y_stride);
    case 5: return DotRows<Format, 5>(w, row_begin, row_end, x, y, y_stride);
    case 6: return DotRows<Format, 6>(w, row_begin, row_end, x, y, y_stride);
    case 7: return DotRows<Format, 7>(w, row_begin, row_end, x, y, y_stride);
    default: return DotRows<Format, 8>(w, row_begin, row_end, x, y, y_stride);
  }
}

void DotRowsStepdown(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                     float* y, int64_t y_stride) {
  switch (w.dtype) {
    // INT8_W8A8 stores INT8's layout; matvec and matmul send it to the integer kernel, and
    // this f32 path serves any other caller.
    case DType::INT8:
    case DType::INT8_W8A8: return DotRowsTokens<PerRow<false>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::FP8_E4M3: return DotRowsTokens<PerRow<true>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT8_G128: return DotRowsTokens<Int8Groups>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT4_G32:
      return DotRowsTokens<Int4Groups<32, false>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT4_G64:
      return DotRowsTokens<Int4Groups<64, false>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT4_G128:
      return DotRowsTokens<Int4Groups<128, false>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT4_G32_ASYM:
      return DotRowsTokens<Int4Groups<32, true>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT4_G64_ASYM:
      return DotRowsTokens<Int4Groups<64, true>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT4_G128_ASYM:
      return DotRowsTokens<Int4Groups<128, true>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT3_G64:
      return DotRowsTokens<Int3Groups<64, false>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT3_G128:
      return DotRowsTokens<Int3Groups<128, false>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT3_G64_ASYM:
      return DotRowsTokens<Int3Groups<64, true>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::INT3_G128_ASYM:
      return DotRowsTokens<Int3Groups<128, true>>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    default: return;  // dot_rows sends only these formats here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace stepdown::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace stepdown::kernels {

HWY_EXPORT(DotRowsStepdown);

void dot_rows_stepdown(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                       float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(DotRowsStepdown)(w, row_begin, row_end, x, n_tokens, y, y_stride);
}

}  // namespace stepdown::kernels
#endif  // HWY_ONCE
