#pragma once
// Typed key/value metadata of a model, in GGUF's vocabulary. Every loader fills the same
// keys that a GGUF file of that architecture would carry ("general.architecture",
// "llama.embedding_length", "tokenizer.ggml.tokens", ...), so model/ and text/ read one
// set of names whatever the file format was.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace stepdown::io {

// GGUF value type ids (gguf specification, enum gguf_type).
enum class MetaType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view meta_type_name(MetaType type);

struct MetaValue;
// An array keeps its element type, so an empty array still records what it would contain.
struct MetaArray {
  MetaType element_type = MetaType::UINT8;
  std::vector<MetaValue> values;
};

struct MetaValue {
  MetaType type = MetaType::UINT8;
  // Integers of every width are held widened; `type` keeps the stored width.
  std::variant<uint64_t, int64_t, double, bool, std::string, MetaArray> value;
};

class Metadata {
 public:
  void set(std::string key, MetaValue value);
  bool contains(std::string_view key) const;
  const MetaValue* find(std::string_view key) const;
  const std::map<std::string, MetaValue, std::less<>>& entries() const { return entries_; }

  // Typed reads. Each returns nullopt when the key is absent and throws FormatError
  // naming the key, the expected and the found type when it holds another kind of value.
  // Integer reads accept any integer type whose value fits.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

  // Like the getters above but throw FormatError naming the key when it is absent.
  int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string require_string(std::string_view key) const;

  // Convenience setters that pick the GGUF type.
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string v);
  void set_string_array(std::string key, std::vector<std::string> v);
  void set_f32_array(std::string key, const std::vector<float>& v);
  void set_i32_array(std::string key, const std::vector<int32_t>& v);

 private:
  std::map<std::string, MetaValue, std::less<>> entries_;
};

}  // namespace stepdown::io
