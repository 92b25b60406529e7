#pragma once
// stepdown's own weight formats (INT8, INT4/INT3 groups, FP8, ...; core/dtype.h) inside
// GGUF. GGUF has no type ids for them, so such a tensor is stored as a GGUF tensor of ggml
// type I8. Its stored shape is the logical shape with the innermost dimension replaced by
// the bytes of one row: (rows, row_bytes) for a matrix. Namespaced metadata describes it:
//
//   stepdown.container_version       uint32            1
//   stepdown.tensor.<name>.format    string            stepdown_format_name: "int4-g128"
//   stepdown.tensor.<name>.shape     array of int64    logical shape, outermost first
//
// gguf-py and other GGUF readers read such a file and see I8 byte matrices; llama.cpp
// loads none of these tensors as weights, so it does not run the model. The writer
// (gguf_writer.h) adds these keys and the reader (gguf.h) turns the tensors back into
// TensorViews of the stepdown DType and logical shape.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/core/tensor.h"
#include "stepdown/io/metadata.h"

namespace stepdown::io {

inline constexpr std::string_view kContainerVersionKey = "stepdown.container_version";
inline constexpr uint32_t kContainerVersion = 1;
inline constexpr std::string_view kContainerTensorPrefix = "stepdown.tensor.";
// ggml's type id of I8 (ggml.h, enum ggml_type), the storage type of container tensors.
inline constexpr uint32_t kGgmlTypeI8 = 24;

// "stepdown.tensor.<tensor>.format" and "stepdown.tensor.<tensor>.shape".
std::string container_format_key(std::string_view tensor_name);
std::string container_shape_key(std::string_view tensor_name);

// True for the keys above, which the GGUF writer sets from its tensors' formats.
bool is_container_key(std::string_view key);

// The shape a tensor of `dtype` and `logical_shape` (outermost first) is stored with: the
// same dimensions, with the innermost replaced by dtype_bytes(dtype, cols).
std::vector<int64_t> container_storage_shape(DType dtype, const std::vector<int64_t>& logical_shape);

// A container tensor as the reader returns it.
struct ContainerTensor {
  DType dtype = DType::INT8;
  std::vector<int64_t> shape;  // logical, outermost first
  size_t nbytes = 0;           // rows * dtype_bytes(dtype, cols)
};

// Reads the format and shape keys of tensor `tensor_name`, stored as I8 with
// `stored_shape` (outermost first), and checks that the stored row length is the byte
// length the format needs for a logical row. Throws FormatError naming `file`, the tensor,
// the key and the value found when a key is missing or malformed, the format name is
// unknown, or the sizes disagree.
ContainerTensor read_container_tensor(const Metadata& metadata, std::string_view file, std::string_view tensor_name,
                                      const std::vector<int64_t>& stored_shape);

// Checks the file-level container keys once every tensor is read: each
// stepdown.tensor.<name>.* key names a tensor of the file that is stored in a stepdown
// format, and stepdown.container_version is 1 when any tensor is. Throws FormatError, or
// Unsupported for a later container version.
void check_container_keys(const Metadata& metadata, std::string_view file, const std::vector<TensorView>& tensors);

}  // namespace stepdown::io
