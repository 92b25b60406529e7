#include "stepdown/kernels/reference.h"

#include <cmath>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/kernels/block_codec.h"
#include "stepdown/kernels/int8_activations.h"

namespace stepdown::kernels {

double dot_f32_reference(const float* a, const float* b, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return sum;
}

RowDotReference dot_row_reference(const WeightMatrix& w, int64_t row, const float* x) {
  std::vector<float> decoded(static_cast<size_t>(w.cols));
  dequantize_row(w.dtype, w.data + static_cast<size_t>(row) * w.row_stride, decoded.data(), w.cols);
  RowDotReference result;
  for (int64_t i = 0; i < w.cols; ++i) {
    const double product = static_cast<double>(decoded[static_cast<size_t>(i)]) * static_cast<double>(x[i]);
    result.dot += product;
    result.magnitude += std::fabs(product);
  }
  return result;
}

void matvec_reference(const WeightMatrix& w, std::span<const float> x, std::span<float> y) {
  for (int64_t r = 0; r < w.rows; ++r) {
    y[static_cast<size_t>(r)] = static_cast<float>(dot_row_reference(w, r, x.data()).dot);
  }
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      y[t * w.rows + r] = static_cast<float>(dot_row_reference(w, r, x + t * w.cols).dot);
    }
  }
}

Int8ActivationReference dot_row_int8_activation_reference(const WeightMatrix& w, int64_t row, const float* x) {
  if (!has_int8_activation_kernel(w.dtype)) {
    raise<InvalidArgument>("dot_row_int8_activation_reference: W is {}, which has no int8 activation kernel",
                           dtype_name(w.dtype));
  }
  QuantizedActivations quantized;
  resize_quantized_activations(1, w.cols, quantized);
  quantize_activation_blocks(x, 0, 1, quantized);
  std::vector<float> decoded(static_cast<size_t>(w.cols));
  const std::byte* row_data = w.data + static_cast<size_t>(row) * w.row_stride;
  dequantize_row(w.dtype, row_data, decoded.data(), w.cols);

  Int8ActivationReference result;
  visit_block_codec(w.dtype, [&](auto codec) {
    using Codec = decltype(codec);
    int8_t codes[Codec::kElems];
    float scale[Codec::kElems / Codec::kSubElems];
    float offset[Codec::kElems / Codec::kSubElems] = {};
    for (int64_t first = 0; first < w.cols; first += Codec::kElems) {
      Codec::decode(reinterpret_cast<const uint8_t*>(row_data) + first / Codec::kElems * Codec::kBytes, codes, scale,
                    offset);
      for (int i = 0; i < Codec::kElems; ++i) {
        const int64_t column = first + i;
        const auto block = static_cast<size_t>(column / kActivationBlock);
        const double x_value = static_cast<double>(quantized.scales[block]) * quantized.codes[static_cast<size_t>(column)];
        const double code_term = static_cast<double>(scale[i / Codec::kSubElems]) * codes[i];
        const double offset_term = offset[i / Codec::kSubElems];
        result.dot += (code_term + offset_term) * x_value;
        result.magnitude += (std::fabs(code_term) + std::fabs(offset_term)) * std::fabs(x_value);
        result.quantization_bound +=
            0.5 * quantized.scales[block] * std::fabs(static_cast<double>(decoded[static_cast<size_t>(column)]));
      }
    }
  });
  return result;
}

}  // namespace stepdown::kernels
