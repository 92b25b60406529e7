#include "stepdown/io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/io/gguf_container.h"
#include "stepdown/io/printable.h"

namespace stepdown::io {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// Arrays nest to any depth in the format; this bound only keeps a hostile file from
// exhausting the stack through recursion.
constexpr int kMaxArrayDepth = 64;

// ggml's type names by id (ggml.h, enum ggml_type), for messages about types that
// stepdown does not read.
std::string_view ggml_type_name(uint32_t id) {
  static constexpr std::string_view kNames[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2 (removed)", "Q4_3 (removed)", "Q5_0",   "Q5_1",
      "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",           "Q5_K",           "Q6_K",   "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",         "IQ3_S",          "IQ2_S",  "IQ4_XS",
      "I8",      "I16",    "I32",     "I64",   "F64",            "IQ1_M",          "BF16",   "Q4_0_4_4 (removed)",
      "Q4_0_4_8 (removed)", "Q4_0_8_8 (removed)", "TQ1_0", "TQ2_0", "IQ4_NL_4_4 (removed)",
      "IQ4_NL_4_8 (removed)", "IQ4_NL_8_8 (removed)", "MXFP4"};
  return id < std::size(kNames) ? kNames[id] : std::string_view("unknown");
}

// Size in bytes of a fixed-size metadata value, or 0 for STRING and ARRAY.
size_t scalar_size(MetaType type) {
  switch (type) {
    case MetaType::UINT8:
    case MetaType::INT8:
    case MetaType::BOOL:
      return 1;
    case MetaType::UINT16:
    case MetaType::INT16:
      return 2;
    case MetaType::UINT32:
    case MetaType::INT32:
    case MetaType::FLOAT32:
      return 4;
    case MetaType::UINT64:
    case MetaType::INT64:
    case MetaType::FLOAT64:
      return 8;
    case MetaType::STRING:
    case MetaType::ARRAY:
      return 0;
  }
  return 0;
}

// Minimum bytes one value of `type` takes, used to reject counts the file cannot hold
// before anything is allocated. A string takes at least its uint64 length, and an array
// at least its uint32 element type and uint64 count.
size_t min_value_size(MetaType type) {
  if (type == MetaType::STRING) return 8;
  if (type == MetaType::ARRAY) return 12;
  return scalar_size(type);
}

bool valid_meta_type(uint32_t id) { return id <= static_cast<uint32_t>(MetaType::FLOAT64); }

// Reads little-endian fields from the mapped bytes. Every read is bounds-checked and a
// failure names the file, the field being read and its offset.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }
  const std::string& file() const { return file_; }

  template <class T>
  T read(std::string_view field) {
    require(sizeof(T), field);
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }

  std::string read_string(std::string_view field) {
    const size_t at = offset_;
    const uint64_t length = read<uint64_t>(field);
    if (length > remaining()) {
      raise<FormatError>("{}: GGUF {} at offset {}: string length {} runs past the end of the file ({} bytes left)",
                         file_, field, at, length, remaining());
    }
    std::string value(reinterpret_cast<const char*>(bytes_.data() + offset_), static_cast<size_t>(length));
    offset_ += static_cast<size_t>(length);
    return value;
  }

  // Raises unless `count` values of at least `min_size` bytes each fit in what is left.
  void require_count(uint64_t count, size_t min_size, std::string_view field, size_t at) {
    if (min_size != 0 && count > remaining() / min_size) {
      raise<FormatError>(
          "{}: GGUF {} at offset {}: count {} needs at least {} bytes each, but only {} bytes are left in the file",
          file_, field, at, count, min_size, remaining());
    }
  }

 private:
  void require(size_t n, std::string_view field) {
    if (n > remaining()) {
      raise<FormatError>("{}: GGUF {} at offset {}: expected {} bytes, found {} (file truncated)", file_, field,
                         offset_, n, remaining());
    }
  }

  std::span<const std::byte> bytes_;
  std::string file_;
  size_t offset_ = 0;
};

// `key` is only used in messages, so callers pass it through printable().
MetaValue read_value(Reader& r, MetaType type, const std::string& key, int depth);

