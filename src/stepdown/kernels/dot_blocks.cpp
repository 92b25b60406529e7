// Dot products of ggml block-format weight rows (Q8_0 ... Q6_K) with f32 tokens. Each block
// is decoded into integer codes on the stack (BlockCodec), widened to f32 in registers and
// scaled exactly as dequantize_row scales it, then multiplied into one accumulator per
// token. Highway compiles this file once per x86 target and picks one at run time.
//
// NOTE: activations stay f32, so each weight costs a widen, a multiply (and an add for
// affine formats) and one FMA per token. llama.cpp instead quantizes x to int8 and uses
// integer dot products (VNNI), which is several times less work per weight at decode.
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

// At most 16 lanes, so a vector of codes never straddles two sub-blocks (16 or 32 codes).
using DF = hn::CappedTag<float, 16>;

// One row with kTokens tokens, x (kTokens, n). With one token, two accumulators alternate
// so consecutive FMAs do not wait on each other.
template <class Codec, int kTokens>
void DotBlockRow(const uint8_t* row, const float* x, int64_t n, float* out, int64_t out_stride) {
  constexpr int kSubBlocks = Codec::kElems / Codec::kSubElems;
  constexpr int kSplit = kTokens == 1 ? 2 : 1;
  const DF df;
  const hn::Rebind<int32_t, DF> di32;
  const hn::Rebind<int8_t, DF> di8;
  const int lanes = static_cast<int>(hn::Lanes(df));

  hn::Vec<DF> acc[kTokens * kSplit];
  for (auto& a : acc) a = hn::Zero(df);

  alignas(64) int8_t q[Codec::kElems];
  float scale[kSubBlocks];
  float offset[kSubBlocks];
  const int64_t n_blocks = n / Codec::kElems;
  for (int64_t b = 0; b < n_blocks; ++b) {
    Codec::decode(row + b * Codec::kBytes, q, scale, offset);
    const float* xb = x + b * Codec::kElems;
    for (int s = 0; s < kSubBlocks; ++s) {
      const auto vscale = hn::Set(df, scale[s]);
      const auto voffset = hn::Set(df, offset[s]);
      for (int j = 0; j < Codec::kSubElems; j += lanes) {
        const int i = s * Codec::kSubElems + j;
        const auto codes = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(di8, q + i)));
        // Multiply, then add: the same two roundings as dequantize_row, not one FMA.
        auto wv = hn::Mul(vscale, codes);
        if constexpr (Codec::kHasOffset) wv = hn::Add(wv, voffset);
        const int slot = kSplit == 1 ? 0 : (j / lanes) & 1;
        for (int t = 0; t < kTokens; ++t) {
          acc[t * kSplit + slot] = hn::MulAdd(wv, hn::LoadU(df, xb + t * n + i), acc[t * kSplit + slot]);
        }
      }
    }
  }
  for (int t = 0; t < kTokens; ++t) {
    auto sum = acc[t * kSplit];
    if constexpr (kSplit == 2) sum = hn::Add(sum, acc[t * kSplit + 1]);
    out[t * out_stride] = hn::GetLane(hn::SumOfLanes(df, sum));
  }
}

template <class Codec, int kTokens>
void DotBlockRows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, float* y,
                  int64_t y_stride) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const auto* row = reinterpret_cast<const uint8_t*>(w.data + static_cast<size_t>(r) * w.row_stride);
    DotBlockRow<Codec, kTokens>(row, x, w.cols, y + r, y_stride);
  }
}

template <class Codec>
void DotBlockRowsTokens(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                        float* y, int64_t y_stride) {
  switch (n_tokens) {
    case 1: return DotBlockRows<Codec, 1>(w, row_begin, row_end, x, y, y_stride);
    case 2: return DotBlockRows<Codec, 2>(w, row_begin, row_end, x, y, y_stride);
    case 3: return DotBlockRows<Codec, 3>(w, row_begin, row_end, x, y, y_stride);
    case 4: return DotBlockRows<Codec, 4>(w, row_begin, row_end, x, y, y_stride);
    case 5: return DotBlockRows<Codec, 5>(w, row_begin, row_end, x, y, y_stride);
    case 6: return DotBlockRows<Codec, 6>(w, row_begin, row_end, x, y, y_stride);
    case 7: return DotBlockRows<Codec, 7>(w, row_begin, row_end, x, y, y_stride);
    default: return DotBlockRows<Codec, 8>(w, row_begin, row_end, x, y, y_stride);
  }
}

void DotRowsBlocks(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                   float* y, int64_t y_stride) {
  visit_block_codec(w.dtype, [&](auto codec) {
    DotBlockRowsTokens<decltype(codec)>(w, row_begin, row_end, x, n_tokens, y, y_stride);
  });
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
