// Bad model files: truncated, corrupted, absurd or inconsistent GGUF, safetensors,
// Hugging Face and llama2.c inputs. Each must raise a stepdown::Error whose one-line
// message names the file and the field; the CLI must exit non-zero with one line on
// stderr. scripts/test runs this suite again under AddressSanitizer and UBSan.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gguf_builder.h"
#include "io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/llama2c.h"
#include "stepdown/io/model_file.h"
#include "stepdown/io/safetensors.h"
#include "test_paths.h"

namespace stepdown::io {
namespace {

using namespace stepdown::test;
using nlohmann::json;

// Runs `load`, expecting a stepdown::Error of type E; returns its message ("" on failure).
template <class E = Error, class Load>
std::string error_of(Load load) {
  try {
    load();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << typeid(E).name() << ", got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected an error, but loading succeeded";
  return {};
}

// Checks that `message` is one line and contains every one of `parts`.
void expect_message(const std::string& message, std::initializer_list<std::string> parts) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "no '" << part << "' in: " << message;
}

// ---------------------------------------------------------------------------------------
// GGUF

constexpr const char* kGgufName = "bad.gguf";

ModelFile parse_gguf(const std::vector<char>& bytes) {
  // A copy of exactly the given size, so a read past the end is a heap overflow that
  // AddressSanitizer reports.
  std::vector<char> exact(bytes);
  return read_gguf(std::as_bytes(std::span(exact.data(), exact.size())), kGgufName);
}

std::string floats(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += le_bytes(static_cast<float>(i));
  return out;
}

// A small valid file with every section: scalars, a string, arrays (nested too) and two
// tensors.
GgufBuilder small_gguf() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.block_count", 1);
  b.kv("flag", kBool, le_bytes<uint8_t>(1));
  b.kv("tokens", kArray, gguf_array(kString, 2, gguf_string("a") + gguf_string("bc")));
  b.kv("nested", kArray, gguf_array(kArray, 1, gguf_array(kI32, 2, le_bytes<int32_t>(1) + le_bytes<int32_t>(2))));
  b.tensor("token_embd.weight", {4, 2}, 0, floats(8));
  b.tensor("output_norm.weight", {4}, 0, floats(4));
  return b;
}

TEST(BadGguf, SmallFileIsValid) {
  const ModelFile m = parse_gguf(small_gguf().build());
  EXPECT_EQ(m.tensors.size(), 2u);
}

TEST(BadGguf, TruncatedAtEveryByte) {
  const std::vector<char> full = small_gguf().build();
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("truncated to " + std::to_string(n) + " bytes");
    const std::string message =
        error_of<FormatError>([&] { parse_gguf(std::vector<char>(full.begin(), full.begin() + n)); });
    expect_message(message, {kGgufName});
  }
}

TEST(BadGguf, TruncatedAtEverySection) {
  ScratchDir dir("bad_gguf");
  GgufSections s;
  const std::vector<char> full = small_gguf().build(&s);
  struct Cut {
    size_t at;
    std::string field;
  };
  // The counts are checked against the bytes left before anything is read, so a cut at
  // a section end names the count. A cut inside a section names the field it splits.
  std::vector<Cut> cuts = {{0, "unknown model format"},  // too short to detect
                           {8, "tensor_count"},
                           {s.header_end, "metadata_kv_count"},
                           {s.kv_ends[2] - 1, "metadata key 'flag' value"},
                           {s.kv_ends.back() - 1, "metadata key 'nested' array length"},
                           {s.kv_ends.back(), "tensor_count"},
                           {s.tensor_info_ends.back() - 1, "tensor 'output_norm.weight' offset"},
                           {s.tensor_info_ends.back(), "tensor data section"},
                           {s.tensor_starts[1], "tensor 'output_norm.weight' data"},
                           {s.end - 1, "tensor 'output_norm.weight' data"}};
  for (const Cut& cut : cuts) {
    SCOPED_TRACE(cut.field);
    const auto path = dir / ("cut" + std::to_string(cut.at) + ".gguf");
    write_bytes(path, full.data(), cut.at);
    expect_message(error_of([&] { open_model_file(path); }), {path.string(), cut.field});
  }
}

