// Dot products of f32 vectors and of F32, F16 and BF16 weight rows with f32 tokens.
// Highway compiles this file once per x86 target (AVX-512, AVX2, SSE4, scalar) and picks
// one at run time. F16 and BF16 weights are widened in registers; no f32 row is written.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "stepdown/kernels/dot_float.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <cstring>

#include <hwy/highway.h>

#include "stepdown/core/half.h"
#include "stepdown/kernels/row_dot.h"

HWY_BEFORE_NAMESPACE();
namespace stepdown::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Element types of the stored row, with their vector load and scalar decode.
struct F32Weights {
  using T = float;
  static hn::Vec<DF> load(DF d, const T* p) { return hn::LoadU(d, p); }
  static float scalar(const T* p) { return *p; }
};
struct F16Weights {
  using T = hwy::float16_t;
  static hn::Vec<DF> load(DF d, const T* p) { return hn::PromoteTo(d, hn::LoadU(hn::Rebind<T, DF>(), p)); }
  static float scalar(const T* p) {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    return f16_to_f32(bits);
  }
};
struct BF16Weights {
  using T = hwy::bfloat16_t;
  static hn::Vec<DF> load(DF d, const T* p) { return hn::PromoteTo(d, hn::LoadU(hn::Rebind<T, DF>(), p)); }
  static float scalar(const T* p) {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    return bf16_to_f32(bits);
  }
};

// One row with one token: four independent accumulators hide the FMA latency.
template <class Weights>
float DotOneToken(const typename Weights::T* w, const float* x, int64_t n) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d), acc2 = hn::Zero(d), acc3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    acc0 = hn::MulAdd(Weights::load(d, w + i), hn::LoadU(d, x + i), acc0);
    acc1 = hn::MulAdd(Weights::load(d, w + i + lanes), hn::LoadU(d, x + i + lanes), acc1);
    acc2 = hn::MulAdd(Weights::load(d, w + i + 2 * lanes), hn::LoadU(d, x + i + 2 * lanes), acc2);
    acc3 = hn::MulAdd(Weights::load(d, w + i + 3 * lanes), hn::LoadU(d, x + i + 3 * lanes), acc3);
  }
  for (; i + lanes <= n; i += lanes) acc0 = hn::MulAdd(Weights::load(d, w + i), hn::LoadU(d, x + i), acc0);
  acc0 = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
  float sum = hn::GetLane(hn::SumOfLanes(d, acc0));
  for (; i < n; ++i) sum += Weights::scalar(w + i) * x[i];
  return sum;
}

// Rows per register tile of the prefill kernel: 4 x 4 accumulators need the 32 vector
// registers of AVX-512; with 16 registers (AVX2, SSE4) 2 rows x 4 tokens fit.
constexpr int kRowTile = HWY_MAX_BYTES >= 64 ? 4 : 2;
// Tokens per register tile.
constexpr int kTokenTile = 4;

// Rows [row, row + kRows) x kTokens tokens with the accumulator tile in registers: each
// weight vector is loaded once for kTokens tokens and each x vector once for kRows rows,
// so the loop does kRows + kTokens loads per kRows * kTokens FMAs. Every (row, token)
// sums in the same order for any kRows and kTokens.
template <class Weights, int kRows, int kTokens>
void DotRegisterTile(const WeightMatrix& w, int64_t row, const float* x, float* y, int64_t y_stride) {
  const DF d;
  const int64_t n = w.cols;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const typename Weights::T* rows[kRows];
  for (int r = 0; r < kRows; ++r) {
    rows[r] = reinterpret_cast<const typename Weights::T*>(w.data + static_cast<size_t>(row + r) * w.row_stride);
  }
  hn::Vec<DF> acc[kRows][kTokens];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) acc[r][t] = hn::Zero(d);
  }

  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::Vec<DF> weights[kRows];
    for (int r = 0; r < kRows; ++r) weights[r] = Weights::load(d, rows[r] + i);
    for (int t = 0; t < kTokens; ++t) {
      const auto xv = hn::LoadU(d, x + t * n + i);
      for (int r = 0; r < kRows; ++r) acc[r][t] = hn::MulAdd(weights[r], xv, acc[r][t]);
    }
  }

  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) {
      float sum = hn::GetLane(hn::SumOfLanes(d, acc[r][t]));
      for (int64_t j = i; j < n; ++j) sum += Weights::scalar(rows[r] + j) * x[t * n + j];
      y[t * y_stride + row + r] = sum;
    }
  }
}

