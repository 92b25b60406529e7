// W8A8 integer kernels. Highway 1.0.3 cannot emit vpdpbusd, so the AVX-512 VNNI and AVX2
// dot products are small functions compiled for their ISA through target attributes and
// chosen at run time with __builtin_cpu_supports.
//
// vpdpbusd and vpmaddubsw multiply unsigned by signed bytes. Both paths feed |x| as the
// unsigned side and w with x's sign as the signed side: |x| * (sign(x) w) = x w. That needs
// w != -128, which the INT8 quantizer guarantees. vpmaddubsw saturates pair sums to int16,
// but 2 * 127 * 127 = 32258 fits, so every path is exact.
#include "stepdown/kernels/int8_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "stepdown/core/error.h"

namespace stepdown::kernels {

namespace {

int32_t dot_int8_scalar(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]);
  return sum;
}

__attribute__((target("avx2"))) int32_t dot_int8_avx2(const int8_t* a, const int8_t* b, int64_t n) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(va, va), _mm256_sign_epi8(vb, va));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
  }
  const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  const __m128i quarter = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
  int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(quarter, _mm_shuffle_epi32(quarter, 1)));
  return sum + dot_int8_scalar(a + i, b + i, n - i);
}

// x w for 64 byte pairs, added to acc: |x| as the unsigned side, w negated where x < 0.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline __m512i dpbusd_signed(__m512i acc, __m512i va,
                                                                                     __m512i vb) {
  const __mmask64 negative = _mm512_movepi8_mask(va);
  return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(va), _mm512_mask_sub_epi8(vb, negative, _mm512_setzero_si512(), vb));
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t dot_int8_avx512_vnni(const int8_t* a,
                                                                                      const int8_t* b, int64_t n) {
  // Two accumulators, so consecutive vpdpbusd do not wait on each other.
  __m512i acc0 = _mm512_setzero_si512();
  __m512i acc1 = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
    acc0 = dpbusd_signed(acc0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    acc1 = dpbusd_signed(acc1, _mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
  }
  for (; i < n; i += 64) {
    // The tail is a masked load, which reads nothing past a + n or b + n.
    const __mmask64 lanes = n - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - i)) - 1;
    acc0 = dpbusd_signed(acc0, _mm512_maskz_loadu_epi8(lanes, a + i), _mm512_maskz_loadu_epi8(lanes, b + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

// Largest cols for which 127 * 127 * cols fits in int32.
constexpr int64_t kMaxExactCols = INT32_MAX / (127 * 127);

struct QuantizedTokens {
  std::vector<int8_t> codes;  // (n_tokens, cols)
  std::vector<float> scales;  // (n_tokens)
};

QuantizedTokens quantize_tokens(const float* x, int64_t n_tokens, int64_t cols) {
  QuantizedTokens q;
  q.codes.resize(static_cast<size_t>(n_tokens * cols));
  q.scales.resize(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    q.scales[static_cast<size_t>(t)] = quantize_activation_row(x + t * cols, cols, q.codes.data() + t * cols);
  }
  return q;
}

void check_w8a8(const WeightMatrix& w) {
  if (w.dtype != DType::INT8_W8A8) {
    raise<InvalidArgument>("matmul_w8a8: W is {}, expected INT8_W8A8", dtype_name(w.dtype));
  }
  if (w.cols > kMaxExactCols) {
    raise<InvalidArgument>("matmul_w8a8: W has {} columns; the int32 sum is exact only up to {}", w.cols,
                           kMaxExactCols);
  }
}

// Rows [begin, end) for every token, each weight row read once per call.
void w8a8_rows(const WeightMatrix& w, const QuantizedTokens& q, int64_t n_tokens, int64_t begin, int64_t end,
               float* y, Int8DotPath path) {
  for (int64_t r = begin; r < end; ++r) {
    const std::byte* row = w.data + static_cast<size_t>(r) * w.row_stride;
    float w_scale;
    std::memcpy(&w_scale, row, sizeof w_scale);
    const auto* codes = reinterpret_cast<const int8_t*>(row + 4);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const int32_t sum = dot_int8(q.codes.data() + t * w.cols, codes, w.cols, path);
      y[t * w.rows + r] = static_cast<float>(sum) * (w_scale * q.scales[static_cast<size_t>(t)]);
    }
  }
}

}  // namespace

std::string_view int8_dot_path_name(Int8DotPath path) {
  switch (path) {
    case Int8DotPath::kAvx512Vnni: return "avx512_vnni";
    case Int8DotPath::kAvx2: return "avx2";
    case Int8DotPath::kScalar: return "scalar";
  }
  return "unknown";
}

std::vector<Int8DotPath> supported_int8_dot_paths() {
  std::vector<Int8DotPath> paths;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    paths.push_back(Int8DotPath::kAvx512Vnni);
  }
  if (__builtin_cpu_supports("avx2")) paths.push_back(Int8DotPath::kAvx2);
  paths.push_back(Int8DotPath::kScalar);
  return paths;
}

int32_t dot_int8(const int8_t* a, const int8_t* b, int64_t n, Int8DotPath path) {
  switch (path) {
    case Int8DotPath::kAvx512Vnni: return dot_int8_avx512_vnni(a, b, n);
    case Int8DotPath::kAvx2: return dot_int8_avx2(a, b, n);
    case Int8DotPath::kScalar: break;
  }
  return dot_int8_scalar(a, b, n);
}

float quantize_activation_row(const float* x, int64_t cols, int8_t* q) {
  float absmax = 0.0f;
  for (int64_t i = 0; i < cols; ++i) absmax = std::max(absmax, std::fabs(x[i]));
  if (!(absmax >= FLT_MIN)) {  // zero, subnormal or NaN: nothing to represent
    std::fill(q, q + cols, int8_t{0});
    return 0.0f;
  }
  const float scale = absmax / 127.0f;
  for (int64_t i = 0; i < cols; ++i) {
    const float code = std::nearbyint(x[i] / scale);
    q[i] = static_cast<int8_t>(std::clamp(code, -127.0f, 127.0f));
  }
  return scale;
}

void matmul_w8a8(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  check_w8a8(w);
  // The best path is fixed for the process, so it is looked up once.
  static const Int8DotPath best = supported_int8_dot_paths().front();
  const QuantizedTokens q = quantize_tokens(x, n_tokens, w.cols);
  pool.parallel_for(
      w.rows, [&](int64_t begin, int64_t end) { w8a8_rows(w, q, n_tokens, begin, end, y, best); }, 16);
}

void matmul_w8a8_on_path(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, Int8DotPath path) {
  check_w8a8(w);
  const QuantizedTokens q = quantize_tokens(x, n_tokens, w.cols);
  w8a8_rows(w, q, n_tokens, 0, w.rows, y, path);
}

}  // namespace stepdown::kernels
