#include "stepdown/model/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/rope.h"
#include "stepdown/model/weights.h"

namespace stepdown::model {
namespace {

using ::testing::HasSubstr;

io::Metadata llama_metadata() {
  io::Metadata m;
  m.set_string("general.architecture", "llama");
  m.set_u32("llama.embedding_length", 64);
  m.set_u32("llama.block_count", 2);
  m.set_u32("llama.attention.head_count", 4);
  m.set_u32("llama.attention.head_count_kv", 2);
  m.set_u32("llama.feed_forward_length", 96);
  m.set_u32("llama.vocab_size", 32);
  m.set_f32("llama.rope.freq_base", 10000.0f);
  return m;
}

template <class E>
std::string error_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "no exception";
}

TEST(ModelConfig, ReadsLlamaMetadata) {
  const ModelConfig c = config_from_metadata(llama_metadata(), "m.gguf");
  EXPECT_EQ(c.architecture, Architecture::LLAMA);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(c.rope_dim, 16);
  EXPECT_EQ(c.rope_layout, RopeLayout::INTERLEAVED);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::NONE);
}

TEST(ModelConfig, QwenFamiliesDefaultToNeox) {
  io::Metadata m;
  m.set_string("general.architecture", "qwen3");
  m.set_u32("qwen3.embedding_length", 64);
  m.set_u32("qwen3.block_count", 1);
  m.set_u32("qwen3.attention.head_count", 4);
  m.set_u32("qwen3.attention.key_length", 32);
  m.set_u32("qwen3.feed_forward_length", 96);
  const ModelConfig c = config_from_metadata(m, "q.gguf");
  EXPECT_EQ(c.rope_layout, RopeLayout::NEOX);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.q_dim(), 128);
}

TEST(ModelConfig, MissingKeyNamesFileAndKey) {
  io::Metadata m;
  m.set_string("general.architecture", "llama");
  const std::string message = error_message<FormatError>([&] { config_from_metadata(m, "m.gguf"); });
  EXPECT_THAT(message, HasSubstr("m.gguf"));
  EXPECT_THAT(message, HasSubstr("llama.embedding_length"));
}

TEST(ModelConfig, KvHeadsMustDivideHeads) {
  io::Metadata m = llama_metadata();
  m.set_u32("llama.attention.head_count_kv", 3);
  const std::string message = error_message<FormatError>([&] { config_from_metadata(m, "m.gguf"); });
  EXPECT_THAT(message, HasSubstr("head_count_kv is 3"));
}

TEST(ModelConfig, UnknownArchitectureIsUnsupported) {
  io::Metadata m = llama_metadata();
  m.set_string("general.architecture", "mamba");
  EXPECT_THROW(config_from_metadata(m, "m.gguf"), Unsupported);
}

TEST(Rope, Llama3ScalingKeepsHighAndSlowsLowFrequencies) {
  io::Metadata m = llama_metadata();
  m.set_f32("llama.rope.freq_base", 500000.0f);
  m.set_string("llama.rope.scaling.type", "llama3");
  m.set_f32("llama.rope.scaling.factor", 8.0f);
  m.set_u32("llama.rope.scaling.original_context_length", 8192);
  m.set_f32("llama.rope.scaling.low_freq_factor", 1.0f);
  m.set_f32("llama.rope.scaling.high_freq_factor", 4.0f);
  const ModelConfig c = config_from_metadata(m, "m.gguf");
  ASSERT_EQ(c.rope_scaling.type, RopeScalingType::LLAMA3);
  const std::vector<double> scaled = rope_inverse_frequencies(c, {});
  for (size_t i = 0; i < scaled.size(); ++i) {
    const double f = std::pow(500000.0, -2.0 * static_cast<double>(i) / 16.0);
    const double wavelength = 2 * std::numbers::pi / f;
    if (wavelength < 8192.0 / 4.0) EXPECT_DOUBLE_EQ(scaled[i], f) << i;
    if (wavelength > 8192.0) EXPECT_DOUBLE_EQ(scaled[i], f / 8.0) << i;
    EXPECT_LE(scaled[i], f) << i;
    EXPECT_GE(scaled[i], f / 8.0) << i;
  }
}

TEST(Rope, LinearScalingAndDivisorsDivideFrequencies) {
  io::Metadata m = llama_metadata();
  m.set_string("llama.rope.scaling.type", "linear");
  m.set_f32("llama.rope.scaling.factor", 4.0f);
  const ModelConfig c = config_from_metadata(m, "m.gguf");
  const std::vector<float> divisors(8, 2.0f);
  const std::vector<double> scaled = rope_inverse_frequencies(c, divisors);
  for (size_t i = 0; i < scaled.size(); ++i) {
    EXPECT_DOUBLE_EQ(scaled[i], std::pow(10000.0, -2.0 * static_cast<double>(i) / 16.0) / 8.0);
  }
}

