// stepdown's GGUF container (io/gguf_container.h). Stepdown-format tensors are written as
// I8 byte matrices with namespaced keys and read back in their own DType and logical
// shape. gguf-py (scripts/golden/dump_gguf.py) reads the same file. Malformed container
// keys give a FormatError that names the tensor and the key.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <span>

#include <nlohmann/json.hpp>

#include "io/gguf_builder.h"
#include "io/io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/core/sha256.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/gguf_container.h"
#include "stepdown/io/gguf_writer.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/fp8_calibrated.h"
#include "stepdown/quant/rtn_int.h"
#include "test_paths.h"

namespace stepdown::io {
namespace {

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> bytes(n);
  for (std::byte& b : bytes) b = static_cast<std::byte>(rng() & 0xff);
  return bytes;
}

struct Sample {
  std::vector<GgufTensorInfo> infos;
  std::vector<std::vector<std::byte>> data;
};

// INT4_G128 (3, 256), INT8 with its per-row f32 scale (2, 5), INT3_G64_ASYM (4, 64) and a
// plain F32 vector, so the file mixes container and GGUF tensors.
Sample sample() {
  Sample s;
  s.infos = {{"blk.0.attn_q.weight", DType::INT4_G128, {3, 256}},
             {"blk.0.ffn_up.weight", DType::INT8, {2, 5}},
             {"blk.0.ffn_down.weight", DType::INT3_G64_ASYM, {4, 64}},
             {"output_norm.weight", DType::F32, {4}}};
  uint32_t seed = 1;
  for (const GgufTensorInfo& info : s.infos) {
    s.data.push_back(random_bytes(static_cast<size_t>(info.shape.size() == 2 ? info.shape[0] : 1) *
                                      dtype_bytes(info.dtype, info.shape.back()),
                                  seed++));
  }
  return s;
}

std::string run_command(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string text;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) text.append(buffer.data(), n);
  return text;
}

