#include "stepdown/io/gguf_container.h"

#include <algorithm>

#include <fmt/format.h>

#include "stepdown/core/error.h"
#include "stepdown/io/printable.h"

namespace stepdown::io {

std::string container_format_key(std::string_view tensor_name) {
  return fmt::format("{}{}.format", kContainerTensorPrefix, tensor_name);
}

std::string container_shape_key(std::string_view tensor_name) {
  return fmt::format("{}{}.shape", kContainerTensorPrefix, tensor_name);
}

bool is_container_key(std::string_view key) {
  return key == kContainerVersionKey || key.starts_with(kContainerTensorPrefix);
}

std::vector<int64_t> container_storage_shape(DType dtype, const std::vector<int64_t>& logical_shape) {
  std::vector<int64_t> shape = logical_shape;
  if (shape.empty()) shape.push_back(1);
  shape.back() = static_cast<int64_t>(dtype_bytes(dtype, shape.back()));
  return shape;
}

ContainerTensor read_container_tensor(const Metadata& metadata, std::string_view file, std::string_view tensor_name,
                                      const std::vector<int64_t>& stored_shape) {
  const std::string name = printable(tensor_name);
  const std::string format_key = container_format_key(tensor_name);
  const MetaValue* format = metadata.find(format_key);
  if (format == nullptr) {
    raise<FormatError>("{}: GGUF tensor '{}' is stored as I8 in stepdown's container, but key '{}' is missing", file,
                       name, printable(format_key));
  }
  const auto* format_name = std::get_if<std::string>(&format->value);
  if (format->type != MetaType::STRING || format_name == nullptr) {
    raise<FormatError>("{}: GGUF tensor '{}': key '{}' must be a string, found {}", file, name,
                       printable(format_key), meta_type_name(format->type));
  }
  const std::optional<DType> dtype = dtype_from_stepdown_format_name(*format_name);
  if (!dtype) {
    std::string known;
    for (DType d : stepdown_formats()) known += (known.empty() ? "" : ", ") + std::string(stepdown_format_name(d));
    raise<FormatError>("{}: GGUF tensor '{}': key '{}' names unknown format '{}' (known: {})", file, name,
                       printable(format_key), printable(*format_name), known);
  }

  const std::string shape_key = container_shape_key(tensor_name);
  if (!metadata.contains(shape_key)) {
    raise<FormatError>("{}: GGUF tensor '{}' in format {}: key '{}' with its logical shape is missing", file, name,
                       *format_name, printable(shape_key));
  }
  ContainerTensor tensor;
  tensor.dtype = *dtype;
  try {
    tensor.shape = *metadata.get_int_array(shape_key);
  } catch (const FormatError& e) {
    raise<FormatError>("{}: GGUF tensor '{}': key '{}' must be an array of integers ({})", file, name,
                       printable(shape_key), e.what());
  }
  const bool dims_valid = std::all_of(tensor.shape.begin(), tensor.shape.end(), [](int64_t d) { return d > 0; });
  if (tensor.shape.empty() || tensor.shape.size() != stored_shape.size() || !dims_valid) {
    raise<FormatError>("{}: GGUF tensor '{}': key '{}' is {}; expected {} positive dimensions (the stored shape {} "
                       "with the bytes of a row innermost)",
                       file, name, printable(shape_key), shape_string(tensor.shape), stored_shape.size(),
                       shape_string(stored_shape));
  }

  const int64_t cols = tensor.shape.back();
  const DTypeInfo& info = dtype_info(*dtype);
  if (cols % info.block_elems != 0) {
    raise<FormatError>("{}: GGUF tensor '{}': logical row length {} is not a multiple of {}'s group of {}", file,
                       name, cols, *format_name, info.block_elems);
  }
  const std::vector<int64_t> expected = container_storage_shape(*dtype, tensor.shape);
  if (expected != stored_shape) {
    raise<FormatError>("{}: GGUF tensor '{}': format {} with logical shape {} needs {} bytes per row, stored shape "
                       "{}; expected {}",
                       file, name, *format_name, shape_string(tensor.shape), expected.back(),
                       shape_string(stored_shape), shape_string(expected));
  }
  uint64_t rows = 1;
  for (size_t d = 0; d + 1 < tensor.shape.size(); ++d) {
    if (__builtin_mul_overflow(rows, static_cast<uint64_t>(tensor.shape[d]), &rows)) {
      raise<FormatError>("{}: GGUF tensor '{}': shape {} overflows", file, name, shape_string(tensor.shape));
    }
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(rows, static_cast<uint64_t>(expected.back()), &nbytes)) {
    raise<FormatError>("{}: GGUF tensor '{}': byte size of shape {} overflows", file, name, shape_string(tensor.shape));
  }
  tensor.nbytes = static_cast<size_t>(nbytes);
  return tensor;
}

void check_container_keys(const Metadata& metadata, std::string_view file, const std::vector<TensorView>& tensors) {
  const bool any_container_tensor =
      std::any_of(tensors.begin(), tensors.end(), [](const TensorView& t) { return is_stepdown_format(t.dtype); });
  for (const auto& [key, value] : metadata.entries()) {
    if (!key.starts_with(kContainerTensorPrefix)) continue;
    const std::string_view rest = std::string_view(key).substr(kContainerTensorPrefix.size());
    const size_t dot = rest.rfind('.');
    const std::string_view field = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    if (field != "format" && field != "shape") {
      raise<FormatError>("{}: GGUF metadata key '{}': expected stepdown.tensor.<tensor>.format or .shape", file,
                         printable(key));
    }
    const std::string_view tensor_name = rest.substr(0, dot);
    const auto found = std::find_if(tensors.begin(), tensors.end(),
                                    [&](const TensorView& t) { return t.name == tensor_name; });
    if (found == tensors.end()) {
      raise<FormatError>("{}: GGUF metadata key '{}' describes tensor '{}', which the file does not contain", file,
                         printable(key), printable(tensor_name));
    }
    if (!is_stepdown_format(found->dtype)) {
      raise<FormatError>("{}: GGUF metadata key '{}' describes tensor '{}', which is stored as {}, not as I8 bytes",
                         file, printable(key), printable(tensor_name), dtype_name(found->dtype));
    }
  }
  if (!any_container_tensor) return;
  const MetaValue* version = metadata.find(kContainerVersionKey);
  if (version == nullptr) {
    raise<FormatError>("{}: GGUF file stores tensors in stepdown's container but key '{}' is missing", file,
                       kContainerVersionKey);
  }
  const std::optional<int64_t> number = metadata.get_int(kContainerVersionKey);
  if (number != static_cast<int64_t>(kContainerVersion)) {
    raise<Unsupported>("{}: GGUF key '{}': expected container version {}, found {}; a newer stepdown wrote this file",
                       file, kContainerVersionKey, kContainerVersion,
                       number ? std::to_string(*number) : std::string(meta_type_name(version->type)));
  }
}

}  // namespace stepdown::io
