#include "stepdown/eval/json_schema.h"

#include <cmath>
#include <utility>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics_regex.h"

namespace stepdown::eval {

using nlohmann::json;

namespace {

enum TypeBit : uint32_t {
  kNull = 1u << 0,
  kBoolean = 1u << 1,
  kObject = 1u << 2,
  kArray = 1u << 3,
  kNumber = 1u << 4,
  kString = 1u << 5,
  kInteger = 1u << 6,
};

constexpr std::pair<std::string_view, uint32_t> kTypeNames[] = {
    {"null", kNull},     {"boolean", kBoolean}, {"object", kObject},   {"array", kArray},
    {"number", kNumber}, {"string", kString},   {"integer", kInteger},
};

constexpr std::string_view kSupportedKeywords =
    "type, properties, required, additionalProperties, items, enum, const, minimum, maximum, minLength, "
    "maxLength, minItems, maxItems, pattern, anyOf, oneOf, allOf";

bool is_annotation(std::string_view keyword) {
  return keyword == "$schema" || keyword == "$id" || keyword == "$comment" || keyword == "title" ||
         keyword == "description" || keyword == "default" || keyword == "examples";
}

// Integers in the JSON Schema sense: any number with no fractional part (so 1.0 counts).
bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double x = value.get<double>();
  return std::isfinite(x) && std::floor(x) == x;
}

std::string_view type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return is_integral(value) ? "integer" : "number";
    default: return "unknown";
  }
}

std::string escape_pointer_token(std::string_view token) {
  std::string escaped;
  for (char c : token) {
    if (c == '~') {
      escaped += "~0";
    } else if (c == '/') {
      escaped += "~1";
    } else {
      escaped.push_back(c);
    }
  }
  return escaped;
}

size_t count_code_points(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::string location(const std::string& pointer) { return pointer.empty() ? "(root)" : pointer; }

}  // namespace

struct JsonSchema::Node {
  std::optional<bool> boolean_schema;  // true accepts every value, false none
  uint32_t types = 0;                  // TypeBit mask; 0 accepts every type
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> properties;
  std::vector<std::string> required;
  std::unique_ptr<Node> additional_properties;
  std::unique_ptr<Node> items;
  std::optional<json> enum_values;  // an array
  std::optional<json> const_value;
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::optional<uint64_t> min_length;
  std::optional<uint64_t> max_length;
  std::optional<uint64_t> min_items;
  std::optional<uint64_t> max_items;
  std::optional<Regex> pattern;
  std::vector<std::unique_ptr<Node>> all_of;
  std::vector<std::unique_ptr<Node>> any_of;
  std::vector<std::unique_ptr<Node>> one_of;
};