// NeoX pairs (i, i + d/2) are interleaved pairs (2i, 2i+1) after a fixed permutation of
// the head's dimensions, so both layouts must agree once the input is permuted.
TEST(Rope, NeoxEqualsInterleavedOnPermutedHead) {
  ModelConfig c = config_from_metadata(llama_metadata(), "m.gguf");
  const int64_t d = c.head_dim;
  std::vector<float> neox(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) neox[static_cast<size_t>(i)] = std::sin(0.7f * static_cast<float>(i) + 0.3f);
  std::vector<float> interleaved(static_cast<size_t>(d));
  for (int64_t i = 0; i < d / 2; ++i) {
    interleaved[static_cast<size_t>(2 * i)] = neox[static_cast<size_t>(i)];
    interleaved[static_cast<size_t>(2 * i + 1)] = neox[static_cast<size_t>(i + d / 2)];
  }
  c.rope_layout = RopeLayout::INTERLEAVED;
  Rope(c, {}).apply(interleaved.data(), 1, 37);
  c.rope_layout = RopeLayout::NEOX;
  Rope(c, {}).apply(neox.data(), 1, 37);
  for (int64_t i = 0; i < d / 2; ++i) {
    EXPECT_FLOAT_EQ(interleaved[static_cast<size_t>(2 * i)], neox[static_cast<size_t>(i)]);
    EXPECT_FLOAT_EQ(interleaved[static_cast<size_t>(2 * i + 1)], neox[static_cast<size_t>(i + d / 2)]);
  }
}

// A model file held in memory: every tensor F32 and zero-filled, shapes from the config.
struct FakeModelFile {
  explicit FakeModelFile(const ModelConfig& c) {
    file.path = "fake.gguf";
    add("token_embd.weight", {c.vocab_size, c.dim});
    add("output_norm.weight", {c.dim});
    for (int64_t i = 0; i < c.n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      add(p + "attn_norm.weight", {c.dim});
      add(p + "attn_q.weight", {c.q_dim(), c.dim});
      add(p + "attn_k.weight", {c.kv_dim(), c.dim});
      add(p + "attn_v.weight", {c.kv_dim(), c.dim});
      add(p + "attn_output.weight", {c.dim, c.q_dim()});
      add(p + "ffn_norm.weight", {c.dim});
      add(p + "ffn_gate.weight", {c.ffn_dim, c.dim});
      add(p + "ffn_up.weight", {c.ffn_dim, c.dim});
      add(p + "ffn_down.weight", {c.dim, c.ffn_dim});
    }
  }
  void add(const std::string& name, std::vector<int64_t> shape) {
    TensorView t;
    t.name = name;
    t.shape = std::move(shape);
    t.nbytes = static_cast<size_t>(t.numel()) * sizeof(float);
    buffers.push_back(std::make_shared<std::vector<std::byte>>(t.nbytes));
    t.data = buffers.back()->data();
    file.tensors.push_back(t);
  }
  io::ModelFile file;
  std::vector<std::shared_ptr<std::vector<std::byte>>> buffers;
};

TEST(ModelWeights, BindsEveryTensorAndTiesOutput) {
  const ModelConfig c = config_from_metadata(llama_metadata(), "fake.gguf");
  FakeModelFile fake(c);
  const ModelWeights w = bind_weights(fake.file, c);
  EXPECT_TRUE(w.config.tied_embeddings);
  EXPECT_EQ(w.output.data, w.token_embd.data);
  ASSERT_EQ(w.blocks.size(), 2u);
  EXPECT_EQ(w.blocks[1].ffn_down.rows, 64);
  EXPECT_EQ(w.blocks[1].ffn_down.cols, 96);
  EXPECT_EQ(w.decode_bytes_per_token(), sizeof(float) * (32 * 64 + 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 96 * 64)));
}

TEST(ModelWeights, ShapeMismatchNamesFileTensorAndShapes) {
  const ModelConfig c = config_from_metadata(llama_metadata(), "fake.gguf");
  FakeModelFile fake(c);
  for (TensorView& t : fake.file.tensors) {
    if (t.name == "blk.1.attn_k.weight") t.shape = {64, 64};
  }
  const std::string message = error_message<FormatError>([&] { bind_weights(fake.file, c); });
  EXPECT_THAT(message, HasSubstr("fake.gguf"));
  EXPECT_THAT(message, HasSubstr("blk.1.attn_k.weight"));
  EXPECT_THAT(message, HasSubstr("[64, 64]"));
  EXPECT_THAT(message, HasSubstr("[32, 64]"));
}

TEST(ModelWeights, MissingTensorNamesIt) {
  const ModelConfig c = config_from_metadata(llama_metadata(), "fake.gguf");
  FakeModelFile fake(c);
  std::erase_if(fake.file.tensors, [](const TensorView& t) { return t.name == "blk.0.ffn_up.weight"; });
  const std::string message = error_message<FormatError>([&] { bind_weights(fake.file, c); });
  EXPECT_THAT(message, HasSubstr("blk.0.ffn_up.weight is missing"));
}

TEST(ModelWeights, ConversionToBf16OwnsRoundedRows) {
  const ModelConfig c = config_from_metadata(llama_metadata(), "fake.gguf");
  FakeModelFile fake(c);
  float* q = reinterpret_cast<float*>(const_cast<std::byte*>(fake.file.tensors[3].data));  // blk.0.attn_q
  ASSERT_EQ(fake.file.tensors[3].name, "blk.0.attn_q.weight");
  q[0] = 1.0f + 1.0f / 1024.0f;  // rounds to 1.0 in bf16 (7 mantissa bits)
  q[1] = -3.5f;
  const ModelWeights w = bind_weights(fake.file, c, WeightConversion::BF16);
  EXPECT_EQ(w.blocks[0].attn_q.dtype, DType::BF16);
  EXPECT_EQ(w.blocks[0].attn_q.row_stride, 64u * 2);
  std::vector<float> row(64);
  kernels::dequantize_row(DType::BF16, w.blocks[0].attn_q.data, row.data(), 64);
  EXPECT_EQ(row[0], 1.0f);
  EXPECT_EQ(row[1], -3.5f);
}

}  // namespace
}  // namespace stepdown::model
