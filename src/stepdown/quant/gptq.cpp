#include "stepdown/quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <cblas.h>
#include <lapacke.h>
#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/gptq_grid.h"

namespace stepdown::quant {
namespace {

// U (n, n) upper, row-major: the Cholesky factor of (H + damp * mean(diag H) * I)^-1, with
// H^-1 = U^T U. Returns false when the damped H is not numerically positive definite.
bool inverse_cholesky_upper(const std::vector<double>& h, int64_t n, double damp, double mean_diag,
                            std::vector<double>& u) {
  u = h;
  for (int64_t i = 0; i < n; ++i) u[static_cast<size_t>(i * n + i)] += damp * mean_diag;
  const auto ni = static_cast<lapack_int>(n);

  // H = L L^T, then H^-1 from L (lower triangle), mirrored to the upper one.
  if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', ni, u.data(), ni) != 0) return false;
  if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', ni, u.data(), ni) != 0) return false;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) u[static_cast<size_t>(i * n + j)] = u[static_cast<size_t>(j * n + i)];
  }

  // H^-1 = U^T U; the strict lower triangle is cleared so that only U remains.
  if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', ni, u.data(), ni) != 0) return false;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) u[static_cast<size_t>(i * n + j)] = 0.0;
  }
  return true;
}

void check_inputs(std::span<const float> w, int64_t rows, int64_t cols, const std::vector<double>& h,
                  const GptqGrid& grid, const GptqOptions& options) {
  if (rows <= 0 || cols <= 0 || static_cast<int64_t>(w.size()) != rows * cols) {
    raise<InvalidArgument>("GPTQ: W has {} values; expected rows * cols = {} * {}", w.size(), rows, cols);
  }
  if (static_cast<int64_t>(h.size()) != cols * cols) {
    raise<InvalidArgument>("GPTQ: H has {} values; expected cols^2 = {}^2", h.size(), cols);
  }
  const int64_t group = grid.group_size(cols);
  if (cols % group != 0) {
    raise<InvalidArgument>("GPTQ: rows of {} values are not a whole number of {} groups of {}", cols,
                           dtype_name(grid.dtype()), group);
  }
  if (!(options.damp > 0.0) || options.block_size <= 0) {
    raise<InvalidArgument>("GPTQ: damp {} and block_size {} must be positive", options.damp, options.block_size);
  }
  // Without act-order a group's grid comes from the weights when its first column is
  // reached, which must then have every earlier column's update: the group may not
  // straddle a lazy batch.
  if (!options.act_order && group < cols && options.block_size % group != 0) {
    raise<InvalidArgument>("GPTQ: block_size {} must be a multiple of the {} group size {} (or use act_order=1)",
                           options.block_size, dtype_name(grid.dtype()), group);
  }
  for (size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i])) raise<InvalidArgument>("GPTQ: W[{}, {}] is {}", i / cols, i % cols, w[i]);
  }
  for (size_t i = 0; i < h.size(); ++i) {
    if (!std::isfinite(h[i])) raise<InvalidArgument>("GPTQ: H[{}, {}] is {}", i / cols, i % cols, h[i]);
  }
}

}  // namespace

bool gptq_supports(DType dtype) { return GptqGrid::for_dtype(dtype).has_value(); }

GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::vector<double> h, DType dtype,
                         const GptqOptions& options, ThreadPool& pool) {
  const std::optional<GptqGrid> maybe_grid = GptqGrid::for_dtype(dtype);
  if (!maybe_grid) raise<Unsupported>("GPTQ cannot write {}; see gptq_grid.h for the formats it writes", dtype_name(dtype));
  const GptqGrid& grid = *maybe_grid;
  check_inputs(w, rows, cols, h, grid, options);
  const int64_t group = grid.group_size(cols);
  const int64_t n_groups = cols / group;
  const auto at = [cols](int64_t r, int64_t c) { return static_cast<size_t>(r * cols + c); };
  GptqResult result;
  const std::vector<double> h_original = h;

  // Dead inputs: a unit diagonal keeps H invertible, a zero column costs nothing.
  std::vector<double> weights(w.begin(), w.end());  // (rows, cols), updated as columns are quantized
  for (int64_t c = 0; c < cols; ++c) {
    if (h[at(c, c)] != 0.0) continue;
    h[at(c, c)] = 1.0;
    for (int64_t r = 0; r < rows; ++r) weights[at(r, c)] = 0.0;
    ++result.dead_columns;
  }

  // Static grids (act-order, or per-row formats) come from the weights before any update.
  std::vector<GroupGrid> grids(static_cast<size_t>(rows * n_groups));  // (rows, n_groups)
  const bool static_grids = options.act_order || group == cols;
  // H_ii in storage order: the importance of each column's rounding error to clip_search.
  std::vector<double> diagonal(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) diagonal[static_cast<size_t>(c)] = h[at(c, c)];
  const auto choose = [&](const float* values, int64_t first_column) {
    return options.clip_search ? grid.choose_clipped(values, diagonal.data() + first_column, group)
                               : grid.choose(values, group);
  };
  if (static_grids) {
    std::vector<float> values(static_cast<size_t>(group));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < n_groups; ++g) {
        for (int64_t i = 0; i < group; ++i) values[static_cast<size_t>(i)] = static_cast<float>(weights[at(r, g * group + i)]);
        grids[static_cast<size_t>(r * n_groups + g)] = choose(values.data(), g * group);
      }
    }
  }

  // Column order: decreasing H_ii with act-order (stable, so ties keep storage order).
  std::vector<int64_t> order(static_cast<size_t>(cols));
  std::iota(order.begin(), order.end(), 0);
  if (options.act_order) {
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return h[at(a, a)] > h[at(b, b)]; });
    std::vector<double> permuted_h(h.size());
    std::vector<double> permuted_w(weights.size());
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = 0; j < cols; ++j) permuted_h[at(i, j)] = h[at(order[i], order[j])];
      for (int64_t r = 0; r < rows; ++r) permuted_w[at(r, i)] = weights[at(r, order[i])];
    }
    h.swap(permuted_h);
    weights.swap(permuted_w);
  }

  // Damping, retried larger while the factorization fails.
  double mean_diag = 0.0;
  for (int64_t i = 0; i < cols; ++i) mean_diag += h[at(i, i)];
  mean_diag /= static_cast<double>(cols);
  std::vector<double> u;
  double damp = options.damp;
  while (!inverse_cholesky_upper(h, cols, damp, mean_diag, u)) {
    if (damp * 10.0 > kMaxDamp) {
      raise<Error>("GPTQ: the Cholesky factorization of H ({0}, {0}) failed at damp {1}; the calibration inputs "
                   "may be degenerate (give more --calib-samples)",
                   cols, damp);
    }
    spdlog::warn("GPTQ: the Cholesky factorization of H ({0}, {0}) failed at damp {1}; retrying with damp {2}", cols,
                 damp, damp * 10.0);
    damp *= 10.0;
  }
  result.damp = damp;
  h.clear();
  h.shrink_to_fit();

  // Columns in lazy batches of block_size.
  std::vector<int8_t> codes(static_cast<size_t>(rows * cols));  // permuted order
  std::vector<float> quantized(static_cast<size_t>(rows * cols));
  const int64_t block = options.block_size;
  std::vector<double> errors(static_cast<size_t>(rows * block));  // (rows, block)
  for (int64_t b0 = 0; b0 < cols; b0 += block) {
    const int64_t b1 = std::min(cols, b0 + block);
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      std::vector<float> values(static_cast<size_t>(group));
      for (int64_t r = r0; r < r1; ++r) {
        double* wr = weights.data() + r * cols;
        for (int64_t i = b0; i < b1; ++i) {
          const int64_t column = order[static_cast<size_t>(i)];
          GroupGrid& g = grids[static_cast<size_t>(r * n_groups + column / group)];
          if (!static_grids && column % group == 0) {
            for (int64_t k = 0; k < group; ++k) values[static_cast<size_t>(k)] = static_cast<float>(wr[i + k]);
            g = choose(values.data(), column);
          }

          // Round on the fixed grid, then spread e = (w - q) / U_ii over the rest of the batch.
          const int q = grid.code(static_cast<float>(wr[i]), g);
          const float value = grid.value(q, g);
          codes[at(r, i)] = static_cast<int8_t>(q);
          quantized[at(r, i)] = value;
          const double* u_row = u.data() + i * cols;
          const double e = (wr[i] - static_cast<double>(value)) / u_row[i];
          errors[static_cast<size_t>(r * block + (i - b0))] = e;
          for (int64_t j = i + 1; j < b1; ++j) wr[j] -= e * u_row[j];
        }
      }
    }, 4);

    // Lazy batch update: W[:, b1:] -= E (rows, b1 - b0) @ U[b0:b1, b1:].
    if (b1 < cols) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(cols - b1),
                  static_cast<int>(b1 - b0), -1.0, errors.data(), static_cast<int>(block), u.data() + b0 * cols + b1,
                  static_cast<int>(cols), 1.0, weights.data() + b1, static_cast<int>(cols));
    }
  }
  u.clear();
  u.shrink_to_fit();

  // Storage order, bytes, and the decode check.
  result.dequantized.resize(static_cast<size_t>(rows * cols));
  std::vector<int8_t> row_codes(static_cast<size_t>(cols));
  const size_t row_bytes = dtype_bytes(dtype, cols);
  result.bytes.resize(row_bytes * static_cast<size_t>(rows));
  std::vector<float> decoded(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      row_codes[static_cast<size_t>(order[i])] = codes[at(r, i)];
      result.dequantized[at(r, order[i])] = quantized[at(r, i)];
    }
    std::byte* dst = result.bytes.data() + static_cast<size_t>(r) * row_bytes;
    grid.pack_row(row_codes, std::span(grids).subspan(static_cast<size_t>(r * n_groups), static_cast<size_t>(n_groups)),
                  dst);
    kernels::dequantize_row(dtype, dst, decoded.data(), cols);
    for (int64_t c = 0; c < cols; ++c) {
      if (decoded[static_cast<size_t>(c)] != result.dequantized[at(r, c)]) {
        raise<Error>("GPTQ: {} bytes of row {} decode to {} at column {}, but GPTQ's dequantized weight is {}",
                     dtype_name(dtype), r, decoded[static_cast<size_t>(c)], c, result.dequantized[at(r, c)]);
      }
    }
  }

  // Output error sum_r (w - q)^T H (w - q) / 2 = ||X (w - q)||^2 / n over the calibration tokens.
  std::vector<double> delta(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = static_cast<double>(w[i]) - result.dequantized[i];
  std::vector<double> delta_h(delta.size());
  cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, static_cast<int>(rows), static_cast<int>(cols), 1.0,
              h_original.data(), static_cast<int>(cols), delta.data(), static_cast<int>(cols), 0.0, delta_h.data(),
              static_cast<int>(cols));
  result.output_error = 0.5 * std::inner_product(delta.begin(), delta.end(), delta_h.begin(), 0.0);
  return result;
}

}  // namespace stepdown::quant
