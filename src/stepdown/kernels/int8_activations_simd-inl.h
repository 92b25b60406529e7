// The SIMD kernels behind dot_rows_int8_activations. int8_activations.cpp includes this
// file twice, inside `#pragma GCC target` regions and different namespaces. The AVX2 copy
// uses 256-bit vpmaddubsw + vpmaddwd, one block of 32 codes per vector. The copy with
// STEPDOWN_INT8_VNNI set uses AVX-512 vpdpbusd on two blocks per 512-bit vector, and the
// 256-bit code for an odd last block.
//
// Exactness of the integer part: vpmaddubsw multiplies an unsigned byte (at most 128 here:
// |Q8_0 code| or a 4- or 5-bit code) by a signed activation code in [-127, 127], and a
// pair sum is at most 2 * 128 * 127 = 32512, below the int16 saturation at 32767.

// Sums of u[4i .. 4i+4) * s[4i .. 4i+4), u unsigned and s signed bytes, in eight int32 lanes.
inline __m256i dot_u8_s8(__m256i u, __m256i s) {
#if STEPDOWN_INT8_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

inline float load_half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return _cvtsh_ss(bits);
}

// 16 bytes of nibbles as 32 codes: low nibbles are elements 0..15, high ones 16..31.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 0x10 in byte i where bit i of qh is set, else 0.
inline __m256i fifth_bits(uint32_t qh) {
  // Byte i takes byte i / 8 of qh; vpshufb indexes within each 128-bit half, and both
  // halves hold all four bytes of qh.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(qh)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// One weight block decoded to codes in a vector, its scale dw and offset m (w = dw q + m).
struct DecodedBlock {
  __m256i codes;
  float scale;
  float offset;
};

struct Q8_0Block {
  static constexpr int kBytes = 34;
  static constexpr bool kSignedCodes = true, kHasOffset = false;
  static constexpr int kIntegerCentre = 0;
  static DecodedBlock decode(const uint8_t* b) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2)), load_half(b), 0.0f};
  }
};

template <int kBytesTotal, bool kAffine, bool kFifthBit>
struct NibbleBlock {
  static constexpr int kBytes = kBytesTotal;
  static constexpr bool kSignedCodes = false, kHasOffset = true;
  static constexpr int kQsOffset = 2 + (kAffine ? 2 : 0) + (kFifthBit ? 4 : 0);
  // Q4_0 and Q5_0 centre their unsigned codes at 8 and 16; affine formats have none.
  static constexpr int kIntegerCentre = kAffine ? 0 : (kFifthBit ? 16 : 8);
  static constexpr float kCentre = kFifthBit ? 16.0f : 8.0f;

  static DecodedBlock decode(const uint8_t* b) {
    const float d = load_half(b);
    __m256i codes = unpack_nibbles(b + kQsOffset);
    if constexpr (kFifthBit) {
      uint32_t qh;
      std::memcpy(&qh, b + (kAffine ? 4 : 2), sizeof qh);
      codes = _mm256_or_si256(codes, fifth_bits(qh));
    }
    return {codes, d, kAffine ? load_half(b + 2) : -kCentre * d};
  }
};

using Q4_0Block = NibbleBlock<18, false, false>;
using Q4_1Block = NibbleBlock<20, true, false>;
using Q5_0Block = NibbleBlock<22, false, true>;
using Q5_1Block = NibbleBlock<24, true, true>;

// Adds blocks [first_block, n_blocks) of rows x tokens [token, token + kTokens) to sums,
// 32 values per vector. Each decoded weight block is used for every token, each activation
// block for every row.
template <class Format, int kRows, int kTokens>
void add_blocks_256(const uint8_t* const* rows, int64_t first_block, const QuantizedActivations& q, int64_t token,
                    float (&sums)[kRows][kTokens]) {
  const int64_t n_blocks = q.blocks_per_token();
  if (first_block >= n_blocks) return;
  __m256 acc[kRows][kTokens];
  float offset_sum[kRows][kTokens];
  for (int i = 0; i < kRows; ++i) {
    for (int t = 0; t < kTokens; ++t) {
      acc[i][t] = _mm256_setzero_ps();
      offset_sum[i][t] = 0.0f;
    }
  }

  for (int64_t b = first_block; b < n_blocks; ++b) {
    DecodedBlock weights[kRows];
    for (int i = 0; i < kRows; ++i) weights[i] = Format::decode(rows[i] + b * Format::kBytes);

    for (int t = 0; t < kTokens; ++t) {
      const int64_t block_index = (token + t) * n_blocks + b;
      const __m256i x_codes = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(q.codes.data() + (token + t) * q.cols + b * kActivationBlock));
      const float x_scale = q.scales[static_cast<size_t>(block_index)];
      for (int i = 0; i < kRows; ++i) {
        __m256i products;
        if constexpr (Format::kSignedCodes) {
          // |w| as the unsigned side and x with w's sign as the signed side: |w| (sign(w) x) = w x.
          products = dot_u8_s8(_mm256_sign_epi8(weights[i].codes, weights[i].codes),
                               _mm256_sign_epi8(x_codes, weights[i].codes));
        } else {
          products = dot_u8_s8(weights[i].codes, x_codes);
        }
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), _mm256_set1_ps(weights[i].scale * x_scale),
                                    acc[i][t]);
        if constexpr (Format::kHasOffset) {
          offset_sum[i][t] =
              std::fma(weights[i].offset, q.scaled_sums[static_cast<size_t>(block_index)], offset_sum[i][t]);
        }
      }
    }
  }

  for (int i = 0; i < kRows; ++i) {
    for (int t = 0; t < kTokens; ++t) sums[i][t] += horizontal_sum(acc[i][t]) + offset_sum[i][t];
  }
}

