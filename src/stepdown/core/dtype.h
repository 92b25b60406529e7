#pragma once
// Element and block formats of weights. The numeric ids of the GGUF formats are ggml's
// type ids (ggml.h, enum ggml_type), so a GGUF tensor's type field maps straight to a DType.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
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

  // stepdown's own formats (kernels/stepdown_formats.h describes the layouts). Their ids
  // start at kFirstStepdownId, and dtype_from_ggml_id never returns them.
  INT8 = 1000,           // per-row f32 scale, int8 codes (W8A16)
  INT8_G128 = 1001,      // groups of 128: f16 scale, int8 codes
  INT4_G32 = 1002,       // groups of 32: f16 scale, 4-bit codes centred at 8
  INT4_G64 = 1003,
  INT4_G128 = 1004,
  INT4_G32_ASYM = 1005,  // groups of 32: f16 scale and f16 min, 4-bit codes 0..15
  INT4_G64_ASYM = 1006,
  INT4_G128_ASYM = 1007,
  FP8_E4M3 = 1008,       // per-row f32 scale, OCP E4M3 codes
  INT8_W8A8 = 1009,      // as INT8, multiplied with int8-quantized activations
  INT3_G64 = 1010,       // groups of 64: f16 scale, 3-bit codes centred at 4
  INT3_G128 = 1011,
  INT3_G64_ASYM = 1012,  // groups of 64: f16 scale and f16 min, 3-bit codes 0..7
  INT3_G128_ASYM = 1013,
  INT8_OUTLIER = 1014,   // INT8_W8A8 plus up to 8 input columns kept in f32 (outlier split)
  FP8_E4M3_A8 = 1015,    // FP8_E4M3 plus a static f32 activation scale; activations rounded to E4M3
};

// Ids at or above this are stepdown's own formats, which GGUF files never carry.
inline constexpr uint32_t kFirstStepdownId = 1000;

// Layout of one format: a row starts with row_header_bytes bytes (per-row scales; 0 for
// every GGUF format), then stores its elements in blocks of block_elems values that take
// block_bytes bytes. Plain floats are blocks of one element.
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  int64_t block_elems;
  int64_t block_bytes;
  int64_t row_header_bytes = 0;
};

// The format with ggml type id `id`, or nullopt when stepdown does not read it.
std::optional<DType> dtype_from_ggml_id(uint32_t id);
// The format named `name` ("f32", "Q4_K", case-insensitive), or nullopt.
std::optional<DType> dtype_from_name(std::string_view name);

const DTypeInfo& dtype_info(DType dtype);
inline std::string_view dtype_name(DType dtype) { return dtype_info(dtype).name; }
inline bool is_block_quantized(DType dtype) { return dtype_info(dtype).block_elems > 1; }
// True for stepdown's own formats (INT8 ... FP8_E4M3_A8), which GGUF has no type for.
inline bool is_stepdown_format(DType dtype) { return static_cast<uint32_t>(dtype) >= kFirstStepdownId; }

// The name of a stepdown format on the command line, in manifests and in the GGUF
// container's "stepdown.tensor.<tensor>.format" key: "int8", "int4-g128", "int3-g64-asym",
// "fp8", ... Throws InvalidArgument for a GGUF format.
std::string_view stepdown_format_name(DType dtype);
// The stepdown format called `name` (exact, lower case), or nullopt.
std::optional<DType> dtype_from_stepdown_format_name(std::string_view name);
// Every stepdown format, in id order.
std::span<const DType> stepdown_formats();

// Bytes taken by one row of `elems` values, row header included; throws InvalidArgument
// when elems is not a whole number of blocks. For a format with a row header this is not
// rows * dtype_bytes(dtype, cols) summed the other way round: call it per row.
size_t dtype_bytes(DType dtype, int64_t elems);
// Bits per weight: 8 * block_bytes / block_elems. A row header adds
// 8 * row_header_bytes / cols more, which this leaves out because it depends on cols.
double dtype_bits_per_weight(DType dtype);

}  // namespace stepdown
