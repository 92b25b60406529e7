#pragma once
// A JSON Schema validator for the subset that extraction tasks use (draft 2020-12
// semantics): type, properties, required, additionalProperties, items (one schema),
// enum, const, minimum, maximum, minLength, maxLength, minItems, maxItems, pattern,
// anyOf, oneOf, allOf, and boolean schemas. The annotations $schema, $id, $comment,
// title, description, default and examples are accepted and have no effect. Any other
// keyword ($ref, format, prefixItems, exclusiveMinimum, ...) is rejected when the schema
// is compiled, so a constraint is never silently skipped.
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace stepdown::eval {

class JsonSchema {
 public:
  // Compiles `schema`. Throws Unsupported naming a keyword outside the subset and its
  // location (a JSON pointer into the schema), InvalidArgument for a keyword whose value
  // has the wrong type or an invalid pattern.
  explicit JsonSchema(const nlohmann::json& schema);
  ~JsonSchema();
  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;

  // The first violation as "POINTER: what failed" (POINTER locates the value in
  // `instance`; empty for the root), or nullopt when `instance` conforms.
  std::optional<std::string> validate(const nlohmann::json& instance) const;
  bool conforms(const nlohmann::json& instance) const { return !validate(instance); }

  struct Node;

 private:
  std::unique_ptr<Node> root_;
};

}  // namespace stepdown::eval
