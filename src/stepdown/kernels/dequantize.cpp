// Exact decoding of stored weights to f32, bit for bit as ggml's dequantize_row_*. This is
// also the reference the fused kernels are tested against.
#include <cstring>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/block_codec.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/kernels/stepdown_formats.h"

namespace stepdown::kernels {

namespace {

template <class Codec>
void dequantize_blocks(const std::byte* src, float* dst, int64_t n_blocks) {
  int8_t q[Codec::kElems];
  float scale[Codec::kElems / Codec::kSubElems];
  float offset[Codec::kElems / Codec::kSubElems];
  const auto* block = reinterpret_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n_blocks; ++b, block += Codec::kBytes, dst += Codec::kElems) {
    Codec::decode(block, q, scale, offset);
    for (int i = 0; i < Codec::kElems; ++i) {
      // Two statements, so no compiler fuses them into one FMA: ggml rounds the product
      // before adding the offset.
      const float scaled = scale[i / Codec::kSubElems] * static_cast<float>(q[i]);
      if constexpr (Codec::kHasOffset) {
        dst[i] = scaled + offset[i / Codec::kSubElems];
      } else {
        dst[i] = scaled;
      }
    }
  }
}

}  // namespace

void check_row_length(DType dtype, int64_t n) {
  const DTypeInfo& info = dtype_info(dtype);
  if (n < 0 || n % info.block_elems != 0) {
    raise<InvalidArgument>("{} row of {} values: the length must be a multiple of the {}-value block", info.name, n,
                           info.block_elems);
  }
}

void dequantize_row(DType dtype, const std::byte* src, float* dst, int64_t n) {
  check_row_length(dtype, n);
  if (is_stepdown_format(dtype)) return dequantize_row_stepdown(dtype, src, dst, n);
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, src + 2 * i, 2);
        dst[i] = bf16_to_f32(b);
      }
      return;
    default:
      break;
  }
  const bool known = visit_block_codec(dtype, [&](auto codec) {
    using Codec = decltype(codec);
    dequantize_blocks<Codec>(src, dst, n / Codec::kElems);
  });
  if (!known) raise<Unsupported>("dequantize_row: weight format {} is not supported", dtype_name(dtype));
}

}  // namespace stepdown::kernels
