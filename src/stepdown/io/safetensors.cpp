#include "stepdown/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/io/printable.h"

namespace stepdown::io {

namespace {

using nlohmann::json;

// Header lengths above this are rejected before parsing; real headers are at most a few
// megabytes even for models with tens of thousands of tensors.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

// Every dtype the format defines, with the DType stepdown reads it as (none when it does not).
struct SafetensorsDType {
  std::string_view name;
  std::optional<DType> dtype;
};
constexpr SafetensorsDType kDTypes[] = {
    {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
    {"F64", std::nullopt}, {"I64", std::nullopt}, {"I32", std::nullopt}, {"I16", std::nullopt},
    {"I8", std::nullopt}, {"U64", std::nullopt}, {"U32", std::nullopt}, {"U16", std::nullopt},
    {"U8", std::nullopt}, {"BOOL", std::nullopt}, {"F8_E4M3", std::nullopt}, {"F8_E5M2", std::nullopt},
};

int64_t json_int(const json& value, const std::string& file, const std::string& tensor, std::string_view field) {
  if (!value.is_number_integer()) {
    raise<FormatError>("{}: safetensors tensor '{}' field '{}': expected an integer, found {}", file, tensor, field,
                       printable(value.dump()));
  }
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    raise<FormatError>("{}: safetensors tensor '{}' field '{}': {} does not fit int64", file, tensor, field,
                       printable(value.dump()));
  }
  const int64_t v = value.get<int64_t>();
  if (v < 0) {
    raise<FormatError>("{}: safetensors tensor '{}' field '{}': expected a non-negative integer, found {}", file,
                       tensor, field, v);
  }
  return v;
}

const json& require_field(const json& entry, std::string_view field, const std::string& file,
                          const std::string& tensor) {
  const auto it = entry.find(field);
  if (it == entry.end()) raise<FormatError>("{}: safetensors tensor '{}': field '{}' is missing", file, tensor, field);
  return *it;
}

TensorView parse_entry(const std::string& name, const json& entry, std::span<const std::byte> data,
                       const std::string& file) {
  const std::string display_name = printable(name);
  if (!entry.is_object()) {
    raise<FormatError>("{}: safetensors tensor '{}': expected an object, found {}", file, display_name, entry.type_name());
  }
  TensorView view;
  view.name = name;

  const json& dtype_field = require_field(entry, "dtype", file, display_name);
  if (!dtype_field.is_string()) {
    raise<FormatError>("{}: safetensors tensor '{}' field 'dtype': expected a string, found {}", file, display_name,
                       printable(dtype_field.dump()));
  }
  const std::string dtype_name = dtype_field.get<std::string>();
  const auto known = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                                  [&](const SafetensorsDType& d) { return d.name == dtype_name; });
  if (known == std::end(kDTypes)) {
    raise<FormatError>("{}: safetensors tensor '{}' field 'dtype': unknown dtype '{}'", file, display_name, printable(dtype_name));
  }
  if (!known->dtype) {
    raise<Unsupported>("{}: safetensors tensor '{}' has dtype {}; stepdown reads F32, F16 and BF16. Convert the "
                       "checkpoint to one of those",
                       file, display_name, dtype_name);
  }
  view.dtype = *known->dtype;

  const json& shape = require_field(entry, "shape", file, display_name);
  if (!shape.is_array() || shape.size() > 8) {
    raise<FormatError>("{}: safetensors tensor '{}' field 'shape': expected an array of at most 8 integers, found {}",
                       file, display_name, printable(shape.dump()));
  }
  int64_t numel = 1;
  for (const json& dim : shape) {
    const int64_t d = json_int(dim, file, display_name, "shape");
    view.shape.push_back(d);
    if (__builtin_mul_overflow(numel, d, &numel)) {
      raise<FormatError>("{}: safetensors tensor '{}' field 'shape': element count of {} overflows int64", file, display_name,
                         printable(shape.dump()));
    }
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(dtype_info(view.dtype).block_bytes),
                             &nbytes)) {
    raise<FormatError>("{}: safetensors tensor '{}': byte size of shape {} overflows", file, display_name, printable(shape.dump()));
  }

