#include "stepdown/kernels/matmul.h"

#include <algorithm>
#include <mutex>
#include <vector>

#include <cblas.h>

#include "stepdown/core/error.h"
#include "stepdown/kernels/fp8_static_act.h"
#include "stepdown/kernels/int8_activations.h"
#include "stepdown/kernels/int8_int8.h"
#include "stepdown/kernels/int8_outlier.h"
#include "stepdown/kernels/row_dot.h"

namespace stepdown::kernels {

namespace {

// Rows per thread chunk are a multiple of this, so two threads never write the same
// 64-byte line of y.
constexpr int64_t kRowGrain = 16;

// Tokens from which f32 weights go through OpenBLAS's sgemm. On one AVX-512 core, in one
// run, sgemm took a (1536, 576) x 512-token product at 142 GFLOP/s and dot_rows' register
// tiles at 79. The threshold of 32 is a guess, not measured. Below it dot_rows stays.
constexpr int64_t kBlasMinTokens = 32;

bool uses_blas(const WeightMatrix& w, int64_t n_tokens) {
  return w.dtype == DType::F32 && n_tokens >= kBlasMinTokens && w.row_stride % sizeof(float) == 0;
}

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

// Rows per block of about kPrefillBlockBytes of weights, at least kRowGrain.
int64_t prefill_block_rows(const WeightMatrix& w) {
  const size_t row_bytes = std::max<size_t>(1, dtype_bytes(w.dtype, w.cols));
  return std::max<int64_t>(kRowGrain, static_cast<int64_t>(kPrefillBlockBytes / row_bytes));
}

bool uses_int8_kernel(const WeightMatrix& w, ActivationPrecision precision) {
  return precision == ActivationPrecision::kInt8 && has_int8_activation_kernel(w.dtype);
}

// x (n_tokens, cols) quantized for the integer kernels. One buffer per calling thread is
// reused across calls, so a decode step allocates nothing once the largest shape is seen.
const QuantizedActivations& quantize_for_call(const float* x, int64_t n_tokens, int64_t cols, ThreadPool& pool) {
  thread_local QuantizedActivations buffer;
  // A lambda names a thread_local directly instead of capturing it, so the workers get
  // this reference to the calling thread's buffer, not their own.
  QuantizedActivations& quantized = buffer;
  resize_quantized_activations(n_tokens, cols, quantized);
  if (n_tokens == 1) {
    quantize_activation_blocks(x, 0, 1, quantized);
  } else {
    pool.parallel_for(n_tokens, [&](int64_t begin, int64_t end) { quantize_activation_blocks(x, begin, end, quantized); });
  }
  return quantized;
}

// Rows [row_begin, row_end) of one product for every token, in row blocks of about
// kPrefillBlockBytes: every tile of tokens passes over a block while it is in L2.
// `quantized` is x for the integer kernels, or null for the f32 kernels.
void product_rows(const MatmulProduct& product, int64_t row_begin, int64_t row_end, const float* x,
                  const QuantizedActivations* quantized, int64_t n_tokens) {
  const WeightMatrix& w = *product.w;
  if (uses_blas(w, n_tokens) && quantized == nullptr) {
    // Y[:, row_begin:row_end] (T, rows) = X (T, cols) @ W[row_begin:row_end]^T, one
    // single-threaded sgemm per chunk of rows.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n_tokens),
                static_cast<int>(row_end - row_begin), static_cast<int>(w.cols), 1.0f, x, static_cast<int>(w.cols),
                reinterpret_cast<const float*>(w.data + static_cast<size_t>(row_begin) * w.row_stride),
                static_cast<int>(w.row_stride / sizeof(float)), 0.0f, product.y + row_begin, static_cast<int>(w.rows));
    return;
  }
  const int64_t block_rows = prefill_block_rows(w);
  for (int64_t block = row_begin; block < row_end; block += block_rows) {
    const int64_t block_end = std::min(row_end, block + block_rows);
    if (quantized != nullptr) {
      dot_rows_int8_activations(w, block, block_end, *quantized, 0, n_tokens, product.y, w.rows,
                                best_int8_activation_path());
      continue;
    }
    for (int64_t t = 0; t < n_tokens; t += kMaxTokenTile) {
      const int64_t tile = std::min(kMaxTokenTile, n_tokens - t);
      dot_rows(w, block, block_end, x + t * w.cols, tile, product.y + t * w.rows, w.rows);
    }
  }
}

}  // namespace

