#include "stepdown/kernels/int8_outlier.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/kernels/int8_int8.h"

namespace stepdown::kernels {
namespace {

constexpr size_t kValuesOffset = 4;
constexpr size_t kColumnsOffset = kValuesOffset + 4 * kMaxOutlierColumns;
constexpr size_t kCodesOffset = kColumnsOffset + 2 * kMaxOutlierColumns;
static_assert(kCodesOffset == 52, "INT8_OUTLIER's header is 52 bytes (dtype.cpp)");

// Largest cols whose int32 sum of int8 products cannot overflow: 127 * 127 * cols < 2^31.
constexpr int64_t kMaxExactCols = (int64_t{1} << 31) / (127 * 127);

// The outlier columns every row shares, checked against each row's header.
std::vector<uint16_t> shared_columns(const WeightMatrix& w) {
  if (w.cols >= kMaxExactCols) {
    raise<InvalidArgument>("INT8_OUTLIER: {} columns would overflow the int32 sum (limit {})", w.cols, kMaxExactCols);
  }
  if (w.rows == 0) return {};
  const OutlierRowHeader first = read_outlier_header(w.data);
  std::vector<uint16_t> columns;
  for (uint16_t c : first.columns) {
    if (c == kNoOutlierColumn) continue;
    if (c >= w.cols) raise<InvalidArgument>("INT8_OUTLIER: outlier column {} is outside the row of {}", c, w.cols);
    columns.push_back(c);
  }
  for (int64_t r = 1; r < w.rows; ++r) {
    const OutlierRowHeader header = read_outlier_header(w.data + static_cast<size_t>(r) * w.row_stride);
    if (std::memcmp(header.columns, first.columns, sizeof first.columns) != 0) {
      raise<InvalidArgument>("INT8_OUTLIER: row {} lists other outlier columns than row 0", r);
    }
  }
  return columns;
}

// qx (cols), sx for every token: x with the outlier columns zeroed, quantized per token.
void quantize_inliers(const float* x, int64_t n_tokens, int64_t cols, const std::vector<uint16_t>& columns,
                      std::vector<int8_t>& codes, std::vector<float>& scales) {
  codes.resize(static_cast<size_t>(n_tokens * cols));
  scales.resize(static_cast<size_t>(n_tokens));
  std::vector<float> masked(static_cast<size_t>(cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::copy(x + t * cols, x + (t + 1) * cols, masked.begin());
    for (uint16_t c : columns) masked[c] = 0.0f;
    scales[static_cast<size_t>(t)] = quantize_activation_row(masked.data(), cols, codes.data() + t * cols);
  }
}

float outlier_sum(const OutlierRowHeader& header, const float* x) {
  float sum = 0.0f;
  for (int k = 0; k < kMaxOutlierColumns; ++k) {
    if (header.columns[k] != kNoOutlierColumn) sum += header.values[k] * x[header.columns[k]];
  }
  return sum;
}

void product(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool,
             Int8DotPath path) {
  const std::vector<uint16_t> columns = shared_columns(w);
  std::vector<int8_t> codes;
  std::vector<float> x_scales;
  quantize_inliers(x, n_tokens, w.cols, columns, codes, x_scales);

  const auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const std::byte* row = w.data + static_cast<size_t>(r) * w.row_stride;
      const OutlierRowHeader header = read_outlier_header(row);
      const auto* q = reinterpret_cast<const int8_t*>(row + kCodesOffset);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const int32_t dot = dot_int8(q, codes.data() + t * w.cols, w.cols, path);
        const float inliers = static_cast<float>(dot) * (header.scale * x_scales[static_cast<size_t>(t)]);
        y[t * w.rows + r] = inliers + outlier_sum(header, x + t * w.cols);
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(w.rows, rows, 16);
  } else {
    rows(0, w.rows);
  }
}

}  // namespace

OutlierRowHeader read_outlier_header(const std::byte* row) {
  OutlierRowHeader header;
  std::memcpy(&header.scale, row, 4);
  std::memcpy(header.values, row + kValuesOffset, sizeof header.values);
  std::memcpy(header.columns, row + kColumnsOffset, sizeof header.columns);
  return header;
}

void write_outlier_header(const OutlierRowHeader& header, std::byte* row) {
  std::memcpy(row, &header.scale, 4);
  std::memcpy(row + kValuesOffset, header.values, sizeof header.values);
  std::memcpy(row + kColumnsOffset, header.columns, sizeof header.columns);
}

void dequantize_row_int8_outlier(const std::byte* src, float* dst, int64_t n) {
  const OutlierRowHeader header = read_outlier_header(src);
  const auto* q = reinterpret_cast<const int8_t*>(src + kCodesOffset);
  for (int64_t i = 0; i < n; ++i) dst[i] = header.scale * static_cast<float>(q[i]);
  for (int k = 0; k < kMaxOutlierColumns; ++k) {
    if (header.columns[k] != kNoOutlierColumn && header.columns[k] < n) dst[header.columns[k]] = header.values[k];
  }
}

void matmul_int8_outlier(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  product(w, x, n_tokens, y, &pool, supported_int8_dot_paths().front());
}

void matmul_int8_outlier_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  product(w, x, n_tokens, y, nullptr, Int8DotPath::kScalar);
}

}  // namespace stepdown::kernels
