// Activation quantization and the dispatch of the integer block kernels. The SIMD kernels
// live in int8_activations_simd-inl.h, compiled here once per instruction set through
// `#pragma GCC target`, because Highway 1.0.3 has no operation that emits vpdpbusd.
#include "stepdown/kernels/int8_activations.h"

#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "stepdown/kernels/block_codec.h"

namespace stepdown::kernels {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace int8_avx2 {
#define STEPDOWN_INT8_VNNI 0
#include "stepdown/kernels/int8_activations_simd-inl.h"  // NOLINT(bugprone-suspicious-include)
#undef STEPDOWN_INT8_VNNI
}  // namespace int8_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")
// GCC 12's AVX-512 headers start many intrinsics from _mm512_undefined_*(), which GCC 12.2
// reports as use of an uninitialized value (a false positive, fixed in later GCC releases).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace int8_vnni {
#define STEPDOWN_INT8_VNNI 1
#include "stepdown/kernels/int8_activations_simd-inl.h"  // NOLINT(bugprone-suspicious-include)
#undef STEPDOWN_INT8_VNNI
}  // namespace int8_vnni
#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace {

// The portable path: decodes each block with BlockCodec and sums the int8 products in int32.
template <DType kType>
void dot_rows_scalar(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const QuantizedActivations& q,
                     int64_t token_begin, int64_t n_tokens, float* y, int64_t y_stride) {
  using Codec = BlockCodec<kType>;
  const int64_t n_blocks = q.blocks_per_token();
  int8_t codes[Codec::kElems];
  float scale[Codec::kElems / Codec::kSubElems];
  float offset[Codec::kElems / Codec::kSubElems] = {};
  for (int64_t r = row_begin; r < row_end; ++r) {
    const auto* row = reinterpret_cast<const uint8_t*>(w.data + static_cast<size_t>(r) * w.row_stride);
    for (int64_t t = token_begin; t < token_begin + n_tokens; ++t) {
      float sum = 0.0f;
      for (int64_t b = 0; b < n_blocks; ++b) {
        Codec::decode(row + b * Codec::kBytes, codes, scale, offset);
        const int8_t* x_codes = q.codes.data() + t * q.cols + b * kActivationBlock;
        int32_t products = 0;
        for (int i = 0; i < kActivationBlock; ++i) products += int32_t{codes[i]} * int32_t{x_codes[i]};
        const auto block_index = static_cast<size_t>(t * n_blocks + b);
        sum += static_cast<float>(products) * (scale[0] * q.scales[block_index]);
        if constexpr (Codec::kHasOffset) sum += offset[0] * q.scaled_sums[block_index];
      }
      y[t * y_stride + r] = sum;
    }
  }
}

void dot_rows_portable(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const QuantizedActivations& q,
                       int64_t token_begin, int64_t n_tokens, float* y, int64_t y_stride) {
  // BlockCodec gives Q4_0 and Q5_0 centred signed codes, so they need no offset term.
  switch (w.dtype) {
    case DType::Q8_0:
      return dot_rows_scalar<DType::Q8_0>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q4_0:
      return dot_rows_scalar<DType::Q4_0>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q4_1:
      return dot_rows_scalar<DType::Q4_1>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q5_0:
      return dot_rows_scalar<DType::Q5_0>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q5_1:
      return dot_rows_scalar<DType::Q5_1>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    default: return;
  }
}

}  // namespace

bool has_int8_activation_kernel(DType dtype) {
  switch (dtype) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: return true;
    default: return false;
  }
}

void resize_quantized_activations(int64_t n_tokens, int64_t cols, QuantizedActivations& q) {
  q.n_tokens = n_tokens;
  q.cols = cols;
  q.codes.resize(static_cast<size_t>(n_tokens * cols));
  q.scales.resize(static_cast<size_t>(n_tokens * (cols / kActivationBlock)));
  q.scaled_sums.resize(q.scales.size());
  q.group_sums.resize(static_cast<size_t>(n_tokens * (cols / 4)));
  q.group_scales.resize(q.group_sums.size());
  q.group_scaled_sums.resize(q.group_sums.size());
}