MetaArray read_array(Reader& r, const std::string& key, int depth) {
  if (depth > kMaxArrayDepth) {
    raise<FormatError>("{}: GGUF metadata key '{}' at offset {}: arrays nested deeper than {} levels", r.file(), key,
                       r.offset(), kMaxArrayDepth);
  }
  const size_t at = r.offset();
  const auto element_id = r.read<uint32_t>(fmt::format("metadata key '{}' array element type", key));
  if (!valid_meta_type(element_id)) {
    raise<FormatError>("{}: GGUF metadata key '{}' at offset {}: unknown array element type id {} (expected 0..12)",
                       r.file(), key, at, element_id);
  }
  const auto element_type = static_cast<MetaType>(element_id);
  const size_t count_at = r.offset();
  const std::string count_field = fmt::format("metadata key '{}' array length", key);
  const auto count = r.read<uint64_t>(count_field);
  r.require_count(count, min_value_size(element_type), count_field, count_at);

  MetaArray array{element_type, {}};
  array.values.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) array.values.push_back(read_value(r, element_type, key, depth + 1));
  return array;
}

MetaValue read_value(Reader& r, MetaType type, const std::string& key, int depth) {
  const std::string field = fmt::format("metadata key '{}' value", key);
  MetaValue value;
  value.type = type;
  switch (type) {
    case MetaType::UINT8: value.value = uint64_t{r.read<uint8_t>(field)}; break;
    case MetaType::INT8: value.value = int64_t{r.read<int8_t>(field)}; break;
    case MetaType::UINT16: value.value = uint64_t{r.read<uint16_t>(field)}; break;
    case MetaType::INT16: value.value = int64_t{r.read<int16_t>(field)}; break;
    case MetaType::UINT32: value.value = uint64_t{r.read<uint32_t>(field)}; break;
    case MetaType::INT32: value.value = int64_t{r.read<int32_t>(field)}; break;
    case MetaType::UINT64: value.value = r.read<uint64_t>(field); break;
    case MetaType::INT64: value.value = r.read<int64_t>(field); break;
    case MetaType::FLOAT32: value.value = static_cast<double>(r.read<float>(field)); break;
    case MetaType::FLOAT64: value.value = r.read<double>(field); break;
    case MetaType::BOOL: {
      const size_t at = r.offset();
      const auto b = r.read<uint8_t>(field);
      if (b > 1) {
        raise<FormatError>("{}: GGUF {} at offset {}: expected a bool (0 or 1), found {}", r.file(), field, at, b);
      }
      value.value = b == 1;
      break;
    }
    case MetaType::STRING: value.value = r.read_string(field); break;
    case MetaType::ARRAY: value.value = read_array(r, key, depth); break;
  }
  return value;
}

// The RoPE pair layout of q/k rows in GGUF files of `arch`: "neox" for the architectures
// llama.cpp runs with its NEOX rope type, "interleaved" for the others listed, and empty
// when the architecture is unknown.
std::string_view rope_layout_for(std::string_view arch) {
  static constexpr std::string_view kInterleaved[] = {"llama", "baichuan", "deci", "granite", "olmo", "command-r"};
  static constexpr std::string_view kNeox[] = {"qwen",   "qwen2",  "qwen2moe", "qwen3", "qwen3moe", "gemma",
                                               "gemma2", "gemma3", "phi2",     "phi3",  "stablelm", "falcon",
                                               "gptneox", "starcoder2", "olmo2"};
  if (std::find(std::begin(kInterleaved), std::end(kInterleaved), arch) != std::end(kInterleaved)) {
    return "interleaved";
  }
  if (std::find(std::begin(kNeox), std::end(kNeox), arch) != std::end(kNeox)) return "neox";
  return {};
}

struct TensorInfo {
  TensorView view;
  uint64_t offset = 0;  // relative to the start of the data section
};