TEST(BadGguf, WrongMagicAndVersions) {
  GgufBuilder b = small_gguf();
  b.magic = 0x46554748;
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }), {kGgufName, "magic", "0x46554748"});
  b = small_gguf();
  b.version = 1;
  expect_message(error_of<Unsupported>([&] { parse_gguf(b.build()); }), {kGgufName, "version", "version 1"});
  b.version = 99;
  expect_message(error_of<Unsupported>([&] { parse_gguf(b.build()); }), {kGgufName, "version", "found 99"});
}

TEST(BadGguf, AbsurdCounts) {
  GgufBuilder b = small_gguf();
  b.tensor_count_override = uint64_t{1} << 40;
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }), {kGgufName, "tensor_count", "1099511627776"});
  b = small_gguf();
  b.kv_count_override = uint64_t{1} << 40;
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }), {kGgufName, "metadata_kv_count"});
  b = small_gguf();
  b.kv_count_override = 6;  // one more than present: the first tensor info is read as a key
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }), {kGgufName, "GGUF"});
}

TEST(BadGguf, AbsurdStringLengths) {
  const uint64_t huge = uint64_t{1} << 62;
  GgufBuilder b;
  b.kv("general.name", kString, le_bytes(huge) + "abc");
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }),
                 {kGgufName, "metadata key 'general.name' value", "string length 4611686018427387904"});
  // The key itself with an absurd length.
  std::vector<char> bytes = GgufBuilder().build();
  bytes[16] = 1;  // kv count 1
  const std::string key = le_bytes(huge) + "k";
  bytes.insert(bytes.begin() + 24, key.begin(), key.end());
  expect_message(error_of<FormatError>([&] { parse_gguf(bytes); }), {kGgufName, "metadata key 0", "string length"});
  // An array claiming 2^62 strings.
  GgufBuilder c;
  c.kv("tokenizer.ggml.tokens", kArray, gguf_array(kString, huge, gguf_string("a")));
  expect_message(error_of<FormatError>([&] { parse_gguf(c.build()); }),
                 {kGgufName, "'tokenizer.ggml.tokens' array length", "4611686018427387904"});
}

TEST(BadGguf, BadMetadataValues) {
  GgufBuilder b;
  b.kv("", kU32, le_bytes<uint32_t>(1));
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }), {kGgufName, "metadata key 0", "empty key"});

  GgufBuilder c;
  c.kv("weird", 13, le_bytes<uint32_t>(1));
  expect_message(error_of<FormatError>([&] { parse_gguf(c.build()); }), {kGgufName, "'weird' type", "found 13"});

  GgufBuilder d;
  d.kv("arr", kArray, gguf_array(77, 1, "x"));
  expect_message(error_of<FormatError>([&] { parse_gguf(d.build()); }), {kGgufName, "'arr'", "element type id 77"});

  GgufBuilder e;
  e.kv("flag", kBool, le_bytes<uint8_t>(2));
  expect_message(error_of<FormatError>([&] { parse_gguf(e.build()); }), {kGgufName, "'flag'", "bool"});

  GgufBuilder f;
  f.kv_u32("dup", 1);
  f.kv_u32("dup", 2);
  expect_message(error_of<FormatError>([&] { parse_gguf(f.build()); }), {kGgufName, "'dup'", "duplicate"});

  // A key with a newline must not break the one-line message.
  GgufBuilder g;
  g.kv("line\nbreak", 13, "");
  expect_message(error_of<FormatError>([&] { parse_gguf(g.build()); }), {kGgufName, "line\\x0abreak"});
}

