#include "stepdown/kernels/dot_bf16_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#define STEPDOWN_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

namespace stepdown::kernels {

namespace {

// Lanes of one __m512bh: 32 bf16 values, summed pairwise into 16 f32 lanes.
constexpr int64_t kPairLanes = 32;

__mmask32 tail_mask(int64_t count) {
  return count >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint32_t{1} << count) - 1);
}

// out (n) = x (n) rounded to bf16 with the same instruction for every element, tail too.
STEPDOWN_TARGET_AVX512_BF16 void round_to_bf16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; i += kPairLanes) {
    const int64_t count = std::min<int64_t>(kPairLanes, n - i);
    const __mmask16 low_mask = static_cast<__mmask16>(tail_mask(count) & 0xffff);
    const __mmask16 high_mask = static_cast<__mmask16>(tail_mask(count) >> 16);
    const __m512 low = _mm512_maskz_loadu_ps(low_mask, x + i);
    const __m512 high = _mm512_maskz_loadu_ps(high_mask, x + i + 16);
    const __m512i pairs = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low));
    _mm512_mask_storeu_epi16(out + i, tail_mask(count), pairs);
  }
}

// One weight row with kTokens bf16 token rows of x_stride values.
template <int kTokens>
STEPDOWN_TARGET_AVX512_BF16 void dot_row(const uint16_t* w, const uint16_t* x, int64_t n, int64_t x_stride,
                                         float* out, int64_t out_stride) {
  __m512 acc[kTokens];
  for (int t = 0; t < kTokens; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kPairLanes) {
    // Masked loads zero the lanes past n, which add nothing.
    const __mmask32 mask = tail_mask(n - i);
    const __m512bh wv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + i));
    for (int t = 0; t < kTokens; ++t) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, x + t * x_stride + i));
      acc[t] = _mm512_dpbf16_ps(acc[t], wv, xv);
    }
  }
  // Summed through memory: GCC 12's _mm512_reduce_add_ps warns about an uninitialized
  // register inside its own header.
  alignas(64) float lanes[16];
  for (int t = 0; t < kTokens; ++t) {
    _mm512_store_ps(lanes, acc[t]);
    float sum = 0.0f;
    for (float lane : lanes) sum += lane;
    out[t * out_stride] = sum;
  }
}

template <int kTokens>
void dot_rows_tile(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const uint16_t* x, float* y,
                   int64_t y_stride) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const auto* row = reinterpret_cast<const uint16_t*>(w.data + static_cast<size_t>(r) * w.row_stride);
    dot_row<kTokens>(row, x, w.cols, w.cols, y + r, y_stride);
  }
}

}  // namespace

bool cpu_has_avx512_bf16() {
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512bf16");
  return supported;
}

void dot_rows_bf16_avx512(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                          int64_t n_tokens, float* y, int64_t y_stride) {
  // Each call rounds its tokens once; matvec and matmul make a few calls per thread.
  thread_local std::vector<uint16_t> x_bf16;
  x_bf16.resize(static_cast<size_t>(n_tokens * w.cols));
  round_to_bf16(x, n_tokens * w.cols, x_bf16.data());
  const uint16_t* xb = x_bf16.data();
  switch (n_tokens) {
    case 1: return dot_rows_tile<1>(w, row_begin, row_end, xb, y, y_stride);
    case 2: return dot_rows_tile<2>(w, row_begin, row_end, xb, y, y_stride);
    case 3: return dot_rows_tile<3>(w, row_begin, row_end, xb, y, y_stride);
    case 4: return dot_rows_tile<4>(w, row_begin, row_end, xb, y, y_stride);
    case 5: return dot_rows_tile<5>(w, row_begin, row_end, xb, y, y_stride);
    case 6: return dot_rows_tile<6>(w, row_begin, row_end, xb, y, y_stride);
    case 7: return dot_rows_tile<7>(w, row_begin, row_end, xb, y, y_stride);
    default: return dot_rows_tile<8>(w, row_begin, row_end, xb, y, y_stride);
  }
}

}  // namespace stepdown::kernels
