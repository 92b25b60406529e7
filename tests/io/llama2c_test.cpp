// llama2.c checkpoints: the legacy header of stories260K.bin and a version-1 ("ak42")
// file built from it must give the same tensors, at the offsets run.c reads them from.
#include <gtest/gtest.h>

#include <cstring>

#include "io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/io/llama2c.h"
#include "stepdown/io/model_file.h"
#include "test_paths.h"

namespace stepdown::io {
namespace {

using test::append_pod;
using test::ScratchDir;

std::filesystem::path stories_path() { return test::shared_dir() / "models" / "stories260K" / "stories260K.bin"; }

// stories260K's header: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512, seq 512.
constexpr int64_t kDim = 64, kHidden = 172, kLayers = 5, kHeads = 8, kKvHeads = 4, kVocab = 512, kSeq = 512;
constexpr int64_t kKvDim = kDim / kHeads * kKvHeads;

// Float ranges of the legacy file, in run.c's order, counted independently of the loader.
struct Segment {
  const char* name;
  int64_t floats;
};
const std::vector<Segment>& legacy_segments() {
  static const std::vector<Segment> segments = {
      {"emb", kVocab * kDim},           {"rms_att", kLayers * kDim},      {"wq", kLayers * kDim * kDim},
      {"wk", kLayers * kKvDim * kDim},  {"wv", kLayers * kKvDim * kDim},  {"wo", kLayers * kDim * kDim},
      {"rms_ffn", kLayers * kDim},      {"w1", kLayers * kHidden * kDim}, {"w2", kLayers * kDim * kHidden},
      {"w3", kLayers * kHidden * kDim}, {"rms_final", kDim},              {"freq_cis", kSeq * kDim / kHeads},
  };
  return segments;
}

// Byte offset of a legacy segment inside stories260K.bin.
size_t legacy_offset(const std::string& segment) {
  size_t offset = 28;
  for (const Segment& s : legacy_segments()) {
    if (segment == s.name) return offset;
    offset += static_cast<size_t>(s.floats) * 4;
  }
  ADD_FAILURE() << "no segment " << segment;
  return 0;
}

size_t segment_bytes(const std::string& segment) {
  for (const Segment& s : legacy_segments()) {
    if (segment == s.name) return static_cast<size_t>(s.floats) * 4;
  }
  return 0;
}

// Writes stories260K's weights in export.py's version-1 layout, optionally with a
// separate classifier `wcls`.
void write_ak42(const std::filesystem::path& path, const std::vector<char>& legacy, const std::vector<float>* wcls) {
  std::vector<char> out;
  append_pod(out, uint32_t{0x616b3432});
  append_pod(out, int32_t{1});
  for (int32_t v : {kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeq}) append_pod(out, v);
  append_pod(out, static_cast<uint8_t>(wcls == nullptr ? 1 : 0));
  out.resize(256, 0);
  for (const char* segment : {"rms_att", "rms_ffn", "rms_final", "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3"}) {
    const size_t offset = legacy_offset(segment);
    out.insert(out.end(), legacy.begin() + offset, legacy.begin() + offset + segment_bytes(segment));
  }
  if (wcls != nullptr) {
    const char* p = reinterpret_cast<const char*>(wcls->data());
    out.insert(out.end(), p, p + wcls->size() * 4);
  }
  test::write_bytes(path, out);
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

TEST(Llama2c, LegacyHeaderMetadata) {
  const ModelFile model = open_model_file(stories_path());
  EXPECT_EQ(model.format, ModelFormat::LLAMA2C);
  const Metadata& m = model.metadata;
  EXPECT_EQ(m.require_string("general.architecture"), "llama");
  EXPECT_EQ(m.require_int("llama.embedding_length"), kDim);
  EXPECT_EQ(m.require_int("llama.feed_forward_length"), kHidden);
  EXPECT_EQ(m.require_int("llama.block_count"), kLayers);
  EXPECT_EQ(m.require_int("llama.attention.head_count"), kHeads);
  EXPECT_EQ(m.require_int("llama.attention.head_count_kv"), kKvHeads);
  EXPECT_EQ(m.require_int("llama.context_length"), kSeq);
  EXPECT_EQ(m.require_int("llama.vocab_size"), kVocab);
  EXPECT_EQ(m.require_int("llama.rope.dimension_count"), kDim / kHeads);
  EXPECT_FLOAT_EQ(static_cast<float>(m.require_float("llama.rope.freq_base")), 10000.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(m.require_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(m.require_string(kRopeLayoutKey), "interleaved");
  EXPECT_FALSE(m.contains(kTokenizerPathKey));
}

TEST(Llama2c, LegacyTensorsAtRunCOffsets) {
  const ModelFile model = open_model_file(stories_path());
  const std::byte* base = model.mappings.at(0)->data();
  // 1 embedding + 9 per layer + final norm; tied classifier so no output.weight.
  EXPECT_EQ(model.tensors.size(), 1u + 9u * kLayers + 1u);
  EXPECT_EQ(model.find_tensor("output.weight"), nullptr);

  struct Expect {
    std::string name;
    std::string segment;
    std::vector<int64_t> shape;
  };
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    const std::vector<Expect> expects = {
        {blk + "attn_norm.weight", "rms_att", {kDim}},    {blk + "attn_q.weight", "wq", {kDim, kDim}},
        {blk + "attn_k.weight", "wk", {kKvDim, kDim}},    {blk + "attn_v.weight", "wv", {kKvDim, kDim}},
        {blk + "attn_output.weight", "wo", {kDim, kDim}}, {blk + "ffn_norm.weight", "rms_ffn", {kDim}},
        {blk + "ffn_gate.weight", "w1", {kHidden, kDim}}, {blk + "ffn_down.weight", "w2", {kDim, kHidden}},
        {blk + "ffn_up.weight", "w3", {kHidden, kDim}},
    };
    for (const Expect& e : expects) {
      SCOPED_TRACE(e.name);
      const TensorView& t = model.tensor(e.name);
      EXPECT_EQ(t.dtype, DType::F32);
      EXPECT_EQ(t.shape, e.shape);
      const size_t per_layer = segment_bytes(e.segment) / kLayers;
      EXPECT_EQ(t.nbytes, per_layer);
      EXPECT_EQ(t.data - base, static_cast<ptrdiff_t>(legacy_offset(e.segment) + layer * per_layer));
    }
  }
  EXPECT_EQ(model.tensor("token_embd.weight").data - base, 28);
  EXPECT_EQ(model.tensor("token_embd.weight").shape, (std::vector<int64_t>{kVocab, kDim}));
  EXPECT_EQ(model.tensor("output_norm.weight").data - base, static_cast<ptrdiff_t>(legacy_offset("rms_final")));
  EXPECT_THROW(model.tensor("blk.5.attn_q.weight"), FormatError);
}

TEST(Llama2c, LegacyFirstWeightValue) {
  // The first float of the embedding, read straight from the file.
  const std::vector<char> raw = test::read_bytes(stories_path());
  float first = 0;
  std::memcpy(&first, raw.data() + 28, 4);
  const ModelFile model = open_model_file(stories_path());
  float loaded = 0;
  std::memcpy(&loaded, model.tensor("token_embd.weight").data, 4);
  EXPECT_EQ(first, loaded);
}

TEST(Llama2c, Ak42MatchesLegacy) {
  ScratchDir dir("llama2c");
  const std::vector<char> legacy = test::read_bytes(stories_path());
  write_ak42(dir / "v1.bin", legacy, nullptr);

  const ModelFile a = open_model_file(stories_path());
  const ModelFile b = open_model_file(dir / "v1.bin");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const TensorView& ta : a.tensors) {
    SCOPED_TRACE(ta.name);
    const TensorView* tb = b.find_tensor(ta.name);
    ASSERT_NE(tb, nullptr);
    EXPECT_EQ(ta.shape, tb->shape);
    EXPECT_EQ(ta.dtype, tb->dtype);
    EXPECT_TRUE(same_bytes(ta, *tb));
  }
  for (const auto& [key, value] : a.metadata.entries()) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(b.metadata.contains(key));
    EXPECT_EQ(b.metadata.find(key)->type, value.type);
  }
}

TEST(Llama2c, UntiedClassifierBothHeaders) {
  ScratchDir dir("llama2c");
  std::vector<char> legacy = test::read_bytes(stories_path());
  std::vector<float> wcls(static_cast<size_t>(kVocab * kDim));
  for (size_t i = 0; i < wcls.size(); ++i) wcls[i] = static_cast<float>(i) * 0.25f;

  // Legacy: a negative vocab_size marks a classifier stored after freq_cis.
  std::vector<char> untied = legacy;
  const int32_t negative_vocab = -static_cast<int32_t>(kVocab);
  std::memcpy(untied.data() + 20, &negative_vocab, 4);
  const char* p = reinterpret_cast<const char*>(wcls.data());
  untied.insert(untied.end(), p, p + wcls.size() * 4);
  test::write_bytes(dir / "legacy_untied.bin", untied);
  write_ak42(dir / "v1_untied.bin", legacy, &wcls);

  for (const char* file : {"legacy_untied.bin", "v1_untied.bin"}) {
    SCOPED_TRACE(file);
    const ModelFile model = open_model_file(dir / file);
    EXPECT_EQ(model.metadata.require_int("llama.vocab_size"), kVocab);
    const TensorView& output = model.tensor("output.weight");
    EXPECT_EQ(output.shape, (std::vector<int64_t>{kVocab, kDim}));
    ASSERT_EQ(output.nbytes, wcls.size() * 4);
    EXPECT_EQ(std::memcmp(output.data, wcls.data(), output.nbytes), 0);
  }
}

TEST(Llama2c, TokenizerPathFromOptions) {
  OpenOptions options;
  options.tokenizer_path = test::shared_dir() / "models" / "stories260K" / "tok512.bin";
  const ModelFile model = open_model_file(stories_path(), options);
  EXPECT_EQ(model.metadata.require_string(kTokenizerPathKey), options.tokenizer_path->string());
}

TEST(Llama2c, DetectsHeaders) {
  const std::vector<char> legacy = test::read_bytes(stories_path());
  EXPECT_TRUE(looks_like_llama2c(std::as_bytes(std::span(legacy.data(), 256))));
  const char gguf[8] = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  EXPECT_FALSE(looks_like_llama2c(std::as_bytes(std::span(gguf))));
}

}  // namespace
}  // namespace stepdown::io