  const json& offsets = require_field(entry, "data_offsets", file, display_name);
  if (!offsets.is_array() || offsets.size() != 2) {
    raise<FormatError>("{}: safetensors tensor '{}' field 'data_offsets': expected [begin, end], found {}", file,
                       display_name, printable(offsets.dump()));
  }
  const auto begin = static_cast<uint64_t>(json_int(offsets[0], file, display_name, "data_offsets"));
  const auto end = static_cast<uint64_t>(json_int(offsets[1], file, display_name, "data_offsets"));
  if (begin > end || end > data.size()) {
    raise<FormatError>("{}: safetensors tensor '{}' field 'data_offsets': [{}, {}] is not inside the {} data bytes",
                       file, display_name, begin, end, data.size());
  }
  if (end - begin != nbytes) {
    raise<FormatError>("{}: safetensors tensor '{}': dtype {} and shape {} need {} bytes, but data_offsets [{}, {}] "
                       "span {}",
                       file, display_name, dtype_name, printable(shape.dump()), nbytes, begin, end, end - begin);
  }
  view.nbytes = static_cast<size_t>(nbytes);
  view.data = data.data() + begin;
  return view;
}

}  // namespace

SafetensorsFile read_safetensors(std::span<const std::byte> bytes, const std::filesystem::path& path) {
  const std::string file = path.string();
  if (bytes.size() < 8) {
    raise<FormatError>("{}: safetensors header length at offset 0: expected 8 bytes, found {} (file truncated)", file,
                       bytes.size());
  }
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes.data(), 8);
  if (header_bytes > bytes.size() - 8 || header_bytes > kMaxHeaderBytes) {
    raise<FormatError>("{}: safetensors header length at offset 0: {} bytes, but the file has only {} after it", file,
                       header_bytes, bytes.size() - 8);
  }

  const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
  json header;
  try {
    header = json::parse(text, text + header_bytes);
  } catch (const json::exception& e) {
    raise<FormatError>("{}: safetensors header (bytes 8..{}) is not valid JSON: {}", file, 8 + header_bytes, printable(e.what(), 200));
  }
  if (!header.is_object()) {
    raise<FormatError>("{}: safetensors header: expected a JSON object, found {}", file, header.type_name());
  }

  SafetensorsFile result;
  result.path = path;
  const std::span<const std::byte> data = bytes.subspan(8 + static_cast<size_t>(header_bytes));
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        raise<FormatError>("{}: safetensors field '__metadata__': expected an object, found {}", file,
                           entry.type_name());
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          raise<FormatError>("{}: safetensors field '__metadata__.{}': expected a string, found {}", file,
                             printable(key), printable(value.dump()));
        }
        result.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (name.empty()) raise<FormatError>("{}: safetensors header: empty tensor name", file);
    result.tensors.push_back(parse_entry(name, entry, data, file));
  }

  // Tensors must not share bytes.
  std::sort(result.tensors.begin(), result.tensors.end(),
            [](const TensorView& a, const TensorView& b) { return a.data < b.data; });
  for (size_t i = 1; i < result.tensors.size(); ++i) {
    const TensorView& prev = result.tensors[i - 1];
    const TensorView& next = result.tensors[i];
    if (prev.data + prev.nbytes > next.data) {
      raise<FormatError>("{}: safetensors tensor '{}' at data offset {} overlaps tensor '{}' (data offsets [{}, {}])",
                         file, printable(next.name), next.data - data.data(), printable(prev.name), prev.data - data.data(),
                         prev.data - data.data() + static_cast<ptrdiff_t>(prev.nbytes));
    }
  }
  return result;
}

SafetensorsFile open_safetensors(const std::filesystem::path& path) {
  auto mapping = std::make_shared<MappedFile>(path);
  SafetensorsFile result = read_safetensors(mapping->bytes(), path);
  result.mapping = std::move(mapping);
  return result;
}

}  // namespace stepdown::io