#if STEPDOWN_INT8_VNNI
// Two consecutive weight blocks in 512-bit vectors: codes of block 0 in bytes 0..31 and of
// block 1 in bytes 32..63; scale and offset of block 0 in float lanes 0..7, block 1 in 8..15.
struct DecodedPair {
  __m512i codes;
  __m512 scale;
  __m512 offset;
};

// a in lanes 0..7, b in lanes 8..15.
inline __m512 pair_of(float a, float b) {
  return _mm512_mask_mov_ps(_mm512_set1_ps(a), __mmask16{0xff00}, _mm512_set1_ps(b));
}

template <class Format>
DecodedPair decode_pair(const uint8_t* b) {
  const DecodedBlock first = Format::decode(b);
  const DecodedBlock second = Format::decode(b + Format::kBytes);
  return {_mm512_inserti64x4(_mm512_castsi256_si512(first.codes), second.codes, 1),
          pair_of(first.scale, second.scale), pair_of(first.offset, second.offset)};
}

// Adds blocks [0, 2 * n_pairs) to sums, two blocks per 512-bit vector: one vpdpbusd, one
// convert, one scale multiply and one FMA (two for Q4_1 and Q5_1) per 64 products.
template <class Format, int kRows, int kTokens>
void add_block_pairs_512(const uint8_t* const* rows, int64_t n_pairs, const QuantizedActivations& q, int64_t token,
                         float (&sums)[kRows][kTokens]) {
  constexpr bool kAffine = Format::kHasOffset && Format::kIntegerCentre == 0;
  __m512 acc[kRows][kTokens];
  for (int i = 0; i < kRows; ++i) {
    for (int t = 0; t < kTokens; ++t) acc[i][t] = _mm512_setzero_ps();
  }

  for (int64_t pair = 0; pair < n_pairs; ++pair) {
    const int64_t b = 2 * pair;
    DecodedPair weights[kRows];
    for (int i = 0; i < kRows; ++i) weights[i] = decode_pair<Format>(rows[i] + b * Format::kBytes);

    for (int t = 0; t < kTokens; ++t) {
      const int64_t first = (token + t) * q.cols + b * kActivationBlock;
      const __m512i x_codes = _mm512_loadu_si512(q.codes.data() + first);
      const __m512 x_scale = _mm512_loadu_ps(q.group_scales.data() + first / 4);
      // Affine formats: each of the 8 lanes of a block adds an eighth of m * dx * sum(xq).
      const __m512 x_sum = kAffine ? _mm512_loadu_ps(q.group_scaled_sums.data() + first / 4) : _mm512_setzero_ps();
      // Centred formats: start each lane at -centre * (its 4 codes of x summed), so that
      // vpdpbusd adds up (q - centre) * xq exactly in int32 and no offset term is needed.
      __m512i start = _mm512_setzero_si512();
      if constexpr (Format::kIntegerCentre != 0) {
        constexpr int kShift = Format::kIntegerCentre == 8 ? 3 : 4;
        static_assert(Format::kIntegerCentre == 1 << kShift);
        start = _mm512_sub_epi32(start, _mm512_slli_epi32(_mm512_loadu_si512(q.group_sums.data() + first / 4), kShift));
      }
      for (int i = 0; i < kRows; ++i) {
        __m512i products;
        if constexpr (Format::kSignedCodes) {
          // |w| as the unsigned side and x negated where w < 0 as the signed side.
          const __mmask64 negative = _mm512_movepi8_mask(weights[i].codes);
          products = _mm512_dpbusd_epi32(start, _mm512_abs_epi8(weights[i].codes),
                                         _mm512_mask_sub_epi8(x_codes, negative, _mm512_setzero_si512(), x_codes));
        } else {
          products = _mm512_dpbusd_epi32(start, weights[i].codes, x_codes);
        }
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(products), _mm512_mul_ps(weights[i].scale, x_scale), acc[i][t]);
        if constexpr (kAffine) acc[i][t] = _mm512_fmadd_ps(weights[i].offset, x_sum, acc[i][t]);
      }
    }
  }

  for (int i = 0; i < kRows; ++i) {
    for (int t = 0; t < kTokens; ++t) sums[i][t] += _mm512_reduce_add_ps(acc[i][t]);
  }
}
#endif  // STEPDOWN_INT8_VNNI