TEST(GgufContainer, ReaderRestoresFormatAndShape) {
  test::ScratchDir dir("container_roundtrip");
  const Sample s = sample();
  Metadata metadata;
  metadata.set_string("general.architecture", "llama");
  // A stale key from an older file: the writer replaces container keys with its own.
  metadata.set_string("stepdown.tensor.gone.weight.format", "int8");
  write_gguf(dir / "c.gguf", metadata, s.infos, [&](size_t i) { return s.data[i]; });

  const ModelFile file = open_gguf(dir / "c.gguf");
  ASSERT_EQ(file.tensors.size(), s.infos.size());
  for (size_t i = 0; i < s.infos.size(); ++i) {
    const TensorView& t = file.tensors[i];
    EXPECT_EQ(t.name, s.infos[i].name);
    EXPECT_EQ(t.dtype, s.infos[i].dtype) << t.name;
    EXPECT_EQ(t.shape, s.infos[i].shape) << t.name;
    ASSERT_EQ(t.nbytes, s.data[i].size()) << t.name;
    EXPECT_EQ(std::memcmp(t.data, s.data[i].data(), t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(file.tensor("blk.0.ffn_up.weight").row_bytes(), 9u);  // f32 scale + 5 codes
  EXPECT_EQ(file.metadata.get_int(kContainerVersionKey), 1);
  EXPECT_EQ(file.metadata.get_string(container_format_key("blk.0.attn_q.weight")), "int4-g128");
  EXPECT_EQ(file.metadata.get_string(container_format_key("blk.0.ffn_down.weight")), "int3-g64-asym");
  EXPECT_EQ(file.metadata.get_int_array(container_shape_key("blk.0.ffn_up.weight")), (std::vector<int64_t>{2, 5}));
  EXPECT_FALSE(file.metadata.contains("stepdown.tensor.gone.weight.format"));
  EXPECT_FALSE(file.metadata.contains(container_format_key("output_norm.weight")));
}

TEST(GgufContainer, FileWithoutStepdownFormatsHasNoContainerKeys) {
  test::ScratchDir dir("container_none");
  std::vector<std::byte> data(16);
  write_gguf(dir / "plain.gguf", Metadata{}, {{"v", DType::F32, {4}}}, [&](size_t) { return data; });
  const ModelFile file = open_gguf(dir / "plain.gguf");
  EXPECT_FALSE(file.metadata.contains(kContainerVersionKey));
}

TEST(GgufContainer, GgufPyReadsI8Matrices) {
  test::ScratchDir dir("container_gguf_py");
  const Sample s = sample();
  write_gguf(dir / "c.gguf", Metadata{}, s.infos, [&](size_t i) { return s.data[i]; });
  const std::string command = "python3 " + (test::source_dir() / "scripts/golden/dump_gguf.py").string() + " " +
                              (dir / "c.gguf").string() + " 2>&1";
  const std::string text = run_command(command);
  const nlohmann::json dump = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(dump.is_discarded()) << command << " printed:\n" << text;

  const nlohmann::json& tensors = dump.at("tensors");
  ASSERT_EQ(tensors.size(), s.infos.size());
  // gguf-py lists shapes innermost first: (row_bytes, rows) for a matrix.
  EXPECT_EQ(tensors[0].at("type"), "I8");
  EXPECT_EQ(tensors[0].at("shape"), nlohmann::json({66 * 2, 3}));
  EXPECT_EQ(tensors[1].at("type"), "I8");
  EXPECT_EQ(tensors[1].at("shape"), nlohmann::json({9, 2}));
  EXPECT_EQ(tensors[2].at("type"), "I8");
  EXPECT_EQ(tensors[2].at("shape"), nlohmann::json({28, 4}));
  EXPECT_EQ(tensors[3].at("type"), "F32");
  for (size_t i = 0; i < s.infos.size(); ++i) {
    const std::string_view bytes(reinterpret_cast<const char*>(s.data[i].data()), s.data[i].size());
    EXPECT_EQ(tensors[i].at("sha256"), sha256_hex(bytes)) << s.infos[i].name;
  }
  const nlohmann::json& meta = dump.at("metadata");
  EXPECT_EQ(meta.at("stepdown.container_version").at("value"), 1);
  EXPECT_EQ(meta.at("stepdown.tensor.blk.0.attn_q.weight.format").at("value"), "int4-g128");
  EXPECT_EQ(meta.at("stepdown.tensor.blk.0.attn_q.weight.shape").at("value"), nlohmann::json({3, 256}));
}

// Every stepdown format, quantized from Gaussian values, decoded by an independent numpy
// decoder written from the layouts in stepdown_formats.h
// (scripts/golden/decode_stepdown_container.py). Both compute in f32 with one rounding per
// operation, so the decoded values must agree bit for bit (compared through sha256).
TEST(GgufContainer, NumpyDecoderMatchesDequantizeRow) {
  test::ScratchDir dir("container_numpy");
  std::vector<GgufTensorInfo> infos;
  std::vector<std::vector<std::byte>> data;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (DType dtype : stepdown_formats()) {
    std::vector<float> values(3 * 256);
    for (float& v : values) v = normal(rng);
    infos.push_back({"w." + std::string(stepdown_format_name(dtype)), dtype, {3, 256}});
    if (dtype == DType::FP8_E4M3_A8) {
      // Its activation scale comes from calibration, which quantize_tensor_stepdown lacks.
      data.push_back(quant::quantize_fp8_a8(quant::FloatMatrix{3, 256, values}, 0.25f, /*per_tensor=*/false));
      continue;
    }
    data.push_back(quant::quantize_tensor_stepdown(infos.back().name, dtype, values, 3, 256));
  }
  write_gguf(dir / "all.gguf", Metadata{}, infos, [&](size_t i) { return data[i]; });

  const std::string command = "python3 " + (test::source_dir() / "scripts/golden/decode_stepdown_container.py").string() +
                              " " + (dir / "all.gguf").string() + " 2>&1";
  const std::string text = run_command(command);
  const nlohmann::json decoded = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(decoded.is_discarded()) << command << " printed:\n" << text;
  ASSERT_EQ(decoded.size(), infos.size()) << text;

  const ModelFile file = open_gguf(dir / "all.gguf");
  for (const TensorView& t : file.tensors) {
    std::vector<float> values(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.rows(); ++r) kernels::dequantize_row(t.dtype, t.row(r), values.data() + r * t.cols(), t.cols());
    const std::string_view bytes(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    ASSERT_TRUE(decoded.contains(t.name)) << t.name;
    EXPECT_EQ(decoded.at(t.name).at("format"), std::string(stepdown_format_name(t.dtype)));
    EXPECT_EQ(decoded.at(t.name).at("sha256"), sha256_hex(bytes)) << t.name;
  }
}

// A file with one INT4_G128 (2, 128) tensor "w" stored as I8 (66, 2), whose container keys
// the caller writes (or leaves out) through `keys`.
std::vector<char> container_file(const std::function<void(test::GgufBuilder&)>& keys, uint64_t row_bytes = 66) {
  test::GgufBuilder b;
  keys(b);
  b.tensor("w", {row_bytes, 2}, kGgmlTypeI8, std::string(static_cast<size_t>(2 * row_bytes), '\x11'));
  return b.build();
}

std::string shape_value(std::vector<int64_t> dims) {
  std::string elements;
  for (int64_t d : dims) elements += test::le_bytes(d);
  return test::gguf_array(test::kI64, dims.size(), elements);
}

void good_keys(test::GgufBuilder& b) {
  b.kv_u32("stepdown.container_version", 1);
  b.kv_string("stepdown.tensor.w.format", "int4-g128");
  b.kv("stepdown.tensor.w.shape", test::kArray, shape_value({2, 128}));
}

// Parses `bytes` and returns the FormatError message, or "" with a test failure.
template <class E = FormatError>
std::string read_error(const std::vector<char>& bytes) {
  try {
    read_gguf(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), "bad.gguf");
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(GgufContainer, HandBuiltFileReads) {
  const std::vector<char> bytes = container_file(good_keys);
  const ModelFile file = read_gguf(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), "ok");
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors[0].dtype, DType::INT4_G128);
  EXPECT_EQ(file.tensors[0].shape, (std::vector<int64_t>{2, 128}));
  EXPECT_EQ(file.tensors[0].nbytes, 132u);
}

TEST(GgufContainer, UnknownFormatNameNamesTensorKeyAndValue) {
  const std::string message = read_error(container_file([](test::GgufBuilder& b) {
    b.kv_u32("stepdown.container_version", 1);
    b.kv_string("stepdown.tensor.w.format", "int5-g128");
    b.kv("stepdown.tensor.w.shape", test::kArray, shape_value({2, 128}));
  }));
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("stepdown.tensor.w.format"), std::string::npos) << message;
  EXPECT_NE(message.find("int5-g128"), std::string::npos) << message;
}

TEST(GgufContainer, ByteSizeMismatchNamesTensor) {
  const std::string message = read_error(container_file(good_keys, 65));
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("66 bytes per row"), std::string::npos) << message;
  EXPECT_NE(message.find("[2, 65]"), std::string::npos) << message;
}

TEST(GgufContainer, ShapeDisagreeingWithRowsNamesTensor) {
  const std::string message = read_error(container_file([](test::GgufBuilder& b) {
    b.kv_u32("stepdown.container_version", 1);
    b.kv_string("stepdown.tensor.w.format", "int4-g128");
    b.kv("stepdown.tensor.w.shape", test::kArray, shape_value({3, 128}));
  }));
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("[3, 128]"), std::string::npos) << message;
}

