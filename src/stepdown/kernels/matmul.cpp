#include "stepdown/kernels/matmul.h"

#include <algorithm>

#include "stepdown/core/error.h"
#include "stepdown/kernels/int8_int8.h"
#include "stepdown/kernels/int8_outlier.h"
#include "stepdown/kernels/row_dot.h"

namespace stepdown::kernels {

namespace {

// Rows per thread chunk are a multiple of this, so two threads never write the same
// 64-byte line of y.
constexpr int64_t kRowGrain = 16;

// Prefill works on row blocks of about this many weight bytes: a block stays in L2 while
// every tile of tokens passes over it, so weights come from memory once per call.
constexpr size_t kPrefillBlockBytes = 256 * 1024;

void check_shapes(const WeightMatrix& w, size_t x_size, size_t y_size, int64_t n_tokens) {
  if (static_cast<int64_t>(x_size) != w.cols * n_tokens || static_cast<int64_t>(y_size) != w.rows * n_tokens) {
    raise<InvalidArgument>("matmul: W is [{}, {}] ({}), x has {} values and y {} for {} tokens; expected {} and {}",
                           w.rows, w.cols, dtype_name(w.dtype), x_size, y_size, n_tokens, w.cols * n_tokens,
                           w.rows * n_tokens);
  }
  check_row_length(w.dtype, w.cols);
  const size_t row_bytes = dtype_bytes(w.dtype, w.cols);
  if (w.rows > 1 && w.row_stride < row_bytes) {
    raise<InvalidArgument>("matmul: W is [{}, {}] ({}) with a row stride of {} bytes, less than the {} bytes of a row",
                           w.rows, w.cols, dtype_name(w.dtype), w.row_stride, row_bytes);
  }
}

}  // namespace

void dot_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens, float* y,
              int64_t y_stride) {
  if (is_stepdown_format(w.dtype)) {
    dot_rows_stepdown(w, row_begin, row_end, x, n_tokens, y, y_stride);
  } else if (is_block_quantized(w.dtype)) {
    dot_rows_blocks(w, row_begin, row_end, x, n_tokens, y, y_stride);
  } else {
    dot_rows_float(w, row_begin, row_end, x, n_tokens, y, y_stride);
  }
}

void matvec(const WeightMatrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool) {
  check_shapes(w, x.size(), y.size(), 1);
  if (w.dtype == DType::INT8_W8A8) return matmul_w8a8(w, x.data(), 1, y.data(), pool);
  if (w.dtype == DType::INT8_OUTLIER) return matmul_int8_outlier(w, x.data(), 1, y.data(), pool);
  pool.parallel_for(
      w.rows, [&](int64_t begin, int64_t end) { dot_rows(w, begin, end, x.data(), 1, y.data(), w.rows); },
      kRowGrain);
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  check_shapes(w, static_cast<size_t>(w.cols * n_tokens), static_cast<size_t>(w.rows * n_tokens), n_tokens);
  if (w.dtype == DType::INT8_W8A8) return matmul_w8a8(w, x, n_tokens, y, pool);
  if (w.dtype == DType::INT8_OUTLIER) return matmul_int8_outlier(w, x, n_tokens, y, pool);
  const size_t row_bytes = std::max<size_t>(1, dtype_bytes(w.dtype, w.cols));
  const int64_t block_rows = std::max<int64_t>(kRowGrain, static_cast<int64_t>(kPrefillBlockBytes / row_bytes));
  pool.parallel_for(
      w.rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t block = begin; block < end; block += block_rows) {
          const int64_t block_end = std::min(end, block + block_rows);
          for (int64_t t = 0; t < n_tokens; t += kMaxTokenTile) {
            const int64_t tile = std::min(kMaxTokenTile, n_tokens - t);
            dot_rows(w, block, block_end, x + t * w.cols, tile, y + t * w.rows, w.rows);
          }
        }
      },
      kRowGrain);
}

}  // namespace stepdown::kernels
