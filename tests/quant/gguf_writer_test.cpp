// GGUF writer round trips: read back with stepdown's reader and with gguf-py
// (scripts/golden/dump_gguf.py), which must agree on every key, value type and tensor.
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/gguf_writer.h"
#include "stepdown/quant/sha256.h"
#include "test_paths.h"

namespace stepdown::io {
namespace {

MetaValue scalar(MetaType type, uint64_t bits) { return {type, bits}; }

// Equality of two non-array values (std::variant's operator== needs MetaArray's).
bool scalar_equal(const MetaValue& a, const MetaValue& b) {
  if (a.value.index() != b.value.index()) return false;
  if (const auto* u = std::get_if<uint64_t>(&a.value)) return *u == std::get<uint64_t>(b.value);
  if (const auto* i = std::get_if<int64_t>(&a.value)) return *i == std::get<int64_t>(b.value);
  if (const auto* d = std::get_if<double>(&a.value)) return *d == std::get<double>(b.value);
  if (const auto* f = std::get_if<bool>(&a.value)) return *f == std::get<bool>(b.value);
  return std::get<std::string>(a.value) == std::get<std::string>(b.value);
}

Metadata every_type_metadata() {
  Metadata m;
  m.set("t.u8", {MetaType::UINT8, uint64_t{200}});
  m.set("t.i8", {MetaType::INT8, int64_t{-100}});
  m.set("t.u16", {MetaType::UINT16, uint64_t{60000}});
  m.set("t.i16", {MetaType::INT16, int64_t{-30000}});
  m.set("t.u32", {MetaType::UINT32, uint64_t{4000000000u}});
  m.set("t.i32", {MetaType::INT32, int64_t{-2000000000}});
  m.set("t.u64", {MetaType::UINT64, uint64_t{1} << 60});
  m.set("t.i64", {MetaType::INT64, -(int64_t{1} << 60)});
  m.set("t.f32", {MetaType::FLOAT32, 0.25});
  m.set("t.f64", {MetaType::FLOAT64, 1.0 / 3.0});
  m.set("t.bool", {MetaType::BOOL, true});
  m.set("t.string", {MetaType::STRING, std::string("héllo\nworld")});
  m.set_string_array("t.strings", {"a", "", "ü"});
  m.set_i32_array("t.i32s", {1, -2, 3});
  m.set_f32_array("t.f32s", {0.5f, -1.5f});
  m.set("t.empty", {MetaType::ARRAY, MetaArray{MetaType::UINT8, {}}});
  m.set("t.u16s", {MetaType::ARRAY, MetaArray{MetaType::UINT16, {scalar(MetaType::UINT16, 7), scalar(MetaType::UINT16, 9)}}});
  m.set_string("general.architecture", "llama");
  return m;
}

struct Written {
  std::vector<GgufTensorInfo> infos;
  std::vector<std::vector<std::byte>> data;
};

Written sample_tensors() {
  Written w;
  const auto add = [&](std::string name, DType dtype, std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    std::vector<std::byte> bytes(dtype_bytes(dtype, numel));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>((i * 37 + name.size()) & 0x7f);
    w.infos.push_back({std::move(name), dtype, std::move(shape)});
    w.data.push_back(std::move(bytes));
  };
  add("a.weight", DType::F32, {3, 5});  // 60 bytes: the next tensor needs padding
  add("b.weight", DType::Q4_0, {2, 64});
  add("c.weight", DType::Q6_K, {1, 256});
  add("d.bias", DType::F16, {7});
  return w;
}

TEST(GgufWriter, RoundTripsThroughStepdownReader) {
  test::ScratchDir dir("gguf_writer");
  const Metadata metadata = every_type_metadata();
  const Written w = sample_tensors();
  write_gguf(dir / "out.gguf", metadata, w.infos, [&](size_t i) { return w.data[i]; });

  const ModelFile file = open_gguf(dir / "out.gguf");
  for (const auto& [key, value] : metadata.entries()) {
    const MetaValue* back = file.metadata.find(key);
    ASSERT_NE(back, nullptr) << key;
    EXPECT_EQ(back->type, value.type) << key;
    if (value.type == MetaType::FLOAT32) {
      EXPECT_EQ(std::get<double>(back->value), std::get<double>(value.value)) << key;
    } else if (value.type != MetaType::ARRAY) {
      EXPECT_TRUE(scalar_equal(*back, value)) << key;
    } else {
      const auto& a = std::get<MetaArray>(value.value);
      const auto& b = std::get<MetaArray>(back->value);
      EXPECT_EQ(a.element_type, b.element_type) << key;
      ASSERT_EQ(a.values.size(), b.values.size()) << key;
      for (size_t i = 0; i < a.values.size(); ++i) {
        if (a.element_type == MetaType::FLOAT32) {
          EXPECT_FLOAT_EQ(std::get<double>(a.values[i].value), std::get<double>(b.values[i].value)) << key;
        } else {
          EXPECT_TRUE(scalar_equal(a.values[i], b.values[i])) << key << "[" << i << "]";
        }
      }
    }
  }
  ASSERT_EQ(file.tensors.size(), w.infos.size());
  for (size_t i = 0; i < w.infos.size(); ++i) {
    const TensorView& t = file.tensor(w.infos[i].name);
    EXPECT_EQ(t.dtype, w.infos[i].dtype) << t.name;
    EXPECT_EQ(t.shape, w.infos[i].shape) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, reinterpret_cast<uintptr_t>(file.tensors[0].data) % 32)
        << t.name << " is not 32-byte aligned relative to the data section";
    ASSERT_EQ(t.nbytes, w.data[i].size()) << t.name;
    EXPECT_EQ(std::memcmp(t.data, w.data[i].data(), t.nbytes), 0) << t.name;
  }
}

TEST(GgufWriter, GgufPyReadsSameMetadataAndTensors) {
  test::ScratchDir dir("gguf_writer_py");
  Metadata metadata = every_type_metadata();
  metadata.set("general.alignment", {MetaType::UINT32, uint64_t{64}});
  const Written w = sample_tensors();
  write_gguf(dir / "out.gguf", metadata, w.infos, [&](size_t i) { return w.data[i]; });

  const std::string command = "python3 " + (test::source_dir() / "scripts/golden/dump_gguf.py").string() + " " +
                              (dir / "out.gguf").string() + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  ASSERT_NE(pipe, nullptr);
  std::string text;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) text.append(buffer.data(), n);
  ASSERT_FALSE(text.empty()) << command << " printed nothing; is gguf-py installed?";
  const nlohmann::json dump = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(dump.is_discarded()) << command << " printed:\n" << text;

