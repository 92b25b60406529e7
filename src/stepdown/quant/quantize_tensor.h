#pragma once
// Quantizes one f32 tensor into a registered format, after checking what the formats
// cannot represent: non-finite values and rows that are not a whole number of blocks.
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "stepdown/core/thread_pool.h"
#include "stepdown/quant/format.h"

namespace stepdown::quant {

// W (rows, cols) f32 -> rows * row_bytes bytes in `format`, rows split across `pool`.
// Throws InvalidArgument naming `tensor_name` when cols is not a multiple of the format's
// block, or when an element is NaN or infinite (with its row and column).
std::vector<std::byte> quantize_tensor(std::string_view tensor_name, const QuantFormat& format,
                                       std::span<const float> data, int64_t rows, int64_t cols, ThreadPool& pool);

// True when a row of `cols` values is a whole number of the format's blocks.
inline bool row_fits(const QuantFormat& format, int64_t cols) { return cols % format.block_elems == 0; }

}  // namespace stepdown::quant
