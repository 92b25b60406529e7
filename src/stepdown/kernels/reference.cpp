#include "stepdown/kernels/reference.h"

#include <cmath>
#include <vector>

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

}  // namespace stepdown::kernels