namespace {

using Node = JsonSchema::Node;

std::unique_ptr<Node> compile_node(const json& schema, const std::string& pointer);

uint64_t read_count(const json& value, std::string_view keyword, const std::string& pointer) {
  if (!is_integral(value) || value.get<double>() < 0) {
    raise<InvalidArgument>("JSON Schema keyword '{}' at {}: expected a non-negative integer, found {}", keyword,
                           location(pointer), value.dump());
  }
  return value.get<uint64_t>();
}

double read_number(const json& value, std::string_view keyword, const std::string& pointer) {
  if (!value.is_number()) {
    raise<InvalidArgument>("JSON Schema keyword '{}' at {}: expected a number, found {}", keyword,
                           location(pointer), value.dump());
  }
  return value.get<double>();
}

uint32_t read_types(const json& value, const std::string& pointer) {
  std::vector<json> names;
  if (value.is_string()) {
    names.push_back(value);
  } else if (value.is_array() && !value.empty()) {
    names.assign(value.begin(), value.end());
  } else {
    raise<InvalidArgument>("JSON Schema keyword 'type' at {}: expected a type name or an array of them, found {}",
                           location(pointer), value.dump());
  }
  uint32_t mask = 0;
  for (const json& name : names) {
    bool known = false;
    for (const auto& [type, bit] : kTypeNames) {
      if (name.is_string() && name.get<std::string>() == type) {
        mask |= bit;
        known = true;
      }
    }
    if (!known) {
      raise<InvalidArgument>(
          "JSON Schema keyword 'type' at {}: invalid type {}; expected null, boolean, object, array, number, "
          "string or integer",
          location(pointer), name.dump());
    }
  }
  return mask;
}

std::vector<std::unique_ptr<Node>> compile_list(const json& value, std::string_view keyword,
                                                const std::string& pointer) {
  if (!value.is_array() || value.empty()) {
    raise<InvalidArgument>("JSON Schema keyword '{}' at {}: expected a non-empty array of schemas, found {}",
                           keyword, location(pointer), value.dump());
  }
  std::vector<std::unique_ptr<Node>> nodes;
  for (size_t i = 0; i < value.size(); ++i) {
    nodes.push_back(compile_node(value[i], fmt::format("{}/{}/{}", pointer, keyword, i)));
  }
  return nodes;
}

std::unique_ptr<Node> compile_node(const json& schema, const std::string& pointer) {
  auto node = std::make_unique<Node>();
  if (schema.is_boolean()) {
    node->boolean_schema = schema.get<bool>();
    return node;
  }
  if (!schema.is_object()) {
    raise<InvalidArgument>("JSON Schema at {}: expected an object or a boolean, found {}", location(pointer),
                           schema.dump());
  }

  for (const auto& [keyword, value] : schema.items()) {
    if (keyword == "type") {
      node->types = read_types(value, pointer);
    } else if (keyword == "properties") {
      if (!value.is_object()) {
        raise<InvalidArgument>("JSON Schema keyword 'properties' at {}: expected an object, found {}",
                               location(pointer), value.dump());
      }
      for (const auto& [name, property] : value.items()) {
        node->properties.emplace_back(
            name, compile_node(property, pointer + "/properties/" + escape_pointer_token(name)));
      }
    } else if (keyword == "required") {
      if (!value.is_array()) {
        raise<InvalidArgument>("JSON Schema keyword 'required' at {}: expected an array of strings, found {}",
                               location(pointer), value.dump());
      }
      for (const json& name : value) {
        if (!name.is_string()) {
          raise<InvalidArgument>("JSON Schema keyword 'required' at {}: expected an array of strings, found {}",
                                 location(pointer), value.dump());
        }
        node->required.push_back(name.get<std::string>());
      }
    } else if (keyword == "additionalProperties") {
      node->additional_properties = compile_node(value, pointer + "/additionalProperties");
    } else if (keyword == "items") {
      if (value.is_array()) {
        raise<Unsupported>(
            "JSON Schema keyword 'items' at {} is an array (tuple validation), which is not supported; use one "
            "schema for every item",
            location(pointer));
      }
      node->items = compile_node(value, pointer + "/items");
    } else if (keyword == "enum") {
      if (!value.is_array()) {
        raise<InvalidArgument>("JSON Schema keyword 'enum' at {}: expected an array, found {}", location(pointer),
                               value.dump());
      }
      node->enum_values = value;
    } else if (keyword == "const") {
      node->const_value = value;
    } else if (keyword == "minimum") {
      node->minimum = read_number(value, keyword, pointer);
    } else if (keyword == "maximum") {
      node->maximum = read_number(value, keyword, pointer);
    } else if (keyword == "minLength") {
      node->min_length = read_count(value, keyword, pointer);
    } else if (keyword == "maxLength") {
      node->max_length = read_count(value, keyword, pointer);
    } else if (keyword == "minItems") {
      node->min_items = read_count(value, keyword, pointer);
    } else if (keyword == "maxItems") {
      node->max_items = read_count(value, keyword, pointer);
    } else if (keyword == "pattern") {
      if (!value.is_string()) {
        raise<InvalidArgument>("JSON Schema keyword 'pattern' at {}: expected a string, found {}",
                               location(pointer), value.dump());
      }
      try {
        node->pattern.emplace(value.get<std::string>());
      } catch (const InvalidArgument& e) {
        raise<InvalidArgument>("JSON Schema keyword 'pattern' at {}: {}", location(pointer), e.what());
      }
    } else if (keyword == "allOf") {
      node->all_of = compile_list(value, keyword, pointer);
    } else if (keyword == "anyOf") {
      node->any_of = compile_list(value, keyword, pointer);
    } else if (keyword == "oneOf") {
      node->one_of = compile_list(value, keyword, pointer);
    } else if (!is_annotation(keyword)) {
      raise<Unsupported>("JSON Schema keyword '{}' at {} is not supported; supported keywords: {}", keyword,
                         location(pointer), kSupportedKeywords);
    }
  }
  return node;
}

std::optional<std::string> check(const Node& node, const json& instance, const std::string& pointer);

std::optional<std::string> check_object(const Node& node, const json& instance, const std::string& pointer) {
  for (const std::string& name : node.required) {
    if (!instance.contains(name)) return fmt::format("{}: missing required property '{}'", location(pointer), name);
  }
  for (const auto& [key, value] : instance.items()) {
    const std::string child = pointer + "/" + escape_pointer_token(key);
    const Node* property_schema = nullptr;
    for (const auto& [name, schema] : node.properties) {
      if (name == key) property_schema = schema.get();
    }
    if (property_schema != nullptr) {
      if (auto error = check(*property_schema, value, child)) return error;
    } else if (node.additional_properties) {
      if (node.additional_properties->boolean_schema == false) {
        return fmt::format("{}: property '{}' is not allowed (additionalProperties is false)", location(pointer),
                           key);
      }
      if (auto error = check(*node.additional_properties, value, child)) return error;
    }
  }
  return std::nullopt;
}

std::optional<std::string> check(const Node& node, const json& instance, const std::string& pointer) {
  if (node.boolean_schema) {
    if (*node.boolean_schema) return std::nullopt;
    return fmt::format("{}: no value is allowed here (schema false)", location(pointer));
  }

  if (node.types != 0) {
    uint32_t bit = 0;
    for (const auto& [type, type_bit] : kTypeNames) {
      if (type == type_name(instance)) bit = type_bit;
    }
    // An integer is also a number.
    const bool matches = (node.types & bit) != 0 || (bit == kInteger && (node.types & kNumber) != 0);
    if (!matches) {
      std::string expected;
      for (const auto& [type, type_bit] : kTypeNames) {
        if ((node.types & type_bit) == 0) continue;
        if (!expected.empty()) expected += " or ";
        expected += type;
      }
      return fmt::format("{}: expected {}, found {}", location(pointer), expected, type_name(instance));
    }
  }

  if (node.enum_values) {
    bool found = false;
    for (const json& allowed : *node.enum_values) found = found || allowed == instance;
    if (!found) {
      return fmt::format("{}: {} is not one of {}", location(pointer), instance.dump(), node.enum_values->dump());
    }
  }
  if (node.const_value && *node.const_value != instance) {
    return fmt::format("{}: expected {}, found {}", location(pointer), node.const_value->dump(), instance.dump());
  }

  if (instance.is_number()) {
    const double x = instance.get<double>();
    if (node.minimum && x < *node.minimum) {
      return fmt::format("{}: {} is less than the minimum {}", location(pointer), instance.dump(), *node.minimum);
    }
    if (node.maximum && x > *node.maximum) {
      return fmt::format("{}: {} is greater than the maximum {}", location(pointer), instance.dump(), *node.maximum);
    }
  }

  if (instance.is_string()) {
    const std::string& text = instance.get_ref<const std::string&>();
    const size_t length = count_code_points(text);
    if (node.min_length && length < *node.min_length) {
      return fmt::format("{}: string of {} characters is shorter than minLength {}", location(pointer), length,
                         *node.min_length);
    }
    if (node.max_length && length > *node.max_length) {
      return fmt::format("{}: string of {} characters is longer than maxLength {}", location(pointer), length,
                         *node.max_length);
    }
    if (node.pattern && !node.pattern->search(text)) {
      return fmt::format("{}: {} does not match the pattern '{}'", location(pointer), instance.dump(),
                         node.pattern->pattern());
    }
  }

  if (instance.is_array()) {
    if (node.min_items && instance.size() < *node.min_items) {
      return fmt::format("{}: array of {} items is shorter than minItems {}", location(pointer), instance.size(),
                         *node.min_items);
    }
    if (node.max_items && instance.size() > *node.max_items) {
      return fmt::format("{}: array of {} items is longer than maxItems {}", location(pointer), instance.size(),
                         *node.max_items);
    }
    if (node.items) {
      for (size_t i = 0; i < instance.size(); ++i) {
        if (auto error = check(*node.items, instance[i], fmt::format("{}/{}", pointer, i))) return error;
      }
    }
  }

  if (instance.is_object()) {
    if (auto error = check_object(node, instance, pointer)) return error;
  }

  for (const auto& sub : node.all_of) {
    if (auto error = check(*sub, instance, pointer)) return error;
  }
  if (!node.any_of.empty()) {
    std::optional<std::string> first_error;
    bool any = false;
    for (const auto& sub : node.any_of) {
      auto error = check(*sub, instance, pointer);
      if (!error) {
        any = true;
        break;
      }
      if (!first_error) first_error = error;
    }
    if (!any) return fmt::format("{}: matches none of the anyOf schemas; the first fails with: {}", location(pointer), *first_error);
  }
  if (!node.one_of.empty()) {
    size_t matches = 0;
    std::optional<std::string> first_error;
    for (const auto& sub : node.one_of) {
      auto error = check(*sub, instance, pointer);
      if (!error) {
        ++matches;
      } else if (!first_error) {
        first_error = error;
      }
    }
    if (matches == 0) {
      return fmt::format("{}: matches none of the oneOf schemas; the first fails with: {}", location(pointer),
                         *first_error);
    }
    if (matches > 1) {
      return fmt::format("{}: matches {} of the oneOf schemas; exactly one is allowed", location(pointer), matches);
    }
  }
  return std::nullopt;
}

}  // namespace

JsonSchema::JsonSchema(const json& schema) : root_(compile_node(schema, "")) {}
JsonSchema::~JsonSchema() = default;
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;

std::optional<std::string> JsonSchema::validate(const json& instance) const { return check(*root_, instance, ""); }

}  // namespace stepdown::eval
