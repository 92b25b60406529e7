#pragma once
// Row quantizers for ggml's float and block formats. The legacy block formats (Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1) and F16/BF16 reproduce gguf-py's gguf.quants.quantize byte for byte;
// the K-quants (Q4_K, Q5_K, Q6_K) use stepdown's own scale search (rtn_kquants.cpp).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stepdown/quant/format.h"

namespace stepdown::quant {

void quantize_row_f32(const float* src, std::byte* dst, int64_t n);
void quantize_row_f16(const float* src, std::byte* dst, int64_t n);
void quantize_row_bf16(const float* src, std::byte* dst, int64_t n);
void quantize_row_q8_0(const float* src, std::byte* dst, int64_t n);
void quantize_row_q4_0(const float* src, std::byte* dst, int64_t n);
void quantize_row_q4_1(const float* src, std::byte* dst, int64_t n);
void quantize_row_q5_0(const float* src, std::byte* dst, int64_t n);
void quantize_row_q5_1(const float* src, std::byte* dst, int64_t n);
void quantize_row_q4_k(const float* src, std::byte* dst, int64_t n);
void quantize_row_q5_k(const float* src, std::byte* dst, int64_t n);
void quantize_row_q6_k(const float* src, std::byte* dst, int64_t n);

// The formats above, for the registry's initial contents.
std::vector<QuantFormat> builtin_quant_formats();

}  // namespace stepdown::quant