// Rows [row, row + kRows) x tokens [token, token + kTokens). Every (row, token) pair has
// its own accumulators and sums its blocks in the same order for any kRows and kTokens, so
// its result does not depend on how a call tiles rows and tokens.
template <class Format, int kRows, int kTokens>
void dot_tile(const WeightMatrix& w, int64_t row, const QuantizedActivations& q, int64_t token, float* y,
              int64_t y_stride) {
  const uint8_t* rows[kRows];
  for (int i = 0; i < kRows; ++i) {
    rows[i] = reinterpret_cast<const uint8_t*>(w.data + static_cast<size_t>(row + i) * w.row_stride);
  }
  float sums[kRows][kTokens] = {};

  int64_t first_single_block = 0;
#if STEPDOWN_INT8_VNNI
  const int64_t n_pairs = q.blocks_per_token() / 2;
  add_block_pairs_512<Format, kRows, kTokens>(rows, n_pairs, q, token, sums);
  first_single_block = 2 * n_pairs;
#endif
  add_blocks_256<Format, kRows, kTokens>(rows, first_single_block, q, token, sums);

  for (int i = 0; i < kRows; ++i) {
    for (int t = 0; t < kTokens; ++t) y[(token + t) * y_stride + row + i] = sums[i][t];
  }
}

// Tokens per tile: with 32 vector registers (AVX-512) 2 rows x 8 tokens of accumulators
// fit, with 16 (AVX2) 2 rows x 4.
constexpr int kTokenTile = STEPDOWN_INT8_VNNI ? 8 : 4;

// Rows in pairs (a single row for an odd count) x kTokens tokens.
template <class Format, int kTokens>
void dot_rows_tokens(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const QuantizedActivations& q,
                     int64_t token, float* y, int64_t y_stride) {
  int64_t r = row_begin;
  for (; r + 2 <= row_end; r += 2) dot_tile<Format, 2, kTokens>(w, r, q, token, y, y_stride);
  if (r < row_end) dot_tile<Format, 1, kTokens>(w, r, q, token, y, y_stride);
}

// Tokens [token, token + n) for n < kTokenTile, as one tile of n.
template <class Format, int kTokens = kTokenTile - 1>
void dot_rows_remainder(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const QuantizedActivations& q,
                        int64_t token, int64_t n, float* y, int64_t y_stride) {
  if constexpr (kTokens >= 1) {
    if (n == kTokens) return dot_rows_tokens<Format, kTokens>(w, row_begin, row_end, q, token, y, y_stride);
    dot_rows_remainder<Format, kTokens - 1>(w, row_begin, row_end, q, token, n, y, y_stride);
  }
}

template <class Format>
void dot_rows_format(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const QuantizedActivations& q,
                     int64_t token_begin, int64_t n_tokens, float* y, int64_t y_stride) {
  int64_t t = token_begin;
  const int64_t token_end = token_begin + n_tokens;
  for (; t + kTokenTile <= token_end; t += kTokenTile) {
    dot_rows_tokens<Format, kTokenTile>(w, row_begin, row_end, q, t, y, y_stride);
  }
  dot_rows_remainder<Format>(w, row_begin, row_end, q, t, token_end - t, y, y_stride);
}

void dot_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const QuantizedActivations& q,
              int64_t token_begin, int64_t n_tokens, float* y, int64_t y_stride) {
  switch (w.dtype) {
    case DType::Q8_0: return dot_rows_format<Q8_0Block>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q4_0: return dot_rows_format<Q4_0Block>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q4_1: return dot_rows_format<Q4_1Block>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q5_0: return dot_rows_format<Q5_0Block>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    case DType::Q5_1: return dot_rows_format<Q5_1Block>(w, row_begin, row_end, q, token_begin, n_tokens, y, y_stride);
    default: return;  // the caller checks has_int8_activation_kernel
  }
}