// Rows [row, row + kRows) x kTokens tokens, in register tiles of at most kTokenTile tokens.
// The weight rows stay in L1 from one register tile to the next.
template <class Weights, int kRows, int kTokens>
void DotRowGroup(const WeightMatrix& w, int64_t row, const float* x, float* y, int64_t y_stride) {
  if constexpr (kTokens <= kTokenTile) {
    DotRegisterTile<Weights, kRows, kTokens>(w, row, x, y, y_stride);
  } else {
    DotRegisterTile<Weights, kRows, kTokenTile>(w, row, x, y, y_stride);
    DotRowGroup<Weights, kRows, kTokens - kTokenTile>(w, row, x + kTokenTile * w.cols, y + kTokenTile * y_stride,
                                                      y_stride);
  }
}

template <class Weights, int kTokens>
void DotRowsTile(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, float* y,
                 int64_t y_stride) {
  if constexpr (kTokens == 1) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const auto* row = reinterpret_cast<const typename Weights::T*>(w.data + static_cast<size_t>(r) * w.row_stride);
      y[r] = DotOneToken<Weights>(row, x, w.cols);
    }
  } else {
    int64_t r = row_begin;
    for (; r + kRowTile <= row_end; r += kRowTile) DotRowGroup<Weights, kRowTile, kTokens>(w, r, x, y, y_stride);
    for (; r < row_end; ++r) DotRowGroup<Weights, 1, kTokens>(w, r, x, y, y_stride);
  }
}

template <class Weights>
void DotRowsWeights(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                    float* y, int64_t y_stride) {
  switch (n_tokens) {
    case 1: return DotRowsTile<Weights, 1>(w, row_begin, row_end, x, y, y_stride);
    case 2: return DotRowsTile<Weights, 2>(w, row_begin, row_end, x, y, y_stride);
    case 3: return DotRowsTile<Weights, 3>(w, row_begin, row_end, x, y, y_stride);
    case 4: return DotRowsTile<Weights, 4>(w, row_begin, row_end, x, y, y_stride);
    case 5: return DotRowsTile<Weights, 5>(w, row_begin, row_end, x, y, y_stride);
    case 6: return DotRowsTile<Weights, 6>(w, row_begin, row_end, x, y, y_stride);
    case 7: return DotRowsTile<Weights, 7>(w, row_begin, row_end, x, y, y_stride);
    default: return DotRowsTile<Weights, 8>(w, row_begin, row_end, x, y, y_stride);
  }
}

void DotRowsFloat(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                  float* y, int64_t y_stride) {
  switch (w.dtype) {
    case DType::F32: return DotRowsWeights<F32Weights>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    case DType::F16: return DotRowsWeights<F16Weights>(w, row_begin, row_end, x, n_tokens, y, y_stride);
    default: return DotRowsWeights<BF16Weights>(w, row_begin, row_end, x, n_tokens, y, y_stride);
  }
}

float DotF32(const float* a, const float* b, int64_t n) { return DotOneToken<F32Weights>(a, b, n); }

void AxpyF32(float alpha, const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto a = hn::Set(d, alpha);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::MulAdd(a, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}

float SumF32(const float* a, int64_t n) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d), acc2 = hn::Zero(d), acc3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    acc0 = hn::Add(acc0, hn::LoadU(d, a + i));
    acc1 = hn::Add(acc1, hn::LoadU(d, a + i + lanes));
    acc2 = hn::Add(acc2, hn::LoadU(d, a + i + 2 * lanes));
    acc3 = hn::Add(acc3, hn::LoadU(d, a + i + 3 * lanes));
  }
  for (; i + lanes <= n; i += lanes) acc0 = hn::Add(acc0, hn::LoadU(d, a + i));
  acc0 = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
  float sum = hn::GetLane(hn::SumOfLanes(d, acc0));
  for (; i < n; ++i) sum += a[i];
  return sum;
}

}  // namespace HWY_NAMESPACE
}  // namespace stepdown::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace stepdown::kernels {

HWY_EXPORT(DotRowsFloat);
HWY_EXPORT(DotF32);
HWY_EXPORT(SumF32);
HWY_EXPORT(AxpyF32);

void dot_rows_float(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                    float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(DotRowsFloat)(w, row_begin, row_end, x, n_tokens, y, y_stride);
}

float dot_f32(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n); }

float sum_f32(const float* a, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumF32)(a, n); }

void axpy_f32(float alpha, const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(AxpyF32)(alpha, x, y, n); }

}  // namespace stepdown::kernels
#endif  // HWY_ONCE