TEST(BadGguf, NestingTooDeep) {
  std::string value = gguf_array(kU8, 0, "");
  for (int i = 0; i < 100; ++i) value = gguf_array(kArray, 1, value);
  GgufBuilder b;
  b.kv("deep", kArray, value);
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }), {kGgufName, "'deep'", "nested deeper"});
}

TEST(BadGguf, BadAlignment) {
  for (uint32_t alignment : {0u, 3u, 48u}) {
    SCOPED_TRACE(alignment);
    GgufBuilder b = small_gguf();
    b.kv_u32("general.alignment", alignment);
    expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }),
                   {kGgufName, "general.alignment", "power of two", "found " + std::to_string(alignment)});
  }
  GgufBuilder b = small_gguf();
  b.kv("general.alignment", kU64, le_bytes<uint64_t>(32));
  expect_message(error_of<FormatError>([&] { parse_gguf(b.build()); }),
                 {kGgufName, "general.alignment", "expected uint32, found uint64"});
}

TEST(BadGguf, BadTensorInfos) {
  struct Case {
    std::string label;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"no dims", {}, 0, {"'t' field n_dims", "found 0"}},
      {"five dims", {1, 1, 1, 1, 1}, 0, {"'t' field n_dims", "found 5"}},
      {"zero dim", {4, 0}, 0, {"'t' dimension 1", "found 0"}},
      {"dim over int64", {uint64_t{1} << 63}, 0, {"'t' dimension 0"}},
      {"count overflow", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, {"'t'", "overflows"}},
      {"bytes overflow", {uint64_t{1} << 62}, 0, {"'t'", "overflows"}},
      {"row not whole blocks", {33}, 2, {"'t'", "row length 33", "Q4_0 block size 32"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    GgufBuilder b;
    b.tensor("t", c.ne, c.type, "", 0);
    const std::string message = error_of<FormatError>([&] { parse_gguf(b.build()); });
    expect_message(message, {kGgufName});
    for (const std::string& part : c.parts) expect_message(message, {part});
  }
}

TEST(BadGguf, UnknownTensorTypes) {
  GgufBuilder b;
  b.tensor("blk.0.attn_q.weight", {256}, 99, "", 0);
  expect_message(error_of<Unsupported>([&] { parse_gguf(b.build()); }),
                 {kGgufName, "'blk.0.attn_q.weight'", "type id 99"});
  GgufBuilder c;
  c.tensor("blk.0.attn_k.weight", {256}, 10, "", 0);
  expect_message(error_of<Unsupported>([&] { parse_gguf(c.build()); }),
                 {kGgufName, "'blk.0.attn_k.weight'", "type id 10 (Q2_K)"});
}

TEST(BadGguf, BadTensorOffsets) {
  GgufBuilder misaligned;
  misaligned.tensor("t", {4}, 0, "", 4);
  expect_message(error_of<FormatError>([&] { parse_gguf(misaligned.build()); }),
                 {kGgufName, "'t' field offset", "multiple of the alignment 32", "found 4"});

  GgufBuilder past_end = small_gguf();
  past_end.tensor("far", {4}, 0, "", uint64_t{1} << 40);
  expect_message(error_of<FormatError>([&] { parse_gguf(past_end.build()); }),
                 {kGgufName, "'far' data", "past the end"});

  GgufBuilder wraps = small_gguf();
  wraps.tensor("wrap", {4}, 0, "", ~uint64_t{31});
  expect_message(error_of<FormatError>([&] { parse_gguf(wraps.build()); }), {kGgufName, "'wrap' data"});

  GgufBuilder overlap;
  overlap.tensor("a", {16}, 0, floats(16));
  overlap.tensor("b", {16}, 0, "", 32);  // starts inside a's 64 bytes
  std::vector<char> overlapping = overlap.build();
  overlapping.resize(overlapping.size() + 256, '\0');  // so b ends inside the file
  expect_message(error_of<FormatError>([&] { parse_gguf(overlapping); }), {kGgufName, "'b'", "overlaps tensor 'a'"});

  GgufBuilder duplicate;
  duplicate.tensor("same", {4}, 0, floats(4));
  duplicate.tensor("same", {4}, 0, floats(4));
  expect_message(error_of<FormatError>([&] { parse_gguf(duplicate.build()); }), {kGgufName, "duplicate tensor name"});

  GgufBuilder unnamed;
  unnamed.tensor("", {4}, 0, floats(4));
  expect_message(error_of<FormatError>([&] { parse_gguf(unnamed.build()); }), {kGgufName, "empty tensor name"});
}

// ---------------------------------------------------------------------------------------
// safetensors

constexpr const char* kSafetensorsName = "bad.safetensors";

SafetensorsFile parse_safetensors(const std::vector<char>& bytes) {
  std::vector<char> exact(bytes);
  return read_safetensors(std::as_bytes(std::span(exact.data(), exact.size())), kSafetensorsName);
}

// A safetensors file with the given header text and `data_bytes` zero bytes of data.
std::vector<char> safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::vector<char> out;
  append_pod(out, static_cast<uint64_t>(header.size()));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, '\0');
  return out;
}

