#include "stepdown/quant/quantize_tensor.h"

#include <cmath>

#include "stepdown/core/error.h"

namespace stepdown::quant {

std::vector<std::byte> quantize_tensor(std::string_view tensor_name, const QuantFormat& format,
                                       std::span<const float> data, int64_t rows, int64_t cols, ThreadPool& pool) {
  if (static_cast<int64_t>(data.size()) != rows * cols) {
    raise<InvalidArgument>("tensor '{}': {} values given for shape ({}, {})", tensor_name, data.size(), rows, cols);
  }
  if (!row_fits(format, cols)) {
    raise<InvalidArgument>(
        "tensor '{}': row length {} is not a multiple of {}'s block of {} values; choose another type for it "
        "with --override",
        tensor_name, cols, format.name, format.block_elems);
  }
  for (size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) {
      raise<InvalidArgument>("tensor '{}': element ({}, {}) is {}; quantization needs finite weights", tensor_name,
                             static_cast<int64_t>(i) / cols, static_cast<int64_t>(i) % cols,
                             std::isnan(data[i]) ? "NaN" : "infinite");
    }
  }
  // dtype_bytes counts a per-row header (the scale of stepdown's per-channel formats) too.
  const size_t row_bytes = dtype_bytes(format.dtype, cols);
  std::vector<std::byte> out(row_bytes * static_cast<size_t>(rows));
  pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      format.quantize_row(data.data() + r * cols, out.data() + static_cast<size_t>(r) * row_bytes, cols);
    }
  });
  return out;
}

}  // namespace stepdown::quant
