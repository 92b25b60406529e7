#pragma once
// Random but valid weight matrices in every stored format, for kernel tests and benchmarks.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/core/half.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels::test {

// Byte offsets of the f16 scale fields inside one block; every other byte may take any value.
inline std::vector<int> f16_field_offsets(DType dtype) {
  switch (dtype) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: return {0};
    case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: return {0, 2};
    case DType::Q6_K: return {208};
    case DType::INT8_G128: case DType::INT4_G32: case DType::INT4_G64: case DType::INT4_G128: return {0};
    case DType::INT4_G32_ASYM: case DType::INT4_G64_ASYM: case DType::INT4_G128_ASYM: return {0, 2};
    case DType::INT3_G64: case DType::INT3_G128: return {0};
    case DType::INT3_G64_ASYM: case DType::INT3_G128_ASYM: return {0, 2};
    default: return {};
  }
}

// W (rows, cols) in `dtype` with values of order 1 (scales near 1/32 for block formats).
struct RandomWeights {
  std::vector<std::byte> storage;
  WeightMatrix matrix;

  RandomWeights(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255);
    const size_t row_bytes = dtype_bytes(dtype, cols);
    storage.resize(row_bytes * static_cast<size_t>(rows));
    const DTypeInfo& info = dtype_info(dtype);
    matrix = WeightMatrix{dtype, storage.data(), rows, cols, row_bytes};
    if (info.row_header_bytes > 0) {
      fill_per_row(rng, normal);
      return;
    }
    const int64_t n_blocks = rows * cols / info.block_elems;
    for (int64_t b = 0; b < n_blocks; ++b) {
      std::byte* block = storage.data() + b * info.block_bytes;
      switch (dtype) {
        case DType::F32: {
          const float v = normal(rng);
          std::memcpy(block, &v, 4);
          break;
        }
        case DType::F16: {
          const uint16_t v = f32_to_f16(normal(rng));
          std::memcpy(block, &v, 2);
          break;
        }
        case DType::BF16: {
          const uint16_t v = f32_to_bf16(normal(rng));
          std::memcpy(block, &v, 2);
          break;
        }
        default:
          for (int64_t i = 0; i < info.block_bytes; ++i) block[i] = static_cast<std::byte>(byte(rng));
          for (int offset : f16_field_offsets(dtype)) {
            const uint16_t v = f32_to_f16(normal(rng) * 0.03f);
            std::memcpy(block + offset, &v, 2);
          }
      }
    }
  }

  // INT8, INT8_W8A8 and FP8_E4M3: an f32 scale near 1/32 per row, then valid codes (int8
  // in [-127, 127]; any E4M3 code but the two NaNs).
  void fill_per_row(std::mt19937& rng, std::normal_distribution<float>& normal) {
    std::uniform_int_distribution<int> int8_code(-127, 127);
    std::uniform_int_distribution<int> fp8_code(0, 253);
    for (int64_t r = 0; r < matrix.rows; ++r) {
      std::byte* row = storage.data() + static_cast<size_t>(r) * matrix.row_stride;
      const float scale = normal(rng) * 0.03f;
      std::memcpy(row, &scale, 4);
      for (int64_t i = 0; i < matrix.cols; ++i) {
        if (matrix.dtype == DType::FP8_E4M3) {
          const int code = fp8_code(rng);
          row[4 + i] = static_cast<std::byte>(code < 127 ? code : code + 1);  // skip 0x7f and 0xff
        } else {
          row[4 + i] = static_cast<std::byte>(static_cast<int8_t>(int8_code(rng)));
        }
      }
    }
  }
};

inline std::vector<float> random_vector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

}  // namespace stepdown::kernels::test