std::vector<char> valid_safetensors() {
  return safetensors_bytes(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                           R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}})",
                           24);
}

TEST(BadSafetensors, SmallFileIsValid) {
  const SafetensorsFile f = parse_safetensors(valid_safetensors());
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.metadata.at("format"), "pt");
}

TEST(BadSafetensors, TruncatedAtEveryByte) {
  const std::vector<char> full = valid_safetensors();
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("truncated to " + std::to_string(n) + " bytes");
    const std::string message =
        error_of<FormatError>([&] { parse_safetensors(std::vector<char>(full.begin(), full.begin() + n)); });
    expect_message(message, {kSafetensorsName});
  }
}

TEST(BadSafetensors, HeaderProblems) {
  std::vector<char> long_header = valid_safetensors();
  const uint64_t too_long = long_header.size();
  std::memcpy(long_header.data(), &too_long, 8);
  expect_message(error_of<FormatError>([&] { parse_safetensors(long_header); }),
                 {kSafetensorsName, "header length", "only"});
  std::vector<char> absurd = valid_safetensors();
  const uint64_t huge = uint64_t{1} << 62;
  std::memcpy(absurd.data(), &huge, 8);
  expect_message(error_of<FormatError>([&] { parse_safetensors(absurd); }), {kSafetensorsName, "header length"});
  expect_message(error_of<FormatError>([&] { parse_safetensors(safetensors_bytes("{not json", 0)); }),
                 {kSafetensorsName, "not valid JSON"});
  expect_message(error_of<FormatError>([&] { parse_safetensors(safetensors_bytes("[1, 2]", 0)); }),
                 {kSafetensorsName, "expected a JSON object, found array"});
  expect_message(error_of<FormatError>([&] { parse_safetensors(safetensors_bytes(R"({"__metadata__":[]})", 0)); }),
                 {kSafetensorsName, "__metadata__"});
  expect_message(error_of<FormatError>([&] { parse_safetensors(safetensors_bytes(R"({"a":5})", 0)); }),
                 {kSafetensorsName, "'a'", "expected an object"});
}

