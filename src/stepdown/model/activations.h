#pragma once
// A row-major f32 matrix of activations (rows, cols): one row per token.
#include <cassert>
#include <cstdint>
#include <span>
#include <vector>

namespace stepdown::model {

struct Activations {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  // (rows, cols)

  // Sets the shape; keeps the allocation when it shrinks, so decode does not reallocate.
  void resize(int64_t n_rows, int64_t n_cols) {
    rows = n_rows;
    cols = n_cols;
    data.resize(static_cast<size_t>(n_rows * n_cols));
  }
  float* row(int64_t r) {
    assert(r >= 0);
    assert(r < rows);
    return data.data() + r * cols;
  }
  const float* row(int64_t r) const {
    assert(r >= 0);
    assert(r < rows);
    return data.data() + r * cols;
  }
  std::span<const float> row_span(int64_t r) const { return {row(r), static_cast<size_t>(cols)}; }
};

}  // namespace stepdown::model