  EXPECT_EQ(dump.at("alignment"), 64);
  EXPECT_EQ(dump.at("data_offset").get<int64_t>() % 64, 0);
  const nlohmann::json& meta = dump.at("metadata");
  EXPECT_EQ(meta.size(), metadata.entries().size());
  for (const auto& [key, value] : metadata.entries()) {
    ASSERT_TRUE(meta.contains(key)) << key;
    // gguf-py spells the type names in upper case.
    std::string type_name(meta_type_name(value.type));
    for (char& c : type_name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(meta.at(key).at("types").at(0).get<std::string>(), type_name) << key;
  }
  EXPECT_EQ(meta.at("t.u64").at("value").get<uint64_t>(), uint64_t{1} << 60);
  EXPECT_EQ(meta.at("t.i8").at("value").get<int64_t>(), -100);
  EXPECT_DOUBLE_EQ(meta.at("t.f64").at("value").get<double>(), 1.0 / 3.0);
  EXPECT_EQ(meta.at("t.string").at("value").get<std::string>(), "héllo\nworld");
  EXPECT_EQ(meta.at("t.strings").at("value"), nlohmann::json({"a", "", "ü"}));
  EXPECT_EQ(meta.at("t.i32s").at("value"), nlohmann::json({1, -2, 3}));
  EXPECT_EQ(meta.at("t.bool").at("value").get<bool>(), true);

  const nlohmann::json& tensors = dump.at("tensors");
  ASSERT_EQ(tensors.size(), w.infos.size());
  for (size_t i = 0; i < w.infos.size(); ++i) {
    const nlohmann::json& t = tensors.at(i);
    EXPECT_EQ(t.at("name"), w.infos[i].name);
    EXPECT_EQ(t.at("type").get<std::string>(), std::string(dtype_name(w.infos[i].dtype)));
    std::vector<int64_t> innermost_first(w.infos[i].shape.rbegin(), w.infos[i].shape.rend());
    EXPECT_EQ(t.at("shape").get<std::vector<int64_t>>(), innermost_first) << w.infos[i].name;
    EXPECT_EQ(t.at("offset").get<int64_t>() % 64, 0) << w.infos[i].name;
    // Hash the expected bytes the same way through a scratch file.
    const auto bytes_path = dir / ("t" + std::to_string(i));
    test::write_bytes(bytes_path, w.data[i].data(), w.data[i].size());
    EXPECT_EQ(t.at("sha256").get<std::string>(), quant::sha256_path(bytes_path)) << w.infos[i].name;
  }
}

TEST(GgufWriter, WrongTensorSizeLeavesNoFile) {
  test::ScratchDir dir("gguf_writer_bad");
  const Written w = sample_tensors();
  EXPECT_THROW(write_gguf(dir / "out.gguf", Metadata{}, w.infos,
                          [&](size_t i) { return i == 2 ? std::vector<std::byte>(3) : w.data[i]; }),
               InvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.gguf"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "temporary file left behind";
}

}  // namespace
}  // namespace stepdown::io
