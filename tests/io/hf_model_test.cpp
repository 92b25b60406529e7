// Hugging Face directories built from stories260K.bin by
// scripts/golden/io_hf_from_llama2c.py (F32, F16, BF16, sharded, qwen2, qwen3, untied):
// every tensor must equal the llama2.c source after undoing the q/k row permutation and
// rounding the source the same way.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/core/half.h"
#include "stepdown/io/hf_model.h"
#include "stepdown/io/model_file.h"
#include "test_paths.h"

namespace stepdown::io {
namespace {

using test::ScratchDir;

std::filesystem::path stories_path() { return test::shared_dir() / "models" / "stories260K" / "stories260K.bin"; }

// Runs the converter into `out` with extra arguments; fails the test when it fails.
void convert(const std::filesystem::path& out, const std::string& args) {
  const std::string command = "python3 '" +
                              (test::source_dir() / "scripts" / "golden" / "io_hf_from_llama2c.py").string() + "' '" +
                              stories_path().string() + "' '" + out.string() + "' " + args;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

float element(const TensorView& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: {
      float v;
      std::memcpy(&v, t.data + i * 4, 4);
      return v;
    }
    case DType::F16:
    case DType::BF16: {
      uint16_t bits;
      std::memcpy(&bits, t.data + i * 2, 2);
      return t.dtype == DType::F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
    }
    default:
      ADD_FAILURE() << "unexpected dtype " << dtype_name(t.dtype);
      return 0;
  }
}

// The source value as the converter stored it in `dtype` (numpy's float16 cast and
// round-to-nearest-even bfloat16 both round to nearest even, as core/half.h does).
float rounded(float v, DType dtype) {
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(v));
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}

// The interleaved (llama2.c) row that HF row `r` of a q or k projection came from: HF
// keeps the first halves of all RoPE pairs of a head, then the second halves.
int64_t source_row(int64_t r, int64_t head_dim) {
  const int64_t head = r / head_dim;
  const int64_t j = r % head_dim;
  const int64_t half = j / (head_dim / 2);
  const int64_t pair = j % (head_dim / 2);
  return head * head_dim + 2 * pair + half;
}

// Checks that every llama2.c tensor is in `hf` with the same shape and values.
void expect_matches_source(const ModelFile& hf, DType dtype) {
  const ModelFile source = open_model_file(stories_path());
  const int64_t head_dim = source.metadata.require_int("llama.embedding_length") /
                           source.metadata.require_int("llama.attention.head_count");
  for (const TensorView& s : source.tensors) {
    SCOPED_TRACE(s.name);
    const TensorView* h = hf.find_tensor(s.name);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->shape, s.shape);
    EXPECT_EQ(h->dtype, dtype);
    const bool permuted = s.name.ends_with("attn_q.weight") || s.name.ends_with("attn_k.weight");
    int64_t mismatches = 0;
    for (int64_t r = 0; r < h->rows(); ++r) {
      const int64_t src_r = permuted ? source_row(r, head_dim) : r;
      for (int64_t c = 0; c < h->cols(); ++c) {
        const float expected = rounded(element(s, src_r * s.cols() + c), dtype);
        mismatches += element(*h, r * h->cols() + c) != expected ? 1 : 0;
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(HfModel, F32MatchesLlama2c) {
  ScratchDir dir("hf");
  convert(dir.path(), "--dtype f32");
  const ModelFile hf = open_model_file(dir.path());
  EXPECT_EQ(hf.format, ModelFormat::SAFETENSORS_HF);
  EXPECT_EQ(hf.find_tensor("output.weight"), nullptr);  // tied
  expect_matches_source(hf, DType::F32);
  EXPECT_EQ(hf.tensors.size(), 2u + 9u * 5u);

  const Metadata& m = hf.metadata;
  EXPECT_EQ(m.require_string("general.architecture"), "llama");
  EXPECT_EQ(m.require_int("llama.embedding_length"), 64);
  EXPECT_EQ(m.require_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(m.require_int("llama.block_count"), 5);
  EXPECT_EQ(m.require_int("llama.attention.head_count"), 8);
  EXPECT_EQ(m.require_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(m.require_int("llama.context_length"), 512);
  EXPECT_EQ(m.require_int("llama.vocab_size"), 512);
  EXPECT_EQ(m.require_int("llama.rope.dimension_count"), 8);
  EXPECT_FLOAT_EQ(static_cast<float>(m.require_float("llama.rope.freq_base")), 10000.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(m.require_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(m.require_string(kRopeLayoutKey), "neox");
  EXPECT_FALSE(m.contains("llama.attention.key_length"));
  EXPECT_FALSE(m.contains(kTokenizerPathKey));
}

TEST(HfModel, F16MatchesLlama2c) {
  ScratchDir dir("hf");
  convert(dir.path(), "--dtype f16");
  expect_matches_source(open_model_file(dir.path()), DType::F16);
}

TEST(HfModel, Bf16MatchesLlama2c) {
  ScratchDir dir("hf");
  convert(dir.path(), "--dtype bf16");
  expect_matches_source(open_model_file(dir.path()), DType::BF16);
}

TEST(HfModel, ShardedMatchesLlama2c) {
  ScratchDir dir("hf");
  convert(dir.path(), "--dtype bf16 --shards 3");
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  const ModelFile hf = open_model_file(dir.path());
  EXPECT_EQ(hf.mappings.size(), 3u);
  expect_matches_source(hf, DType::BF16);
}

TEST(HfModel, SafetensorsPathOpensDirectory) {
  ScratchDir dir("hf");
  convert(dir.path(), "");
  const ModelFile hf = open_model_file(dir / "model.safetensors");
  EXPECT_EQ(hf.format, ModelFormat::SAFETENSORS_HF);
  EXPECT_EQ(hf.path, dir.path());
}

TEST(HfModel, TokenizerJsonPath) {
  ScratchDir dir("hf");
  convert(dir.path(), "");
  std::ofstream(dir / "tokenizer.json") << "{}";
  EXPECT_EQ(open_model_file(dir.path()).metadata.require_string(kTokenizerPathKey), (dir / "tokenizer.json").string());
}

TEST(HfModel, UntiedClassifier) {
  ScratchDir dir("hf");
  convert(dir.path(), "--untied");
  const ModelFile hf = open_model_file(dir.path());
  const TensorView& output = hf.tensor("output.weight");
  const TensorView& embd = hf.tensor("token_embd.weight");
  ASSERT_EQ(output.shape, embd.shape);
  for (int64_t i = 0; i < output.numel(); i += 97) EXPECT_EQ(element(output, i), 0.5f * element(embd, i));
}

TEST(HfModel, Qwen2Biases) {
  ScratchDir dir("hf");
  convert(dir.path(), "--model-type qwen2 --dtype f32");
  const ModelFile hf = open_model_file(dir.path());
  EXPECT_EQ(hf.metadata.require_string("general.architecture"), "qwen2");
  EXPECT_EQ(hf.metadata.require_int("qwen2.block_count"), 5);
  expect_matches_source(hf, DType::F32);
  // The converter writes bias[i] = 0.001 * i + layer.
  for (int layer = 0; layer < 5; ++layer) {
    for (const char* proj : {"attn_q", "attn_k", "attn_v"}) {
      const TensorView& bias = hf.tensor("blk." + std::to_string(layer) + "." + proj + ".bias");
      EXPECT_EQ(bias.shape, (std::vector<int64_t>{proj == std::string("attn_q") ? 64 : 32}));
      EXPECT_FLOAT_EQ(element(bias, 3), 0.003f + static_cast<float>(layer));
    }
  }
}

TEST(HfModel, Qwen3QkNormAndHeadDim) {
  ScratchDir dir("hf");
  convert(dir.path(), "--model-type qwen3 --dtype f32");
  const ModelFile hf = open_model_file(dir.path());
  EXPECT_EQ(hf.metadata.require_string("general.architecture"), "qwen3");
  EXPECT_EQ(hf.metadata.require_int("qwen3.attention.key_length"), 8);
  EXPECT_EQ(hf.metadata.require_int("qwen3.attention.value_length"), 8);
  expect_matches_source(hf, DType::F32);
  const TensorView& k_norm = hf.tensor("blk.2.attn_k_norm.weight");
  EXPECT_EQ(k_norm.shape, (std::vector<int64_t>{8}));
  EXPECT_FLOAT_EQ(element(k_norm, 4), 1.04f + 2.0f);
}

TEST(HfModel, MistralMapsToLlama) {
  ScratchDir dir("hf");
  convert(dir.path(), "--model-type mistral");
  EXPECT_EQ(open_model_file(dir.path()).metadata.require_string("general.architecture"), "llama");
}

// Rewrites config.json with `edit` applied.
template <class Edit>
void edit_config(const std::filesystem::path& dir, Edit edit) {
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  edit(config);
  std::ofstream(dir / "config.json") << config.dump();
}

TEST(HfModel, RopeScalingLlama3) {
  ScratchDir dir("hf");
  convert(dir.path(), "");
  edit_config(dir.path(), [](nlohmann::json& c) {
    c["rope_theta"] = 500000.0;
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  });
  const Metadata m = open_model_file(dir.path()).metadata;
  EXPECT_EQ(m.require_string("llama.rope.scaling.type"), "llama3");
  EXPECT_EQ(m.require_float("llama.rope.scaling.factor"), 8.0);
  EXPECT_EQ(m.require_int("llama.rope.scaling.original_context_length"), 8192);
  EXPECT_EQ(m.require_float(std::string("llama") + std::string(kRopeLowFreqFactorSuffix)), 1.0);
  EXPECT_EQ(m.require_float(std::string("llama") + std::string(kRopeHighFreqFactorSuffix)), 4.0);
  EXPECT_EQ(m.require_float("llama.rope.freq_base"), 500000.0);
}

TEST(HfModel, RopeScalingLinear) {
  ScratchDir dir("hf");
  convert(dir.path(), "");
  edit_config(dir.path(), [](nlohmann::json& c) { c["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; });
  const Metadata m = open_model_file(dir.path()).metadata;
  EXPECT_EQ(m.require_string("llama.rope.scaling.type"), "linear");
  EXPECT_EQ(m.require_float("llama.rope.scaling.factor"), 2.0);
}

TEST(HfModel, RopeScalingYarnUnsupported) {
  ScratchDir dir("hf");
  convert(dir.path(), "");
  edit_config(dir.path(), [](nlohmann::json& c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}}; });
  EXPECT_THROW(open_model_file(dir.path()), Unsupported);
}

}  // namespace
}  // namespace stepdown::io