TEST(BadSafetensors, BadEntries) {
  struct Case {
    std::string entry;  // the JSON object for tensor "w"
    size_t data_bytes;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {R"({"shape":[2],"data_offsets":[0,8]})", 8, {"field 'dtype' is missing"}},
      {R"({"dtype":"F32","data_offsets":[0,8]})", 8, {"field 'shape' is missing"}},
      {R"({"dtype":"F32","shape":[2]})", 8, {"field 'data_offsets' is missing"}},
      {R"({"dtype":"F99","shape":[2],"data_offsets":[0,8]})", 8, {"field 'dtype'", "unknown dtype 'F99'"}},
      {R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})", 8, {"field 'dtype'", "expected a string"}},
      {R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", 8, {"need 12 bytes", "span 8"}},
      {R"({"dtype":"F16","shape":[2,2],"data_offsets":[0,16]})", 16, {"need 8 bytes", "span 16"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,800]})", 8, {"field 'data_offsets'", "[0, 800]"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})", 8, {"field 'data_offsets'", "[8, 0]"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0]})", 8, {"field 'data_offsets'", "[begin, end]"}},
      {R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", 8, {"field 'shape'", "non-negative"}},
      {R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})", 8, {"field 'shape'", "expected an integer"}},
      {R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})", 8, {"field 'shape'"}},
      {R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})", 8, {"field 'shape'", "overflows"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]})", 8, {"field 'data_offsets'"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.entry);
    const std::string message =
        error_of<FormatError>([&] { parse_safetensors(safetensors_bytes(R"({"w":)" + c.entry + "}", c.data_bytes)); });
    expect_message(message, {kSafetensorsName, "'w'"});
    for (const std::string& part : c.parts) expect_message(message, {part});
  }
}

TEST(BadSafetensors, UnsupportedDtype) {
  expect_message(error_of<Unsupported>([&] {
                   parse_safetensors(safetensors_bytes(R"({"w":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", 2));
                 }),
                 {kSafetensorsName, "'w'", "dtype I8"});
}

TEST(BadSafetensors, OverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_message(error_of<FormatError>([&] { parse_safetensors(safetensors_bytes(header, 12)); }),
                 {kSafetensorsName, "'b'", "overlaps tensor 'a'"});
}

// ---------------------------------------------------------------------------------------
// Hugging Face directories

std::filesystem::path stories_path() { return shared_dir() / "models" / "stories260K" / "stories260K.bin"; }

void convert_stories(const std::filesystem::path& out, const std::string& args = "") {
  const std::string command = "python3 '" + (source_dir() / "scripts" / "golden" / "io_hf_from_llama2c.py").string() +
                              "' '" + stories_path().string() + "' '" + out.string() + "' " + args;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

template <class Edit>
void edit_json(const std::filesystem::path& path, Edit edit) {
  json j = json::parse(std::ifstream(path));
  edit(j);
  std::ofstream(path) << j.dump();
}

class BadHf : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = new ScratchDir("bad_hf_source");
    convert_stories(source_->path());
    sharded_ = new ScratchDir("bad_hf_sharded");
    convert_stories(sharded_->path(), "--shards 2");
  }
  static void TearDownTestSuite() {
    delete source_;
    delete sharded_;
  }
  // A fresh copy of the converted directory (single file, or two shards).
  std::filesystem::path copy(bool sharded = false) {
    const std::filesystem::path to = dir_.path() / ("model" + std::to_string(copies_++));
    std::filesystem::copy((sharded ? sharded_ : source_)->path(), to);
    return to;
  }
  std::string config_error(const std::filesystem::path& dir) {
    return error_of([&] { open_model_file(dir); });
  }

  static inline ScratchDir* source_ = nullptr;
  static inline ScratchDir* sharded_ = nullptr;
  ScratchDir dir_{"bad_hf"};
  int copies_ = 0;
};

TEST_F(BadHf, ConfigNotAnObject) {
  const auto dir = copy();
  std::ofstream(dir / "config.json") << "[1, 2, 3]";
  expect_message(config_error(dir), {(dir / "config.json").string(), "expected a JSON object, found array"});
  std::ofstream(dir / "config.json") << "{\"model_type\": ";
  expect_message(config_error(dir), {(dir / "config.json").string(), "not valid JSON"});
}