void dot_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens, float* y,
              int64_t y_stride) {
  if (w.dtype == DType::INT8_W8A8 || w.dtype == DType::INT8_OUTLIER || w.dtype == DType::FP8_E4M3_A8) {
    // These quantize x themselves, so only matvec and matmul run them.
    raise<InvalidArgument>("dot_rows: {} quantizes its activations in its own kernel; use matvec or matmul",
                           dtype_name(w.dtype));
  }
  if (is_stepdown_format(w.dtype)) {
    dot_rows_stepdown(w, row_begin, row_end, x, n_tokens, y, y_stride);
  } else if (is_block_quantized(w.dtype)) {
    dot_rows_blocks(w, row_begin, row_end, x, n_tokens, y, y_stride);
  } else {
    dot_rows_float(w, row_begin, row_end, x, n_tokens, y, y_stride);
  }
}

void matvec(const WeightMatrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool,
            ActivationPrecision precision) {
  check_shapes(w, x.size(), y.size(), 1);
  const MatmulProduct product{&w, y.data()};
  matmul_group({&product, 1}, x.data(), 1, pool, precision);
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            ActivationPrecision precision) {
  const MatmulProduct product{&w, y};
  matmul_group({&product, 1}, x, n_tokens, pool, precision);
}

void matmul_group(std::span<const MatmulProduct> products, const float* x, int64_t n_tokens, ThreadPool& pool,
                  ActivationPrecision precision) {
  if (products.empty()) return;
  const int64_t cols = products.front().w->cols;
  int64_t total_rows = 0;
  bool any_int8 = false;
  for (const MatmulProduct& product : products) {
    const WeightMatrix& w = *product.w;
    if (w.cols != cols) {
      raise<InvalidArgument>("matmul_group: W is [{}, {}] ({}) but the first matrix of the group has {} columns",
                             w.rows, w.cols, dtype_name(w.dtype), cols);
    }
    check_shapes(w, static_cast<size_t>(w.cols * n_tokens), static_cast<size_t>(w.rows * n_tokens), n_tokens);
    total_rows += w.rows;
    any_int8 = any_int8 || uses_int8_kernel(w, precision);
  }

  // INT8_W8A8, INT8_OUTLIER and FP8_E4M3_A8 quantize x in their own kernels, so they run
  // on their own.
  const auto has_own_kernel = [](DType dtype) {
    return dtype == DType::INT8_W8A8 || dtype == DType::INT8_OUTLIER || dtype == DType::FP8_E4M3_A8;
  };
  for (const MatmulProduct& product : products) {
    if (has_own_kernel(product.w->dtype)) {
      std::vector<MatmulProduct> others;
      for (const MatmulProduct& other : products) {
        if (other.w->dtype == DType::INT8_W8A8) {
          matmul_w8a8(*other.w, x, n_tokens, other.y, pool);
        } else if (other.w->dtype == DType::INT8_OUTLIER) {
          matmul_int8_outlier(*other.w, x, n_tokens, other.y, pool);
        } else if (other.w->dtype == DType::FP8_E4M3_A8) {
          matmul_fp8_a8(*other.w, x, n_tokens, other.y, pool);
        } else {
          others.push_back(other);
        }
      }
      return matmul_group(others, x, n_tokens, pool, precision);
    }
  }

  const QuantizedActivations* quantized = any_int8 ? &quantize_for_call(x, n_tokens, cols, pool) : nullptr;
  // The pool's threads each run one sgemm on their rows, so OpenBLAS must not start its
  // own threads too, because they would spin for the cores the pool is using. Set once,
  // not on every prefill call; nothing in stepdown sets it higher.
  static std::once_flag blas_single_threaded;
  if (std::any_of(products.begin(), products.end(), [&](const MatmulProduct& p) { return uses_blas(*p.w, n_tokens); })) {
    std::call_once(blas_single_threaded, [] { openblas_set_num_threads(1); });
  }

  // One loop over the rows of every matrix, so a group costs one wait for the threads.
  pool.parallel_for(
      total_rows,
      [&](int64_t begin, int64_t end) {
        int64_t first_row = 0;
        for (const MatmulProduct& product : products) {
          const int64_t rows = product.w->rows;
          const int64_t local_begin = std::max<int64_t>(begin - first_row, 0);
          const int64_t local_end = std::min<int64_t>(end - first_row, rows);
          if (local_begin < local_end) {
            product_rows(product, local_begin, local_end, x,
                         uses_int8_kernel(*product.w, precision) ? quantized : nullptr, n_tokens);
          }
          first_row += rows;
        }
      },
      kRowGrain);
}

}  // namespace stepdown::kernels
