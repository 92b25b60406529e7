// stepdown's own formats end to end: quantize_model writes them into the GGUF container,
// the model loads them back, and its forward pass on the stored formats (fused kernels)
// gives the logits of the same file decoded once to f32 (WeightConversion::F32).
//
// Tolerance: both runs use the same decoded weights, because the fused kernels decode
// bit for bit as dequantize_row does. Only the order of f32 summation differs. Each dot
// product then differs by about n * 2^-24 relative, and a few layers compound that, so we
// require |a - b| <= 1e-4 * max|logit| + 1e-4 for every logit of every position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/gguf_container.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/quantize_model.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

// Logits (T, V) for `tokens` from position 0.
std::vector<float> logits_for(const io::ModelFile& file, model::WeightConversion conversion,
                              const std::vector<model::TokenId>& tokens) {
  const model::ModelWeights weights = model::load_weights(file, conversion);
  ThreadPool pool(2);
  model::Transformer transformer(weights, pool);
  model::KVCache cache(weights.config, static_cast<int64_t>(tokens.size()));
  model::Activations logits;
  transformer.forward(tokens, cache, logits, /*all_logits=*/true);
  return logits.data;
}

void expect_same_logits(const std::filesystem::path& path, const std::vector<model::TokenId>& tokens,
                        const std::string& scheme) {
  const io::ModelFile file = io::open_gguf(path);
  const std::vector<float> stored = logits_for(file, model::WeightConversion::NONE, tokens);
  const std::vector<float> decoded = logits_for(file, model::WeightConversion::F32, tokens);
  ASSERT_EQ(stored.size(), decoded.size());
  float max_logit = 0.0f;
  for (float v : decoded) max_logit = std::max(max_logit, std::fabs(v));
  ASSERT_GT(max_logit, 0.0f);
  const double tolerance = 1e-4 * max_logit + 1e-4;
  int failures = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (std::fabs(stored[i] - decoded[i]) > tolerance && failures++ < 5) {
      ADD_FAILURE() << scheme << " logit " << i << ": stored formats " << stored[i] << ", decoded to f32 "
                    << decoded[i] << ", tolerance " << tolerance;
    }
  }
}

nlohmann::json read_manifest(const QuantizeResult& result) {
  std::ifstream in(result.manifest);
  return nlohmann::json::parse(in);
}

struct SchemeCase {
  const char* scheme;
  DType wide;    // format of rows of 64 (stories260K) or 1536 (SmolLM2)
  DType narrow;  // format of stories260K's 172-wide ffn_down rows after fallback
};

constexpr SchemeCase kCases[] = {
    {"int4-g128", DType::INT4_G128, DType::INT8},
    {"int8", DType::INT8, DType::INT8},
    {"int3-g128", DType::INT3_G128, DType::INT8},
    {"fp8", DType::FP8_E4M3, DType::FP8_E4M3},
};

TEST(StepdownRoundTrip, Stories260KLogitsMatchDecodedWeights) {
  test::ScratchDir dir("roundtrip_stories");
  for (const SchemeCase& c : kCases) {
    SCOPED_TRACE(c.scheme);
    QuantizeOptions options;
    options.model = stories_dir() / "stories260K.bin";
    options.tokenizer = stories_dir() / "tok512.bin";
    options.scheme = c.scheme;
    options.output = dir / (std::string(c.scheme) + ".gguf");
    options.threads = 2;
    const QuantizeResult result = quantize_model(options);

    const io::ModelFile file = io::open_gguf(options.output);
    // stories260K's dim is 64, so int4-g128 and int3-g128 do not divide its rows either.
    const DType for_64 = c.wide == DType::INT4_G128 ? DType::INT4_G64
                         : c.wide == DType::INT3_G128 ? DType::INT3_G64 : c.wide;
    EXPECT_EQ(file.tensor("blk.0.attn_q.weight").dtype, for_64);
    EXPECT_EQ(file.tensor("blk.0.ffn_down.weight").dtype, c.narrow);
    EXPECT_EQ(file.tensor("blk.0.attn_norm.weight").dtype, DType::F32);

    const nlohmann::json manifest = read_manifest(result);
    EXPECT_EQ(manifest.at("runs_in_llama_cpp"), false);
    EXPECT_EQ(manifest.at("output").at("stepdown_container_version"), 1);
    for (const nlohmann::json& t : manifest.at("tensors")) {
      if (t.at("name") != "blk.0.ffn_down.weight") continue;
      EXPECT_EQ(t.at("type"), std::string(stepdown_format_name(c.narrow)));
      if (c.narrow != c.wide) EXPECT_NE(t.at("note").get<std::string>().find("172"), std::string::npos);
    }

    expect_same_logits(options.output, {1, 403, 407, 261, 378, 300, 25}, c.scheme);
  }
}

