// Metadata's typed reads: integer widening, float from integers, and errors that name the
// key with the expected and found types.
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/io/metadata.h"

namespace stepdown::io {
namespace {

TEST(Metadata, IntegerReadsAcceptEveryWidth) {
  Metadata m;
  m.set_u32("a", 4000000000u);
  m.set_i32("b", -7);
  m.set("c", MetaValue{MetaType::UINT8, uint64_t{255}});
  m.set("d", MetaValue{MetaType::UINT64, uint64_t{1} << 63});
  EXPECT_EQ(m.get_int("a"), 4000000000);
  EXPECT_EQ(m.get_int("b"), -7);
  EXPECT_EQ(m.get_int("c"), 255);
  EXPECT_FALSE(m.get_int("missing").has_value());
  EXPECT_THROW(m.get_int("d"), FormatError);  // does not fit int64
}

TEST(Metadata, FloatsAndStrings) {
  Metadata m;
  m.set_f32("f", 0.5f);
  m.set_u32("i", 10000);
  m.set_string("s", "llama");
  m.set_bool("b", true);
  EXPECT_DOUBLE_EQ(*m.get_float("f"), 0.5);
  EXPECT_DOUBLE_EQ(*m.get_float("i"), 10000.0);
  EXPECT_EQ(m.require_string("s"), "llama");
  EXPECT_EQ(m.get_bool("b"), true);
}

TEST(Metadata, ArraysKeepElementType) {
  Metadata m;
  m.set_string_array("tokens", {"a", "b"});
  m.set_f32_array("scores", {1.5f, -2.0f});
  m.set_i32_array("types", {1, 2, 3});
  EXPECT_EQ(*m.get_string_array("tokens"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*m.get_float_array("scores"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(*m.get_int_array("types"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_THROW(m.get_string_array("scores"), FormatError);
}

TEST(Metadata, MismatchMessageNamesKeyAndTypes) {
  Metadata m;
  m.set_string("general.architecture", "llama");
  try {
    m.get_int("general.architecture");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("general.architecture"), std::string::npos) << message;
    EXPECT_NE(message.find("string"), std::string::npos) << message;
  }
  try {
    m.require_int("llama.block_count");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("llama.block_count"), std::string::npos);
  }
}

}  // namespace
}  // namespace stepdown::io