TEST(GgufContainer, MissingShapeKeyNamesTensorAndKey) {
  const std::string message = read_error(container_file([](test::GgufBuilder& b) {
    b.kv_u32("stepdown.container_version", 1);
    b.kv_string("stepdown.tensor.w.format", "int4-g128");
  }));
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("stepdown.tensor.w.shape"), std::string::npos) << message;
}

TEST(GgufContainer, FormatKeyNotStringNamesTensor) {
  const std::string message = read_error(container_file([](test::GgufBuilder& b) {
    b.kv_u32("stepdown.container_version", 1);
    b.kv_u32("stepdown.tensor.w.format", 4);
    b.kv("stepdown.tensor.w.shape", test::kArray, shape_value({2, 128}));
  }));
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("must be a string"), std::string::npos) << message;
}

TEST(GgufContainer, KeyForAbsentTensorIsRejected) {
  const std::string message = read_error(container_file([](test::GgufBuilder& b) {
    good_keys(b);
    b.kv_string("stepdown.tensor.other.format", "int8");
  }));
  EXPECT_NE(message.find("'other'"), std::string::npos) << message;
  EXPECT_NE(message.find("does not contain"), std::string::npos) << message;
}

TEST(GgufContainer, MissingVersionIsRejected) {
  const std::string message = read_error(container_file([](test::GgufBuilder& b) {
    b.kv_string("stepdown.tensor.w.format", "int4-g128");
    b.kv("stepdown.tensor.w.shape", test::kArray, shape_value({2, 128}));
  }));
  EXPECT_NE(message.find("stepdown.container_version"), std::string::npos) << message;
}

TEST(GgufContainer, LaterVersionIsUnsupported) {
  const std::string message = read_error<Unsupported>(container_file([](test::GgufBuilder& b) {
    b.kv_u32("stepdown.container_version", 2);
    b.kv_string("stepdown.tensor.w.format", "int4-g128");
    b.kv("stepdown.tensor.w.shape", test::kArray, shape_value({2, 128}));
  }));
  EXPECT_NE(message.find("found 2"), std::string::npos) << message;
}

TEST(GgufContainer, PlainI8TensorIsUnsupported) {
  const std::string message = read_error<Unsupported>(container_file([](test::GgufBuilder&) {}));
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("I8"), std::string::npos) << message;
}

}  // namespace
}  // namespace stepdown::io