TensorInfo read_tensor_info(Reader& r, uint64_t index, const Metadata& metadata) {
  TensorInfo info;
  const size_t at = r.offset();
  info.view.name = r.read_string(fmt::format("tensor info {} name", index));
  const std::string& name = info.view.name;
  if (name.empty()) raise<FormatError>("{}: GGUF tensor info {} at offset {}: empty tensor name", r.file(), index, at);
  const std::string where = fmt::format("tensor '{}'", printable(name));

  const size_t dims_at = r.offset();
  const auto n_dims = r.read<uint32_t>(where + " n_dims");
  if (n_dims == 0 || n_dims > kMaxDims) {
    raise<FormatError>("{}: GGUF {} field n_dims at offset {}: expected 1..{}, found {}", r.file(), where, dims_at,
                       kMaxDims, n_dims);
  }
  std::vector<int64_t> ne(n_dims);  // innermost first, as GGUF stores it
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const size_t dim_at = r.offset();
    const auto dim = r.read<uint64_t>(fmt::format("{} dimension {}", where, d));
    if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      raise<FormatError>("{}: GGUF {} dimension {} at offset {}: expected 1..2^63-1, found {}", r.file(), where, d,
                         dim_at, dim);
    }
    ne[d] = static_cast<int64_t>(dim);
    if (__builtin_mul_overflow(numel, ne[d], &numel)) {
      raise<FormatError>("{}: GGUF {} at offset {}: element count of shape overflows int64", r.file(), where, dims_at);
    }
  }

  const size_t type_at = r.offset();
  const auto type_id = r.read<uint32_t>(where + " type");
  if (type_id == kGgmlTypeI8 && metadata.contains(container_format_key(name))) {
    const ContainerTensor tensor = read_container_tensor(metadata, r.file(), name, std::vector<int64_t>(ne.rbegin(), ne.rend()));
    info.view.dtype = tensor.dtype;
    info.view.shape = tensor.shape;
    info.view.nbytes = tensor.nbytes;
    info.offset = r.read<uint64_t>(where + " offset");
    return info;
  }
  const std::optional<DType> dtype = dtype_from_ggml_id(type_id);
  if (!dtype) {
    raise<Unsupported>("{}: GGUF {} at offset {}: tensor type id {} ({}) is not supported; supported: F32, F16, BF16, "
                       "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, and I8 with stepdown.tensor.* container keys",
                       r.file(), where, type_at, type_id, ggml_type_name(type_id));
  }
  info.view.dtype = *dtype;
  const DTypeInfo& layout = dtype_info(*dtype);
  if (ne[0] % layout.block_elems != 0) {
    raise<FormatError>("{}: GGUF {}: row length {} is not a multiple of the {} block size {}", r.file(), where, ne[0],
                       layout.name, layout.block_elems);
  }
  const uint64_t blocks = static_cast<uint64_t>(numel / layout.block_elems);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(layout.block_bytes), &nbytes)) {
    raise<FormatError>("{}: GGUF {}: byte size of shape {} overflows", r.file(), where, shape_string(ne));
  }
  info.view.nbytes = static_cast<size_t>(nbytes);
  info.view.shape.assign(ne.rbegin(), ne.rend());  // outermost first
  info.offset = r.read<uint64_t>(where + " offset");
  return info;
}

}  // namespace

bool looks_like_gguf(std::span<const std::byte> head) {
  if (head.size() < 4) return false;
  uint32_t magic = 0;
  std::memcpy(&magic, head.data(), 4);
  return magic == kGgufMagic;
}