void quantize_activation_blocks(const float* x, int64_t token_begin, int64_t token_end, QuantizedActivations& q) {
  const int64_t n_blocks = q.blocks_per_token();
  // Group fields of token t from its codes and block fields (the 1/8 is exact).
  const auto fill_group_fields = [n_blocks](int64_t t, QuantizedActivations& q) {
    const int64_t groups_per_block = kActivationBlock / 4;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const auto block_index = static_cast<size_t>(t * n_blocks + b);
      for (int64_t g = 0; g < groups_per_block; ++g) {
        const int64_t first = t * q.cols + b * kActivationBlock + 4 * g;
        const auto group_index = static_cast<size_t>(first / 4);
        q.group_sums[group_index] = q.codes[first] + q.codes[first + 1] + q.codes[first + 2] + q.codes[first + 3];
        q.group_scales[group_index] = q.scales[block_index];
        q.group_scaled_sums[group_index] = 0.125f * q.scaled_sums[block_index];
      }
    }
  };

  for (int64_t t = token_begin; t < token_end; ++t) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      const float* values = x + t * q.cols + b * kActivationBlock;
      int8_t* codes = q.codes.data() + t * q.cols + b * kActivationBlock;
      const auto block_index = static_cast<size_t>(t * n_blocks + b);

      float absmax = 0.0f;
      bool finite = true;
      for (int i = 0; i < kActivationBlock; ++i) {
        absmax = std::max(absmax, std::fabs(values[i]));
        finite = finite && std::isfinite(values[i]);
      }

      // An infinite or NaN value gets scale NaN, so every row it meets comes out NaN, where
      // the exact path gives NaN or an infinity.
      if (!finite) {
        std::fill(codes, codes + kActivationBlock, int8_t{0});
        q.scales[block_index] = NAN;
        q.scaled_sums[block_index] = NAN;
        continue;
      }
      // A zero or subnormal absmax leaves nothing to represent: codes and scale 0.
      if (!(absmax >= FLT_MIN)) {
        std::fill(codes, codes + kActivationBlock, int8_t{0});
        q.scales[block_index] = 0.0f;
        q.scaled_sums[block_index] = 0.0f;
        continue;
      }
      const float scale = absmax / 127.0f;
      const float inverse = 127.0f / absmax;
      int32_t sum = 0;
      for (int i = 0; i < kActivationBlock; ++i) {
        // x * (127 / absmax) may land a rounding above 127 for the absmax value itself.
        const float code = std::clamp(std::nearbyint(values[i] * inverse), -127.0f, 127.0f);
        codes[i] = static_cast<int8_t>(code);
        sum += codes[i];
      }
      q.scales[block_index] = scale;
      q.scaled_sums[block_index] = scale * static_cast<float>(sum);
    }
    fill_group_fields(t, q);
  }
}

Int8DotPath best_int8_activation_path() {
  static const Int8DotPath best = [] {
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return Int8DotPath::kAvx512Vnni;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Int8DotPath::kAvx2;
    return Int8DotPath::kScalar;
  }();
  return best;
}

void dot_rows_int8_activations(const WeightMatrix& w, int64_t row_begin, int64_t row_end,
                               const QuantizedActivations& q, int64_t token_begin, int64_t n_tokens, float* y,
                               int64_t y_stride, Int8DotPath path) {
  switch (path) {
    case Int8DotPath::kAvx512Vnni:
      return int8_vnni::dot_rows(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case Int8DotPath::kAvx2:
      return int8_avx2::dot_rows(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case Int8DotPath::kScalar: break;
  }
  dot_rows_portable(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
}

}  // namespace stepdown::kernels