TEST_F(BadHf, ConfigMissingFields) {
  for (const char* field : {"model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "vocab_size"}) {
    SCOPED_TRACE(field);
    const auto dir = copy();
    edit_json(dir / "config.json", [&](json& c) { c.erase(field); });
    expect_message(config_error(dir), {(dir / "config.json").string(), std::string("'") + field + "' is missing"});
  }
}

TEST_F(BadHf, ConfigWrongTypesAndValues) {
  struct Case {
    std::string field;
    json value;
    std::string part;
  };
  const std::vector<Case> cases = {
      {"hidden_size", "64", "expected an integer"},
      {"hidden_size", -64, "expected an integer"},
      {"num_hidden_layers", 1e30, "expected an integer"},
      {"rope_theta", "big", "expected a positive number"},
      {"tie_word_embeddings", 1, "expected true or false"},
      {"num_key_value_heads", 3, "divisor of num_attention_heads"},
      {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}, "'rope_scaling.low_freq_factor' is missing"},
      {"rope_scaling", 2, "expected an object or null"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field + " = " + c.value.dump());
    const auto dir = copy();
    edit_json(dir / "config.json", [&](json& j) { j[c.field] = c.value; });
    expect_message(config_error(dir), {(dir / "config.json").string(), c.field, c.part});
  }
  const auto dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["model_type"] = "gpt2"; });
  expect_message(error_of<Unsupported>([&] { open_model_file(dir); }), {"config.json", "'model_type'", "'gpt2'"});
}

TEST_F(BadHf, ShapeConfigMismatch) {
  auto dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["intermediate_size"] = 100; });
  expect_message(config_error(dir), {"model.safetensors", "model.layers.0.mlp.gate_proj.weight", "expected shape [100, 64]",
                                     "found [172, 64]"});
  dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["num_key_value_heads"] = 8; });
  expect_message(config_error(dir), {"model.layers.0.self_attn.k_proj.weight", "expected shape [64, 64]"});
  dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["vocab_size"] = 32000; });
  expect_message(config_error(dir), {"model.embed_tokens.weight", "expected shape [32000, 64]"});
  dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["num_hidden_layers"] = 4; });
  expect_message(config_error(dir), {"model.layers.4.", "layer 4", "num_hidden_layers 4"});
  dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["num_hidden_layers"] = 6; });
  expect_message(config_error(dir), {"config.json", "'blk.5.attn_norm.weight' is missing"});
  dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["model_type"] = "qwen2"; });
  expect_message(config_error(dir), {"config.json", "'blk.0.attn_q.bias' is missing", "qwen2"});
  dir = copy();
  edit_json(dir / "config.json", [](json& j) { j["tie_word_embeddings"] = false; });
  expect_message(config_error(dir), {"config.json", "'output.weight' is missing"});
}

TEST_F(BadHf, MissingOrBrokenWeights) {
  auto dir = copy();
  std::filesystem::remove(dir / "model.safetensors");
  expect_message(config_error(dir), {dir.string(), "no model.safetensors"});
  dir = copy();
  std::filesystem::resize_file(dir / "model.safetensors", 1000);
  expect_message(config_error(dir), {(dir / "model.safetensors").string(), "header length"});
}

TEST_F(BadHf, BadShardIndex) {
  auto dir = copy(true);
  const auto index = dir / "model.safetensors.index.json";
  edit_json(index, [](json& j) { j["weight_map"]["model.norm.weight"] = "../../etc/passwd"; });
  expect_message(config_error(dir), {index.string(), "weight_map.model.norm.weight", "same directory"});
  dir = copy(true);
  edit_json(dir / "model.safetensors.index.json", [](json& j) { j["weight_map"]["extra.weight"] = "model-00001-of-00002.safetensors"; });
  expect_message(config_error(dir), {"model-00001-of-00002.safetensors", "'extra.weight'", "missing from the shard"});
  dir = copy(true);
  edit_json(dir / "model.safetensors.index.json", [](json& j) { j["weight_map"]["x"] = "model-00009.safetensors"; });
  expect_message(error_of<IoError>([&] { open_model_file(dir); }), {"model-00009.safetensors", "cannot open"});
  dir = copy(true);
  edit_json(dir / "model.safetensors.index.json", [](json& j) { j["weight_map"] = json::array(); });
  expect_message(config_error(dir), {"model.safetensors.index.json", "'weight_map'"});
}

