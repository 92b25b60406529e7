// The GGUF reader on small files written byte by byte: every value type, nested arrays,
// general.alignment, versions 2 and 3, and shapes reversed to outermost first.
#include <gtest/gtest.h>

#include <cstring>

#include "gguf_builder.h"
#include "io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/model_file.h"

namespace stepdown::io {
namespace {

using namespace stepdown::test;

ModelFile parse(const std::vector<char>& bytes) {
  return read_gguf(std::as_bytes(std::span(bytes.data(), bytes.size())), "test.gguf");
}

std::string floats(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out += le_bytes(v);
  return out;
}

TEST(Gguf, EveryScalarType) {
  GgufBuilder b;
  b.kv("u8", kU8, le_bytes<uint8_t>(250));
  b.kv("i8", kI8, le_bytes<int8_t>(-100));
  b.kv("u16", kU16, le_bytes<uint16_t>(65000));
  b.kv("i16", kI16, le_bytes<int16_t>(-30000));
  b.kv("u32", kU32, le_bytes<uint32_t>(4000000000u));
  b.kv("i32", kI32, le_bytes<int32_t>(-2000000000));
  b.kv("u64", kU64, le_bytes<uint64_t>(uint64_t{1} << 40));
  b.kv("i64", kI64, le_bytes<int64_t>(-(int64_t{1} << 40)));
  b.kv("f32", kF32, le_bytes<float>(0.1f));
  b.kv("f64", kF64, le_bytes<double>(0.1));
  b.kv("bool", kBool, le_bytes<uint8_t>(1));
  b.kv_string("str", "h\xc3\xa9llo");
  const ModelFile m = parse(b.build());
  const Metadata& md = m.metadata;
  EXPECT_EQ(md.get_int("u8"), 250);
  EXPECT_EQ(md.get_int("i8"), -100);
  EXPECT_EQ(md.get_int("u16"), 65000);
  EXPECT_EQ(md.get_int("i16"), -30000);
  EXPECT_EQ(md.get_int("u32"), 4000000000);
  EXPECT_EQ(md.get_int("i32"), -2000000000);
  EXPECT_EQ(md.get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(md.get_int("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(md.get_float("f32"), static_cast<double>(0.1f));
  EXPECT_EQ(md.get_float("f64"), 0.1);
  EXPECT_EQ(md.get_bool("bool"), true);
  EXPECT_EQ(md.get_string("str"), "h\xc3\xa9llo");
  EXPECT_EQ(md.find("u16")->type, MetaType::UINT16);
  EXPECT_EQ(md.find("f32")->type, MetaType::FLOAT32);
  EXPECT_TRUE(m.tensors.empty());
}

TEST(Gguf, NestedArrays) {
  GgufBuilder b;
  // [[1, 2], [3]] of int32.
  const std::string inner1 = gguf_array(kI32, 2, le_bytes<int32_t>(1) + le_bytes<int32_t>(2));
  const std::string inner2 = gguf_array(kI32, 1, le_bytes<int32_t>(3));
  b.kv("nested", kArray, gguf_array(kArray, 2, inner1 + inner2));
  // [[["a"]], []]: three levels, with an empty array of strings.
  const std::string deepest = gguf_array(kString, 1, gguf_string("a"));
  b.kv("deep", kArray, gguf_array(kArray, 2, gguf_array(kArray, 1, deepest) + gguf_array(kString, 0, "")));
  b.kv("empty", kArray, gguf_array(kF32, 0, ""));
  b.kv("strings", kArray, gguf_array(kString, 2, gguf_string("x") + gguf_string("")));
  const ModelFile m = parse(b.build());

  const auto& nested = std::get<MetaArray>(m.metadata.find("nested")->value);
  EXPECT_EQ(nested.element_type, MetaType::ARRAY);
  ASSERT_EQ(nested.values.size(), 2u);
  const auto& first = std::get<MetaArray>(nested.values[0].value);
  EXPECT_EQ(first.element_type, MetaType::INT32);
  ASSERT_EQ(first.values.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(first.values[1].value), 2);
  EXPECT_EQ(std::get<int64_t>(std::get<MetaArray>(nested.values[1].value).values.at(0).value), 3);

  const auto& deep = std::get<MetaArray>(m.metadata.find("deep")->value);
  const auto& level2 = std::get<MetaArray>(deep.values.at(0).value);
  const auto& level3 = std::get<MetaArray>(level2.values.at(0).value);
  EXPECT_EQ(std::get<std::string>(level3.values.at(0).value), "a");
  const auto& empty_strings = std::get<MetaArray>(deep.values.at(1).value);
  EXPECT_EQ(empty_strings.element_type, MetaType::STRING);
  EXPECT_TRUE(empty_strings.values.empty());

  EXPECT_TRUE(m.metadata.get_float_array("empty")->empty());
  EXPECT_EQ(*m.metadata.get_string_array("strings"), (std::vector<std::string>{"x", ""}));
}

TEST(Gguf, TensorShapesReversedAndAligned) {
  GgufBuilder b;
  b.alignment = 64;
  b.kv_u32("general.alignment", 64);
  b.kv_string("general.architecture", "qwen3");
  b.tensor("a", {3, 2}, 0, floats({1, 2, 3, 4, 5, 6}));  // ne (3, 2): 2 rows of 3
  b.tensor("b", {32}, 8, std::string(34, '\x01'));       // one Q8_0 block
  GgufSections s;
  const std::vector<char> bytes = b.build(&s);
  const ModelFile m = parse(bytes);
  ASSERT_EQ(m.tensors.size(), 2u);
  const TensorView& a = m.tensor("a");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.rows(), 2);
  EXPECT_EQ(a.cols(), 3);
  EXPECT_EQ(a.nbytes, 24u);
  EXPECT_EQ(s.data_start % 64, 0u);
  EXPECT_EQ(a.data, reinterpret_cast<const std::byte*>(bytes.data()) + s.data_start);
  float last = 0;
  std::memcpy(&last, a.data + 20, 4);
  EXPECT_EQ(last, 6.0f);
  const TensorView& q = m.tensor("b");
  EXPECT_EQ(q.dtype, DType::Q8_0);
  EXPECT_EQ(q.nbytes, 34u);
  EXPECT_EQ(q.data - a.data, 64);
  EXPECT_EQ(m.metadata.require_string(kRopeLayoutKey), "neox");
}

TEST(Gguf, VersionTwoAccepted) {
  GgufBuilder b;
  b.version = 2;
  b.kv_string("general.architecture", "llama");
  b.tensor("t", {4}, 1, std::string(8, '\0'));
  const ModelFile m = parse(b.build());
  EXPECT_EQ(m.tensor("t").dtype, DType::F16);
  EXPECT_EQ(m.metadata.require_string(kRopeLayoutKey), "interleaved");
}

TEST(Gguf, VersionOneUnsupported) {
  GgufBuilder b;
  b.version = 1;
  EXPECT_THROW(parse(b.build()), Unsupported);
}

TEST(Gguf, OpenFromDiskKeepsMapping) {
  ScratchDir dir("gguf");
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.tensor("token_embd.weight", {2, 2}, 0, floats({1, 2, 3, 4}));
  write_bytes(dir / "m.gguf", b.build());
  const ModelFile m = open_model_file(dir / "m.gguf");
  EXPECT_EQ(m.format, ModelFormat::GGUF);
  ASSERT_EQ(m.mappings.size(), 1u);
  float v = 0;
  std::memcpy(&v, m.tensor("token_embd.weight").data + 12, 4);
  EXPECT_EQ(v, 4.0f);
}

}  // namespace
}  // namespace stepdown::io
