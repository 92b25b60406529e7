#include "stepdown/io/gguf_writer.h"

#include <cstring>
#include <set>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/tensor.h"
#include "stepdown/io/gguf_container.h"

namespace stepdown::io {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;

// Little-endian serialization into a byte buffer (the header is small; tensor data goes
// straight to the file).
class ByteSink {
 public:
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    const size_t at = bytes_.size();
    bytes_.resize(at + s.size());
    std::memcpy(bytes_.data() + at, s.data(), s.size());
  }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

uint64_t integer_bits(const MetaValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.value)) return static_cast<uint64_t>(*i);
  raise<InvalidArgument>("GGUF writer: {} value does not hold an integer", meta_type_name(v.type));
}

void put_scalar(ByteSink& sink, const MetaValue& v, std::string_view key) {
  switch (v.type) {
    case MetaType::UINT8: sink.put(static_cast<uint8_t>(integer_bits(v))); return;
    case MetaType::INT8: sink.put(static_cast<int8_t>(integer_bits(v))); return;
    case MetaType::UINT16: sink.put(static_cast<uint16_t>(integer_bits(v))); return;
    case MetaType::INT16: sink.put(static_cast<int16_t>(integer_bits(v))); return;
    case MetaType::UINT32: sink.put(static_cast<uint32_t>(integer_bits(v))); return;
    case MetaType::INT32: sink.put(static_cast<int32_t>(integer_bits(v))); return;
    case MetaType::UINT64: sink.put(static_cast<uint64_t>(integer_bits(v))); return;
    case MetaType::INT64: sink.put(static_cast<int64_t>(integer_bits(v))); return;
    case MetaType::FLOAT32: sink.put(static_cast<float>(std::get<double>(v.value))); return;
    case MetaType::FLOAT64: sink.put(std::get<double>(v.value)); return;
    case MetaType::BOOL: sink.put(static_cast<uint8_t>(std::get<bool>(v.value) ? 1 : 0)); return;
    case MetaType::STRING: sink.put_string(std::get<std::string>(v.value)); return;
    case MetaType::ARRAY: {
      const auto& array = std::get<MetaArray>(v.value);
      sink.put(static_cast<uint32_t>(array.element_type));
      sink.put<uint64_t>(array.values.size());
      for (const MetaValue& element : array.values) {
        if (element.type != array.element_type) {
          raise<InvalidArgument>("GGUF writer: key '{}': array of {} holds a {} element", key,
                                 meta_type_name(array.element_type), meta_type_name(element.type));
        }
        put_scalar(sink, element, key);
      }
      return;
    }
  }
  raise<InvalidArgument>("GGUF writer: key '{}' has unknown value type {}", key, static_cast<uint32_t>(v.type));
}

// `metadata` without any container keys it carries, plus the keys that describe the
// stepdown-format tensors in `tensors` (gguf_container.h).
Metadata with_container_keys(const Metadata& metadata, const std::vector<GgufTensorInfo>& tensors) {
  Metadata out;
  for (const auto& [key, value] : metadata.entries()) {
    if (!is_container_key(key)) out.set(key, value);
  }
  bool any = false;
  for (const GgufTensorInfo& t : tensors) {
    if (!is_stepdown_format(t.dtype)) continue;
    any = true;
    out.set_string(container_format_key(t.name), std::string(stepdown_format_name(t.dtype)));
    MetaArray shape{MetaType::INT64, {}};
    for (int64_t d : t.shape) shape.values.push_back(MetaValue{MetaType::INT64, d});
    out.set(container_shape_key(t.name), MetaValue{MetaType::ARRAY, std::move(shape)});
  }
  if (any) out.set_u32(std::string(kContainerVersionKey), kContainerVersion);
  return out;
}

uint64_t align_up(uint64_t offset, uint64_t alignment) { return (offset + alignment - 1) / alignment * alignment; }

}  // namespace

void write_gguf(const std::filesystem::path& path, const Metadata& metadata,
                const std::vector<GgufTensorInfo>& tensors, const GgufTensorSource& source) {
  const uint64_t alignment = static_cast<uint64_t>(metadata.get_int("general.alignment").value_or(kDefaultAlignment));
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    raise<InvalidArgument>("{}: general.alignment must be a power of two, got {}", path.string(), alignment);
  }

  const Metadata file_metadata = with_container_keys(metadata, tensors);
  ByteSink header;
  header.put<uint32_t>(0x46554747u);  // "GGUF" read as a little-endian u32
  header.put<uint32_t>(kVersion);
  header.put<uint64_t>(tensors.size());
  header.put<uint64_t>(file_metadata.entries().size());
  for (const auto& [key, value] : file_metadata.entries()) {
    header.put_string(key);
    header.put(static_cast<uint32_t>(value.type));
    put_scalar(header, value, key);
  }

  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t data_offset = 0;
  for (const GgufTensorInfo& t : tensors) {
    if (!names.insert(t.name).second) raise<InvalidArgument>("{}: tensor '{}' is listed twice", path.string(), t.name);
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (cols % dtype_info(t.dtype).block_elems != 0) {
      raise<InvalidArgument>("{}: tensor '{}' has rows of {} values, not a multiple of {}'s block of {}",
                             path.string(), t.name, cols, dtype_name(t.dtype), dtype_info(t.dtype).block_elems);
    }
    // A stepdown format is stored as I8 bytes, one row of row_bytes per logical row.
    const bool container = is_stepdown_format(t.dtype);
    const std::vector<int64_t> stored_shape = container ? container_storage_shape(t.dtype, t.shape) : t.shape;
    header.put_string(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(stored_shape.size()));
    for (auto it = stored_shape.rbegin(); it != stored_shape.rend(); ++it) {
      header.put<uint64_t>(static_cast<uint64_t>(*it));
    }
    header.put<uint32_t>(container ? kGgmlTypeI8 : static_cast<uint32_t>(t.dtype));
    header.put<uint64_t>(data_offset);
    // Per row, because a stepdown format's row header repeats in every row.
    const int64_t rows = cols == 0 ? 0 : numel / cols;
    sizes.push_back(static_cast<uint64_t>(rows) * dtype_bytes(t.dtype, cols));
    data_offset = align_up(data_offset + sizes.back(), alignment);
  }

  AtomicFileWriter file(path);
  const std::vector<std::byte> zeros(alignment);
  const auto pad_to = [&](uint64_t target) {
    file.write(std::span(zeros).first(static_cast<size_t>(target - file.offset())));
  };
  file.write(header.bytes());
  pad_to(align_up(file.offset(), alignment));
  const uint64_t data_start = file.offset();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::vector<std::byte> bytes = source(i);
    if (bytes.size() != sizes[i]) {
      raise<InvalidArgument>("{}: tensor '{}' ({} {}) needs {} bytes, the source gave {}", path.string(),
                             tensors[i].name, dtype_name(tensors[i].dtype), shape_string(tensors[i].shape),
                             sizes[i], bytes.size());
    }
    file.write(bytes);
    if (i + 1 < tensors.size()) pad_to(data_start + align_up(file.offset() - data_start, alignment));
  }
  file.commit();
}

}  // namespace stepdown::io
