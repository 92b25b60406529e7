#include "stepdown/io/metadata.h"

#include <limits>

#include "stepdown/core/error.h"

namespace stepdown::io {

namespace {

bool is_integer_type(MetaType type) {
  switch (type) {
    case MetaType::UINT8:
    case MetaType::INT8:
    case MetaType::UINT16:
    case MetaType::INT16:
    case MetaType::UINT32:
    case MetaType::INT32:
    case MetaType::UINT64:
    case MetaType::INT64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(MetaType type) { return type == MetaType::FLOAT32 || type == MetaType::FLOAT64; }

// A short description of a value's type for messages: "uint32", "array of string".
std::string describe_type(const MetaValue& value) {
  if (value.type != MetaType::ARRAY) return std::string(meta_type_name(value.type));
  const auto* array = std::get_if<MetaArray>(&value.value);
  const MetaType element = array != nullptr ? array->element_type : MetaType::UINT8;
  return fmt::format("array of {}", meta_type_name(element));
}

[[noreturn]] void raise_type_mismatch(std::string_view key, std::string_view expected, const MetaValue& found) {
  raise<FormatError>("metadata key '{}': expected {}, found {}", key, expected, describe_type(found));
}

// The integer held by `value`, or nullopt when it is not an integer or does not fit int64.
std::optional<int64_t> as_int64(const MetaValue& value) {
  if (!is_integer_type(value.type)) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&value.value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&value.value)) return *i;
  return std::nullopt;
}

std::optional<double> as_double(const MetaValue& value) {
  if (is_float_type(value.type)) {
    if (const auto* d = std::get_if<double>(&value.value)) return *d;
    return std::nullopt;
  }
  // Integers widen to double: config values such as rope_theta = 10000 are written either way.
  if (const auto* u = std::get_if<uint64_t>(&value.value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value.value)) return static_cast<double>(*i);
  return std::nullopt;
}

const MetaArray* as_array(const MetaValue& value) {
  if (value.type != MetaType::ARRAY) return nullptr;
  return std::get_if<MetaArray>(&value.value);
}

}  // namespace

std::string_view meta_type_name(MetaType type) {
  switch (type) {
    case MetaType::UINT8: return "uint8";
    case MetaType::INT8: return "int8";
    case MetaType::UINT16: return "uint16";
    case MetaType::INT16: return "int16";
    case MetaType::UINT32: return "uint32";
    case MetaType::INT32: return "int32";
    case MetaType::FLOAT32: return "float32";
    case MetaType::BOOL: return "bool";
    case MetaType::STRING: return "string";
    case MetaType::ARRAY: return "array";
    case MetaType::UINT64: return "uint64";
    case MetaType::INT64: return "int64";
    case MetaType::FLOAT64: return "float64";
  }
  return "unknown";
}

void Metadata::set(std::string key, MetaValue value) { entries_.insert_or_assign(std::move(key), std::move(value)); }

bool Metadata::contains(std::string_view key) const { return entries_.find(key) != entries_.end(); }

const MetaValue* Metadata::find(std::string_view key) const {
  const auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<int64_t> Metadata::get_int(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const std::optional<int64_t> result = as_int64(*value);
  if (!result) raise_type_mismatch(key, "an integer that fits int64", *value);
  return result;
}

std::optional<double> Metadata::get_float(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const std::optional<double> result = as_double(*value);
  if (!result) raise_type_mismatch(key, "a number", *value);
  return result;
}

std::optional<bool> Metadata::get_bool(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const auto* b = std::get_if<bool>(&value->value);
  if (value->type != MetaType::BOOL || b == nullptr) raise_type_mismatch(key, "bool", *value);
  return *b;
}

std::optional<std::string> Metadata::get_string(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const auto* s = std::get_if<std::string>(&value->value);
  if (value->type != MetaType::STRING || s == nullptr) raise_type_mismatch(key, "string", *value);
  return *s;
}

std::optional<std::vector<std::string>> Metadata::get_string_array(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const MetaArray* array = as_array(*value);
  if (array == nullptr || array->element_type != MetaType::STRING) raise_type_mismatch(key, "array of string", *value);
  std::vector<std::string> result;
  result.reserve(array->values.size());
  for (const MetaValue& element : array->values) result.push_back(std::get<std::string>(element.value));
  return result;
}

std::optional<std::vector<double>> Metadata::get_float_array(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const MetaArray* array = as_array(*value);
  if (array == nullptr || !(is_float_type(array->element_type) || is_integer_type(array->element_type))) {
    raise_type_mismatch(key, "array of numbers", *value);
  }
  std::vector<double> result;
  result.reserve(array->values.size());
  for (const MetaValue& element : array->values) result.push_back(as_double(element).value_or(0.0));
  return result;
}

std::optional<std::vector<int64_t>> Metadata::get_int_array(std::string_view key) const {
  const MetaValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const MetaArray* array = as_array(*value);
  if (array == nullptr || !is_integer_type(array->element_type)) raise_type_mismatch(key, "array of integers", *value);
  std::vector<int64_t> result;
  result.reserve(array->values.size());
  for (size_t i = 0; i < array->values.size(); ++i) {
    const std::optional<int64_t> element = as_int64(array->values[i]);
    if (!element) raise<FormatError>("metadata key '{}': element {} does not fit int64", key, i);
    result.push_back(*element);
  }
  return result;
}

int64_t Metadata::require_int(std::string_view key) const {
  const std::optional<int64_t> value = get_int(key);
  if (!value) raise<FormatError>("metadata key '{}' is missing; expected an integer", key);
  return *value;
}

double Metadata::require_float(std::string_view key) const {
  const std::optional<double> value = get_float(key);
  if (!value) raise<FormatError>("metadata key '{}' is missing; expected a number", key);
  return *value;
}

std::string Metadata::require_string(std::string_view key) const {
  std::optional<std::string> value = get_string(key);
  if (!value) raise<FormatError>("metadata key '{}' is missing; expected a string", key);
  return std::move(*value);
}

void Metadata::set_u32(std::string key, uint32_t v) { set(std::move(key), MetaValue{MetaType::UINT32, uint64_t{v}}); }

void Metadata::set_i32(std::string key, int32_t v) { set(std::move(key), MetaValue{MetaType::INT32, int64_t{v}}); }

void Metadata::set_f32(std::string key, float v) {
  set(std::move(key), MetaValue{MetaType::FLOAT32, static_cast<double>(v)});
}

void Metadata::set_bool(std::string key, bool v) { set(std::move(key), MetaValue{MetaType::BOOL, v}); }

void Metadata::set_string(std::string key, std::string v) {
  set(std::move(key), MetaValue{MetaType::STRING, std::move(v)});
}

void Metadata::set_string_array(std::string key, std::vector<std::string> v) {
  MetaArray array{MetaType::STRING, {}};
  array.values.reserve(v.size());
  for (std::string& s : v) array.values.push_back(MetaValue{MetaType::STRING, std::move(s)});
  set(std::move(key), MetaValue{MetaType::ARRAY, std::move(array)});
}

void Metadata::set_f32_array(std::string key, const std::vector<float>& v) {
  MetaArray array{MetaType::FLOAT32, {}};
  array.values.reserve(v.size());
  for (float f : v) array.values.push_back(MetaValue{MetaType::FLOAT32, static_cast<double>(f)});
  set(std::move(key), MetaValue{MetaType::ARRAY, std::move(array)});
}

void Metadata::set_i32_array(std::string key, const std::vector<int32_t>& v) {
  MetaArray array{MetaType::INT32, {}};
  array.values.reserve(v.size());
  for (int32_t i : v) array.values.push_back(MetaValue{MetaType::INT32, int64_t{i}});
  set(std::move(key), MetaValue{MetaType::ARRAY, std::move(array)});
}

}  // namespace stepdown::io