TEST(StepdownRoundTrip, RequantizingContainerFileWorks) {
  // A stepdown-format file is a valid source: its tensors are decoded and quantized again,
  // and the old container keys do not leak into a GGUF-only output.
  test::ScratchDir dir("roundtrip_requant");
  QuantizeOptions options;
  options.model = stories_dir() / "stories260K.bin";
  options.tokenizer = stories_dir() / "tok512.bin";
  options.scheme = "int4-g32";
  options.output = dir / "a.gguf";
  quantize_model(options);

  QuantizeOptions again;
  again.model = options.output;
  again.scheme = "q8_0";
  again.output = dir / "b.gguf";
  quantize_model(again);
  const io::ModelFile file = io::open_gguf(again.output);
  EXPECT_EQ(file.tensor("blk.0.attn_q.weight").dtype, DType::Q8_0);
  for (const auto& [key, value] : file.metadata.entries()) EXPECT_FALSE(io::is_container_key(key)) << key;

  again.scheme = "int3-g64-asym";
  again.overrides = {"token_embd.weight=int8"};
  again.output = dir / "c.gguf";
  quantize_model(again);
  const io::ModelFile c = io::open_gguf(again.output);
  EXPECT_EQ(c.tensor("blk.0.attn_q.weight").dtype, DType::INT3_G64_ASYM);
  EXPECT_EQ(c.tensor("token_embd.weight").dtype, DType::INT8);
  expect_same_logits(again.output, {1, 403, 407}, "int3-g64-asym");
}

// The CLI end to end: stepdown quantize writes the container, and stepdown run generates
// from it. Greedy text from the stored formats equals the text from the same file decoded
// to f32 (--weights f32). w8a8 multiplies int8-quantized activations, which the f32
// conversion does not, so that scheme only has to run.
TEST(StepdownRoundTrip, CliQuantizeThenRun) {
  test::ScratchDir dir("roundtrip_cli");
  const std::string model = "'" + (stories_dir() / "stories260K.bin").string() + "'";
  const std::string tokenizer = "--tokenizer '" + (stories_dir() / "tok512.bin").string() + "'";
  for (const char* scheme : {"int3-g64-asym", "int8-g128", "w8a8"}) {
    SCOPED_TRACE(scheme);
    const std::string output = "'" + (dir / (std::string(scheme) + ".gguf")).string() + "'";
    const test::CliResult quantized =
        test::run_cli("quantize " + model + " " + tokenizer + " --scheme " + scheme + " -o " + output);
    ASSERT_EQ(quantized.exit_code, 0) << quantized.err;
    EXPECT_NE(quantized.err.find("llama.cpp does not"), std::string::npos) << quantized.err;

    const std::string run_args = "run " + output + " --prompt 'Once upon a time' -n 16 --temp 0 --threads 2";
    const test::CliResult native = test::run_cli(run_args);
    ASSERT_EQ(native.exit_code, 0) << native.err;
    EXPECT_GT(native.out.size(), std::string("Once upon a time").size()) << native.out;
    if (std::string(scheme) == "w8a8") continue;
    const test::CliResult decoded = test::run_cli(run_args + " --weights f32");
    ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
    EXPECT_EQ(native.out, decoded.out);
  }
}

TEST(StepdownRoundTrip, SmolLM2LogitsMatchDecodedWeights) {
  const std::filesystem::path source = test::fetched_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_FALSE(source.empty()) << "SmolLM2-135M-Instruct.Q4_1.gguf not found; run scripts/fetch-models";
  test::ScratchDir dir("roundtrip_smollm2");
  for (const SchemeCase& c : kCases) {
    SCOPED_TRACE(c.scheme);
    QuantizeOptions options;
    options.model = source;
    options.scheme = c.scheme;
    options.output = dir / (std::string(c.scheme) + ".gguf");
    options.threads = 2;
    quantize_model(options);
    const io::ModelFile file = io::open_gguf(options.output);
    // ffn_down rows are 1536 wide, which every group divides.
    EXPECT_EQ(file.tensor("blk.0.ffn_down.weight").dtype, c.wide);
    expect_same_logits(options.output, {1, 9690, 28, 253}, c.scheme);
  }
}

}  // namespace
}  // namespace stepdown::quant