// ---------------------------------------------------------------------------------------
// llama2.c

class BadLlama2c : public ::testing::Test {
 protected:
  std::vector<char> legacy_ = read_bytes(stories_path());
  ScratchDir dir_{"bad_llama2c"};

  std::filesystem::path write(const std::string& name, const std::vector<char>& bytes) {
    const auto path = dir_ / name;
    write_bytes(path, bytes);
    return path;
  }
  void set_field(std::vector<char>& bytes, size_t offset, int32_t value) { std::memcpy(bytes.data() + offset, &value, 4); }
};

TEST_F(BadLlama2c, TruncatedAtEverySection) {
  // Section ends: header, embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final.
  const std::vector<size_t> floats = {512 * 64, 5 * 64, 5 * 64 * 64, 5 * 32 * 64, 5 * 32 * 64, 5 * 64 * 64,
                                      5 * 64,   5 * 172 * 64, 5 * 64 * 172, 5 * 172 * 64, 64};
  std::vector<size_t> cuts = {28};
  for (size_t n : floats) cuts.push_back(cuts.back() + n * 4);
  cuts.push_back(legacy_.size() - 1);
  for (size_t cut : cuts) {
    SCOPED_TRACE(cut);
    const auto path = write("cut" + std::to_string(cut) + ".bin", std::vector<char>(legacy_.begin(), legacy_.begin() + cut));
    expect_message(error_of<FormatError>([&] { open_model_file(path); }),
                   {path.string(), "file size", "expected 1056540 bytes", "found " + std::to_string(cut)});
  }
  for (size_t cut : {size_t{0}, size_t{10}, size_t{27}}) {
    SCOPED_TRACE(cut);
    const auto path = write("short" + std::to_string(cut) + ".bin", std::vector<char>(legacy_.begin(), legacy_.begin() + cut));
    expect_message(error_of<FormatError>([&] { open_llama2c(path); }), {path.string(), "header"});
    expect_message(error_of<FormatError>([&] { open_model_file(path); }), {path.string(), "unknown model format"});
  }
}

TEST_F(BadLlama2c, ExtraBytes) {
  std::vector<char> longer = legacy_;
  longer.push_back(0);
  const auto path = write("longer.bin", longer);
  expect_message(error_of<FormatError>([&] { open_model_file(path); }), {path.string(), "file size", "found 1056541"});
}

TEST_F(BadLlama2c, AbsurdHeaderFields) {
  struct Case {
    size_t offset;
    int32_t value;
    std::string part;
  };
  const std::vector<Case> cases = {
      {0, 0, "dim: expected 1..1048576, found 0"},
      {0, 1 << 30, "dim: expected 1..1048576, found 1073741824"},
      {4, -5, "hidden_dim"},
      {8, 0x7fffffff, "n_layers"},
      {12, 7, "n_heads: expected a divisor of dim 64"},
      {16, 16, "n_kv_heads: expected a divisor of n_heads 8"},
      {16, 3, "n_kv_heads"},
      {20, std::numeric_limits<int32_t>::min(), "vocab_size"},
      {24, 0, "seq_len"},
      {12, 64, "even head size"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.part);
    std::vector<char> bytes = legacy_;
    set_field(bytes, c.offset, c.value);
    if (c.part == "even head size") set_field(bytes, 16, 64);  // kv heads = heads keeps only the odd-size problem
    const auto path = write("field" + std::to_string(c.offset) + ".bin", bytes);
    expect_message(error_of<FormatError>([&] { open_llama2c(path); }), {path.string(), "llama2.c header field", c.part});
  }
  // A plausible header that claims a larger model than the file holds.
  std::vector<char> bigger = legacy_;
  set_field(bigger, 8, 6);
  const auto path = write("layers.bin", bigger);
  expect_message(error_of<FormatError>([&] { open_model_file(path); }), {path.string(), "file size", "6 layers"});
}

