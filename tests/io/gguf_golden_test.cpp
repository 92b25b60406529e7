// The GGUF reader against gguf-py's GGUFReader on the two fetched models: every metadata
// key, type and value, and every tensor's type, shape, offset, size and bytes (CRC-32).
// Fixtures come from scripts/golden/io_gguf_fixture.py.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "crc32.h"
#include "stepdown/io/model_file.h"
#include "test_paths.h"

namespace stepdown::io {
namespace {

using nlohmann::json;

json load_fixture(const std::string& name) {
  std::ifstream in(test::source_dir() / "tests" / "io" / "golden" / name);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  return json::parse(in);
}

// Bytes of one value as GGUF encodes it (strings with their uint64 length), the input of
// the fixture's array checksums.
void append_encoded(std::string& out, const MetaValue& v) {
  auto append = [&out](const auto& x) { out.append(reinterpret_cast<const char*>(&x), sizeof(x)); };
  switch (v.type) {
    case MetaType::UINT8: append(static_cast<uint8_t>(std::get<uint64_t>(v.value))); break;
    case MetaType::INT8: append(static_cast<int8_t>(std::get<int64_t>(v.value))); break;
    case MetaType::UINT16: append(static_cast<uint16_t>(std::get<uint64_t>(v.value))); break;
    case MetaType::INT16: append(static_cast<int16_t>(std::get<int64_t>(v.value))); break;
    case MetaType::UINT32: append(static_cast<uint32_t>(std::get<uint64_t>(v.value))); break;
    case MetaType::INT32: append(static_cast<int32_t>(std::get<int64_t>(v.value))); break;
    case MetaType::UINT64: append(std::get<uint64_t>(v.value)); break;
    case MetaType::INT64: append(std::get<int64_t>(v.value)); break;
    case MetaType::FLOAT32: append(static_cast<float>(std::get<double>(v.value))); break;
    case MetaType::FLOAT64: append(std::get<double>(v.value)); break;
    case MetaType::BOOL: append(static_cast<uint8_t>(std::get<bool>(v.value) ? 1 : 0)); break;
    case MetaType::STRING: {
      const std::string& s = std::get<std::string>(v.value);
      append(static_cast<uint64_t>(s.size()));
      out += s;
      break;
    }
    case MetaType::ARRAY: ADD_FAILURE() << "nested array in fixture"; break;
  }
}

// The value as the fixture's JSON writes it.
json to_json(const MetaValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.value)) return *i;
  if (const auto* d = std::get_if<double>(&v.value)) return *d;
  if (const auto* b = std::get_if<bool>(&v.value)) return *b;
  if (const auto* s = std::get_if<std::string>(&v.value)) return *s;
  return nullptr;
}

void compare_with_fixture(const std::string& model_name, const std::string& fixture_name) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(path, model_name);
  const json fixture = load_fixture(fixture_name);
  const ModelFile model = open_model_file(path);
  ASSERT_EQ(model.format, ModelFormat::GGUF);

  // Metadata: the same keys (plus stepdown's RoPE layout key), types and values.
  size_t gguf_keys = 0;
  for (const auto& [key, value] : model.metadata.entries()) gguf_keys += key.starts_with("stepdown.") ? 0 : 1;
  EXPECT_EQ(gguf_keys, fixture["metadata"].size());
  for (const json& entry : fixture["metadata"]) {
    const std::string key = entry["key"];
    SCOPED_TRACE(key);
    const MetaValue* value = model.metadata.find(key);
    ASSERT_NE(value, nullptr);
    EXPECT_EQ(meta_type_name(value->type), entry["type"].get<std::string>());
    if (value->type != MetaType::ARRAY) {
      if (entry.contains("value")) {
        EXPECT_EQ(to_json(*value), entry["value"]);
      } else {
        const std::string& s = std::get<std::string>(value->value);
        EXPECT_EQ(s.size(), entry["length"].get<size_t>());
        std::string encoded;
        append_encoded(encoded, *value);
        EXPECT_EQ(test::crc32(encoded.data(), encoded.size()), entry["crc32"].get<uint32_t>());
      }
      continue;
    }
    const MetaArray& array = std::get<MetaArray>(value->value);
    EXPECT_EQ(meta_type_name(array.element_type), entry["element_type"].get<std::string>());
    ASSERT_EQ(array.values.size(), entry["length"].get<size_t>());
    const json& prefix = entry["prefix"];
    for (size_t i = 0; i < prefix.size(); ++i) EXPECT_EQ(to_json(array.values[i]), prefix[i]) << "element " << i;
    std::string encoded;
    for (const MetaValue& element : array.values) append_encoded(encoded, element);
    EXPECT_EQ(test::crc32(encoded.data(), encoded.size()), entry["crc32"].get<uint32_t>());
  }

  // Tensors: same order, ggml type, shape, absolute offset, size and bytes.
  const std::byte* base = model.mappings.at(0)->data();
  ASSERT_EQ(model.tensors.size(), fixture["tensors"].size());
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const TensorView& t = model.tensors[i];
    const json& expected = fixture["tensors"][i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, expected["name"].get<std::string>());
    EXPECT_EQ(static_cast<uint32_t>(t.dtype), expected["type"].get<uint32_t>());
    EXPECT_EQ(t.shape, expected["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(static_cast<uint64_t>(t.data - base), expected["offset"].get<uint64_t>());
    EXPECT_EQ(t.nbytes, expected["nbytes"].get<size_t>());
    EXPECT_EQ(test::crc32(t.data, t.nbytes), expected["crc32"].get<uint32_t>());
  }
}

TEST(GgufGolden, SmolLM2MatchesGgufPy) {
  compare_with_fixture("SmolLM2-135M-Instruct.Q4_1.gguf", "gguf_smollm2_135m_q4_1.json");
}

TEST(GgufGolden, Gemma3MatchesGgufPy) {
  compare_with_fixture("gemma-3-270m-q4_k_m.gguf", "gguf_gemma3_270m_q4_k_m.json");
}

TEST(GgufGolden, RopeLayoutFromArchitecture) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(smollm2, "SmolLM2-135M-Instruct.Q4_1.gguf");
  EXPECT_EQ(open_model_file(smollm2).metadata.require_string(kRopeLayoutKey), "interleaved");
  STEPDOWN_REQUIRE_FETCHED_MODEL(gemma3, "gemma-3-270m-q4_k_m.gguf");
  EXPECT_EQ(open_model_file(gemma3).metadata.require_string(kRopeLayoutKey), "neox");
}

}  // namespace
}  // namespace stepdown::io
