// The JSON Schema subset: each keyword accepting and rejecting, error locations, and
// unsupported keywords rejected at compile time.
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/json_schema.h"

namespace stepdown::eval {
namespace {

using nlohmann::json;

bool conforms(const char* schema, const char* instance) {
  return JsonSchema(json::parse(schema)).conforms(json::parse(instance));
}

std::string first_error(const char* schema, const char* instance) {
  return JsonSchema(json::parse(schema)).validate(json::parse(instance)).value_or("");
}

TEST(JsonSchema, Type) {
  EXPECT_TRUE(conforms(R"({"type": "string"})", R"("x")"));
  EXPECT_FALSE(conforms(R"({"type": "string"})", "1"));
  EXPECT_TRUE(conforms(R"({"type": "integer"})", "3"));
  EXPECT_TRUE(conforms(R"({"type": "integer"})", "3.0"));
  EXPECT_FALSE(conforms(R"({"type": "integer"})", "3.5"));
  EXPECT_TRUE(conforms(R"({"type": "number"})", "3"));
  EXPECT_TRUE(conforms(R"({"type": ["null", "boolean"]})", "null"));
  EXPECT_TRUE(conforms(R"({"type": ["null", "boolean"]})", "false"));
  EXPECT_FALSE(conforms(R"({"type": ["null", "boolean"]})", "0"));
  EXPECT_EQ(first_error(R"({"type": "array"})", "{}"), "(root): expected array, found object");
}

TEST(JsonSchema, ObjectKeywords) {
  const char* schema = R"({"type": "object", "required": ["name"],
      "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 3},
                     "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2}},
      "additionalProperties": false})";
  EXPECT_TRUE(conforms(schema, R"({"name": "bob", "tags": ["a"]})"));
  EXPECT_EQ(first_error(schema, R"({"tags": ["a"]})"), "(root): missing required property 'name'");
  EXPECT_EQ(first_error(schema, R"({"name": "bobby"})"), "/name: string of 5 characters is longer than maxLength 3");
  EXPECT_EQ(first_error(schema, R"({"name": ""})"), "/name: string of 0 characters is shorter than minLength 1");
  EXPECT_EQ(first_error(schema, R"({"name": "b", "tags": ["c"]})"), R"(/tags/0: "c" is not one of ["a","b"])");
  EXPECT_EQ(first_error(schema, R"({"name": "b", "tags": []})"), "/tags: array of 0 items is shorter than minItems 1");
  EXPECT_EQ(first_error(schema, R"({"name": "b", "tags": ["a", "a", "b"]})"),
            "/tags: array of 3 items is longer than maxItems 2");
  EXPECT_EQ(first_error(schema, R"({"name": "b", "x": 1})"),
            "(root): property 'x' is not allowed (additionalProperties is false)");
}

TEST(JsonSchema, AdditionalPropertiesSchema) {
  const char* schema = R"({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}})";
  EXPECT_TRUE(conforms(schema, R"({"a": "x", "b": 2})"));
  EXPECT_EQ(first_error(schema, R"({"a": "x", "b": "2"})"), "/b: expected integer, found string");
}

TEST(JsonSchema, StringLengthCountsCodePoints) {
  EXPECT_TRUE(conforms(R"({"maxLength": 3})", R"("été")"));
  EXPECT_FALSE(conforms(R"({"maxLength": 2})", R"("été")"));
}

TEST(JsonSchema, NumberBoundsAreInclusive) {
  const char* schema = R"({"minimum": 1, "maximum": 5})";
  EXPECT_TRUE(conforms(schema, "1"));
  EXPECT_TRUE(conforms(schema, "5"));
  EXPECT_FALSE(conforms(schema, "0.99"));
  EXPECT_EQ(first_error(schema, "6"), "(root): 6 is greater than the maximum 5");
  EXPECT_TRUE(conforms(schema, R"("not a number")"));  // bounds apply to numbers only
}

TEST(JsonSchema, ConstAndEnumCompareNumbersByValue) {
  EXPECT_TRUE(conforms(R"({"const": 1})", "1.0"));
  EXPECT_FALSE(conforms(R"({"const": 1})", "true"));
  EXPECT_TRUE(conforms(R"({"enum": [{"a": [1, 2]}, null]})", R"({"a": [1, 2]})"));
  EXPECT_FALSE(conforms(R"({"enum": [{"a": [1, 2]}, null]})", R"({"a": [2, 1]})"));
}

TEST(JsonSchema, PatternSearchesUnanchored) {
  EXPECT_TRUE(conforms(R"({"pattern": "[0-9]{3}"})", R"("order 123!")"));
  EXPECT_FALSE(conforms(R"({"pattern": "^[0-9]{3}$"})", R"("order 123")"));
}

TEST(JsonSchema, Combinators) {
  const char* any_of = R"({"anyOf": [{"type": "string"}, {"minimum": 10}]})";
  EXPECT_TRUE(conforms(any_of, R"("x")"));
  EXPECT_TRUE(conforms(any_of, "12"));
  EXPECT_FALSE(conforms(any_of, "3"));
  const char* one_of = R"({"oneOf": [{"type": "integer"}, {"minimum": 10}]})";
  EXPECT_TRUE(conforms(one_of, "3"));
  EXPECT_TRUE(conforms(one_of, "10.5"));
  EXPECT_EQ(first_error(one_of, "12"), "(root): matches 2 of the oneOf schemas; exactly one is allowed");
  EXPECT_FALSE(conforms(one_of, "2.5"));
  const char* all_of = R"({"allOf": [{"type": "string"}, {"maxLength": 2}]})";
  EXPECT_TRUE(conforms(all_of, R"("ab")"));
  EXPECT_FALSE(conforms(all_of, R"("abc")"));
}

TEST(JsonSchema, BooleanSchemas) {
  EXPECT_TRUE(conforms("true", "[1, {}]"));
  EXPECT_FALSE(conforms("false", "null"));
  EXPECT_FALSE(conforms(R"({"items": false})", "[1]"));
  EXPECT_TRUE(conforms(R"({"items": false})", "[]"));
}

TEST(JsonSchema, AnnotationsAreAccepted) {
  EXPECT_TRUE(conforms(R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "t",
                          "description": "d", "default": 1, "examples": [1], "$comment": "c", "type": "integer"})",
                       "1"));
}

TEST(JsonSchema, UnsupportedKeywordNamesKeywordAndLocation) {
  try {
    JsonSchema(json::parse(R"({"properties": {"email": {"type": "string", "format": "email"}}})"));
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("keyword 'format' at /properties/email is not supported"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(JsonSchema(json::parse(R"({"$ref": "#/defs/a"})")), Unsupported);
  EXPECT_THROW(JsonSchema(json::parse(R"({"items": [{"type": "string"}]})")), Unsupported);
  EXPECT_THROW(JsonSchema(json::parse(R"({"exclusiveMinimum": 0})")), Unsupported);
}

TEST(JsonSchema, MalformedKeywordValues) {
  EXPECT_THROW(JsonSchema(json::parse(R"({"type": "text"})")), InvalidArgument);
  EXPECT_THROW(JsonSchema(json::parse(R"({"required": "name"})")), InvalidArgument);
  EXPECT_THROW(JsonSchema(json::parse(R"({"minLength": -1})")), InvalidArgument);
  EXPECT_THROW(JsonSchema(json::parse(R"({"pattern": "("})")), InvalidArgument);
  EXPECT_THROW(JsonSchema(json::parse(R"({"anyOf": []})")), InvalidArgument);
  EXPECT_THROW(JsonSchema(json::parse("3")), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::eval