TEST_F(BadLlama2c, Ak42Problems) {
  std::vector<char> header;
  append_pod(header, uint32_t{0x616b3432});
  append_pod(header, int32_t{2});
  for (int32_t v : {64, 172, 5, 8, 4, 512, 512}) append_pod(header, v);
  header.push_back(1);
  header.resize(256, 0);
  auto path = write("v2.bin", header);
  expect_message(error_of<Unsupported>([&] { open_model_file(path); }), {path.string(), "'version'", "found 2"});

  set_field(header, 4, 1);
  path = write("v1_short_header.bin", std::vector<char>(header.begin(), header.begin() + 100));
  expect_message(error_of<FormatError>([&] { open_model_file(path); }), {path.string(), "256 bytes"});
  path = write("v1_no_weights.bin", header);
  expect_message(error_of<FormatError>([&] { open_model_file(path); }), {path.string(), "file size", "found 256"});
  path = write("v1_tiny.bin", std::vector<char>(header.begin(), header.begin() + 6));
  expect_message(error_of<FormatError>([&] { open_model_file(path); }), {path.string()});
}

// ---------------------------------------------------------------------------------------
// The CLI on bad files: non-zero exit, one line on stderr, no crash.

struct CliResult {
  bool exited = false;
  int exit_code = -1;
  std::string err;
};

CliResult inspect(const std::filesystem::path& model, const ScratchDir& dir) {
  const auto err_path = dir / "stderr.txt";
  const std::string command = "'" + cli_path().string() + "' inspect '" + model.string() + "' >/dev/null 2>'" +
                              err_path.string() + "'";
  const int status = std::system(command.c_str());
  CliResult r;
  r.exited = WIFEXITED(status);
  r.exit_code = r.exited ? WEXITSTATUS(status) : -1;
  const std::vector<char> err = read_bytes(err_path);
  r.err.assign(err.begin(), err.end());
  return r;
}

TEST(BadInputCli, OneLineErrorAndNonZeroExit) {
  ScratchDir dir("bad_cli");
  std::vector<std::filesystem::path> bad;

  GgufSections s;
  const std::vector<char> gguf = small_gguf().build(&s);
  bad.push_back(dir / "truncated.gguf");
  write_bytes(bad.back(), gguf.data(), s.kv_ends[2]);
  GgufBuilder unknown_type;
  unknown_type.tensor("blk.0.attn_q.weight", {256}, 99, "", 0);
  bad.push_back(dir / "unknown_type.gguf");
  write_bytes(bad.back(), unknown_type.build());
  GgufBuilder newline_key;
  newline_key.kv("a\nb", 13, "");
  bad.push_back(dir / "newline_key.gguf");
  write_bytes(bad.back(), newline_key.build());

  std::vector<char> llama2c = read_bytes(stories_path());
  llama2c.resize(llama2c.size() / 2);
  bad.push_back(dir / "half.bin");
  write_bytes(bad.back(), llama2c);

  bad.push_back(dir / "hf");
  std::filesystem::create_directories(bad.back());
  std::ofstream(bad.back() / "config.json") << R"({"model_type": "llama", "hidden_size": 64})";

  bad.push_back(dir / "random.bin");
  const std::string text = "this is not a model file at all, just some text\n";
  write_bytes(bad.back(), text.data(), text.size());
  bad.push_back(dir / "does_not_exist.gguf");

  for (const auto& path : bad) {
    SCOPED_TRACE(path.string());
    const CliResult r = inspect(path, dir);
    ASSERT_TRUE(r.exited) << "killed by a signal";
    EXPECT_NE(r.exit_code, 0);
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // exactly one line
    EXPECT_TRUE(r.err.starts_with("error: ")) << r.err;
    EXPECT_NE(r.err.find(path.string()), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace stepdown::io
