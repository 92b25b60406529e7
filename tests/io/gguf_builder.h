#pragma once
// Writes small GGUF files byte by byte for tests, recording where each section ends so
// bad-input tests can truncate or corrupt the file at exact places.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace stepdown::test {

// GGUF value type ids (gguf specification).
enum GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

template <class T>
std::string le_bytes(T value) {
  return std::string(reinterpret_cast<const char*>(&value), sizeof(T));
}

inline std::string gguf_string(const std::string& s) { return le_bytes<uint64_t>(s.size()) + s; }

// An array value: element type, count, then the already-encoded elements.
inline std::string gguf_array(uint32_t element_type, uint64_t count, const std::string& elements) {
  return le_bytes(element_type) + le_bytes(count) + elements;
}

struct GgufSections {
  size_t header_end = 0;                 // after magic, version and the two counts
  std::vector<size_t> kv_ends;           // after each key/value pair
  std::vector<size_t> tensor_info_ends;  // after each tensor info
  size_t data_start = 0;
  std::vector<size_t> tensor_starts;     // absolute offsets of tensor data
  size_t end = 0;
};

class GgufBuilder {
 public:
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  // Used only to lay out the data section; set "general.alignment" too to change it.
  uint32_t alignment = 32;
  // When set, the header claims these counts instead of the real ones.
  std::optional<uint64_t> tensor_count_override;
  std::optional<uint64_t> kv_count_override;

  void kv(const std::string& key, uint32_t type, const std::string& value) {
    kvs_.push_back(gguf_string(key) + le_bytes(type) + value);
  }
  void kv_u32(const std::string& key, uint32_t v) { kv(key, kU32, le_bytes(v)); }
  void kv_string(const std::string& key, const std::string& v) { kv(key, kString, gguf_string(v)); }

  // ne is innermost first, as GGUF stores it. With `offset` the tensor claims that data
  // offset instead of the next aligned one.
  void tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data,
              std::optional<uint64_t> offset = std::nullopt) {
    tensors_.push_back({name, std::move(ne), type, std::move(data), offset});
  }

  std::vector<char> build(GgufSections* sections = nullptr) const {
    GgufSections s;
    std::string out = le_bytes(magic) + le_bytes(version) +
                      le_bytes<uint64_t>(tensor_count_override.value_or(tensors_.size())) +
                      le_bytes<uint64_t>(kv_count_override.value_or(kvs_.size()));
    s.header_end = out.size();
    for (const std::string& kv : kvs_) {
      out += kv;
      s.kv_ends.push_back(out.size());
    }
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      const uint64_t offset = t.offset.value_or(next);
      offsets.push_back(offset);
      next = offset + t.data.size();
      next += (alignment - next % alignment) % alignment;
      out += gguf_string(t.name) + le_bytes<uint32_t>(t.ne.size());
      for (uint64_t d : t.ne) out += le_bytes(d);
      out += le_bytes(t.type) + le_bytes(offset);
      s.tensor_info_ends.push_back(out.size());
    }
    out.resize(out.size() + (alignment - out.size() % alignment) % alignment, '\0');
    s.data_start = out.size();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const size_t at = s.data_start + offsets[i];
      s.tensor_starts.push_back(at);
      if (tensors_[i].offset) continue;  // a claimed offset may lie anywhere, so no data is written
      if (out.size() < at + tensors_[i].data.size()) out.resize(at + tensors_[i].data.size(), '\0');
      out.replace(at, tensors_[i].data.size(), tensors_[i].data);
    }
    s.end = out.size();
    if (sections != nullptr) *sections = s;
    return std::vector<char>(out.begin(), out.end());
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::string data;
    std::optional<uint64_t> offset;
  };
  std::vector<std::string> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace stepdown::test
