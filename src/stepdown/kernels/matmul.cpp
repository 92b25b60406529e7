#include "stepdown/kernels/matmul.h"

#include <vector>

#include "stepdown/core/error.h"

namespace stepdown::kernels {

namespace {

// Rows per task: enough work per chunk that the pool's hand-off cost stays small.
constexpr int64_t kRowGrain = 16;

void check_shapes(const WeightMatrix& w, size_t x_size, size_t y_size, int64_t n_tokens) {
  if (static_cast<int64_t>(x_size) != w.cols * n_tokens || static_cast<int64_t>(y_size) != w.rows * n_tokens) {
    raise<InvalidArgument>("matmul: W is [{}, {}] ({}), x has {} values and y {} for {} tokens; expected {} and {}",
                           w.rows, w.cols, dtype_name(w.dtype), x_size, y_size, n_tokens, w.cols * n_tokens,
                           w.rows * n_tokens);
  }
}

}  // namespace

void matvec(const WeightMatrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool) {
  check_shapes(w, x.size(), y.size(), 1);
  pool.parallel_for(
      w.rows,
      [&](int64_t begin, int64_t end) {
        thread_local std::vector<float> row;
        row.resize(static_cast<size_t>(w.cols));
        for (int64_t r = begin; r < end; ++r) {
          dequantize_row(w.dtype, w.data + static_cast<size_t>(r) * w.row_stride, row.data(), w.cols);
          y[static_cast<size_t>(r)] = dot_f32(row.data(), x.data(), w.cols);
        }
      },
      kRowGrain);
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  pool.parallel_for(
      w.rows,
      [&](int64_t begin, int64_t end) {
        thread_local std::vector<float> row;
        row.resize(static_cast<size_t>(w.cols));
        for (int64_t r = begin; r < end; ++r) {
          // Decode each weight row once and reuse it for every token.
          dequantize_row(w.dtype, w.data + static_cast<size_t>(r) * w.row_stride, row.data(), w.cols);
          for (int64_t t = 0; t < n_tokens; ++t) {
            y[t * w.rows + r] = dot_f32(row.data(), x + t * w.cols, w.cols);
          }
        }
      },
      kRowGrain);
}

}  // namespace stepdown::kernels
