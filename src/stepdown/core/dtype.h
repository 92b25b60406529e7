#pragma once
// Element and block formats of weights. The numeric ids of the GGUF formats are ggml's
// type ids (ggml.h, enum ggml_type), so a GGUF tensor's type field maps straight to a DType.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace stepdown {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

// Layout of one format: elements are stored in blocks of block_elems values that take
// block_bytes bytes. Plain floats are blocks of one element.
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  int64_t block_elems;
  int64_t block_bytes;
};

// The format with ggml type id `id`, or nullopt when stepdown does not read it.
std::optional<DType> dtype_from_ggml_id(uint32_t id);
// The format named `name` ("f32", "Q4_K", case-insensitive), or nullopt.
std::optional<DType> dtype_from_name(std::string_view name);

const DTypeInfo& dtype_info(DType dtype);
inline std::string_view dtype_name(DType dtype) { return dtype_info(dtype).name; }
inline bool is_block_quantized(DType dtype) { return dtype_info(dtype).block_elems > 1; }

// Bytes taken by `elems` values; throws InvalidArgument when elems is not a whole number
// of blocks.
size_t dtype_bytes(DType dtype, int64_t elems);
// Bits per weight: 8 * block_bytes / block_elems.
double dtype_bits_per_weight(DType dtype);

}  // namespace stepdown