ModelFile read_gguf(std::span<const std::byte> bytes, const std::filesystem::path& path) {
  Reader r(bytes, path.string());
  const std::string& file = r.file();

  // Header: magic, version, tensor count, metadata count.
  const auto magic = r.read<uint32_t>("magic");
  if (magic != kGgufMagic) {
    raise<FormatError>("{}: GGUF magic at offset 0: expected 0x{:08x} (\"GGUF\"), found 0x{:08x}", file, kGgufMagic,
                       magic);
  }
  const auto version = r.read<uint32_t>("version");
  if (version == 1) {
    raise<Unsupported>("{}: GGUF version at offset 4: version 1 (32-bit counts) is not supported; expected 2 or 3. "
                       "Convert the file with a current llama.cpp",
                       file);
  }
  if (version != 2 && version != 3) {
    raise<Unsupported>("{}: GGUF version at offset 4: expected 2 or 3, found {}", file, version);
  }
  const size_t tensor_count_at = r.offset();
  const auto tensor_count = r.read<uint64_t>("tensor_count");
  const size_t kv_count_at = r.offset();
  const auto kv_count = r.read<uint64_t>("metadata_kv_count");
  // Smallest key/value: an 8-byte key length, a 1-byte key, a 4-byte type and a 1-byte value.
  r.require_count(kv_count, 8 + 1 + 4 + 1, "metadata_kv_count", kv_count_at);

  ModelFile model;
  model.format = ModelFormat::GGUF;
  model.path = path;

  // Metadata key/value pairs.
  for (uint64_t i = 0; i < kv_count; ++i) {
    const size_t key_at = r.offset();
    std::string key = r.read_string(fmt::format("metadata key {}", i));
    if (key.empty()) raise<FormatError>("{}: GGUF metadata key {} at offset {}: empty key", file, i, key_at);
    if (model.metadata.contains(key)) {
      raise<FormatError>("{}: GGUF metadata key '{}' at offset {}: duplicate key", file, printable(key), key_at);
    }
    const size_t type_at = r.offset();
    const std::string shown_key = printable(key);
    const auto type_id = r.read<uint32_t>(fmt::format("metadata key '{}' type", shown_key));
    if (!valid_meta_type(type_id)) {
      raise<FormatError>("{}: GGUF metadata key '{}' type at offset {}: expected a value type id 0..12, found {}",
                         file, shown_key, type_at, type_id);
    }
    MetaValue value = read_value(r, static_cast<MetaType>(type_id), shown_key, 0);
    model.metadata.set(std::move(key), std::move(value));
  }

  uint32_t alignment = kDefaultAlignment;
  if (const MetaValue* value = model.metadata.find("general.alignment")) {
    const auto* number = std::get_if<uint64_t>(&value->value);
    if (value->type != MetaType::UINT32 || number == nullptr) {
      raise<FormatError>("{}: GGUF metadata key 'general.alignment': expected uint32, found {}", file,
                         meta_type_name(value->type));
    }
    if (*number == 0 || (*number & (*number - 1)) != 0) {
      raise<FormatError>("{}: GGUF metadata key 'general.alignment': expected a non-zero power of two, found {}", file,
                         *number);
    }
    alignment = static_cast<uint32_t>(*number);
  }

  // Tensor infos. The smallest takes a 9-byte name, n_dims, one dimension, type and offset.
  r.require_count(tensor_count, 9 + 4 + 8 + 4 + 8, "tensor_count", tensor_count_at);
  std::vector<TensorInfo> infos;
  infos.reserve(static_cast<size_t>(tensor_count));
  std::set<std::string, std::less<>> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    infos.push_back(read_tensor_info(r, i, model.metadata));
    if (!names.insert(infos.back().view.name).second) {
      raise<FormatError>("{}: GGUF tensor info {}: duplicate tensor name '{}'", file, i, printable(infos.back().view.name));
    }
  }

  // Tensor data starts at the next multiple of the alignment.
  const size_t data_start = r.offset() + (alignment - r.offset() % alignment) % alignment;
  if (tensor_count > 0 && data_start > bytes.size()) {
    raise<FormatError>("{}: GGUF tensor data section at offset {}: past the end of the file ({} bytes)", file,
                       data_start, bytes.size());
  }
  const uint64_t data_size = bytes.size() > data_start ? bytes.size() - data_start : 0;
  for (TensorInfo& info : infos) {
    const std::string& name = info.view.name;
    if (info.offset % alignment != 0) {
      raise<FormatError>("{}: GGUF tensor '{}' field offset: expected a multiple of the alignment {}, found {}", file,
                         printable(name), alignment, info.offset);
    }
    if (info.offset > data_size || info.view.nbytes > data_size - info.offset) {
      raise<FormatError>("{}: GGUF tensor '{}' data: {} bytes at offset {} (file offset {}) run past the end of the "
                         "file ({} bytes)",
                         file, printable(name), info.view.nbytes, info.offset, data_start + info.offset, bytes.size());
    }
    info.view.data = bytes.data() + data_start + info.offset;
  }

  // Tensors must not share bytes: each one ends before the next one in the file starts.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(infos.size());
  for (const TensorInfo& info : infos) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    if (prev.offset + prev.view.nbytes > by_offset[i]->offset) {
      raise<FormatError>("{}: GGUF tensor '{}' at data offset {} overlaps tensor '{}' ({} bytes at data offset {})",
                         file, printable(by_offset[i]->view.name), by_offset[i]->offset, printable(prev.view.name), prev.view.nbytes,
                         prev.offset);
    }
  }

  model.tensors.reserve(infos.size());
  for (TensorInfo& info : infos) model.tensors.push_back(std::move(info.view));
  check_container_keys(model.metadata, file, model.tensors);

  if (const std::optional<std::string> arch = model.metadata.get_string("general.architecture")) {
    const std::string_view layout = rope_layout_for(*arch);
    if (!layout.empty()) {
      model.metadata.set_string(std::string(kRopeLayoutKey), std::string(layout));
    } else {
      spdlog::warn("{}: unknown GGUF architecture '{}'; RoPE layout not set", file, printable(*arch));
    }
  }
  return model;
}

ModelFile open_gguf(std::shared_ptr<MappedFile> file) {
  ModelFile model = read_gguf(file->bytes(), file->path());
  model.mappings.push_back(std::move(file));
  return model;
}

ModelFile open_gguf(const std::filesystem::path& path) { return open_gguf(std::make_shared<MappedFile>(path)); }

}  // namespace stepdown::io
