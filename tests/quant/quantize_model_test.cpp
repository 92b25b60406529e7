// quantize_model end to end on stories260K (llama2.c checkpoint, FFN 172 wide) and on a
// Hugging Face directory made from it; plan_tensors' override and fallback rules.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"
#include "stepdown/quant/quantize_model.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

TEST(QuantizeModel, Stories260KFallsBackAndEmbedsTokenizer) {
  test::ScratchDir dir("quant_stories");
  QuantizeOptions options;
  options.model = stories_dir() / "stories260K.bin";
  options.tokenizer = stories_dir() / "tok512.bin";
  options.scheme = "q4_0";
  options.output = dir / "s.gguf";
  const QuantizeResult result = quantize_model(options);

  const io::ModelFile file = io::open_gguf(options.output);
  EXPECT_EQ(file.tensor("blk.0.ffn_down.weight").dtype, DType::F16);  // rows of 172
  EXPECT_EQ(file.tensor("blk.0.ffn_up.weight").dtype, DType::Q4_0);   // rows of 64
  EXPECT_EQ(file.tensor("blk.0.attn_q.weight").dtype, DType::Q4_0);
  EXPECT_EQ(file.tensor("token_embd.weight").dtype, DType::Q4_0);
  EXPECT_EQ(file.tensor("blk.0.attn_norm.weight").dtype, DType::F32);
  EXPECT_EQ(file.metadata.get_int("general.file_type"), 2);
  EXPECT_EQ(file.metadata.get_int("general.quantization_version"), 2);
  EXPECT_EQ(file.metadata.get_string("tokenizer.ggml.model"), "llama");
  const auto tokens = file.metadata.get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[3], "<0x00>");
  EXPECT_EQ(file.metadata.get_int("llama.embedding_length"), 64);
  EXPECT_FALSE(file.metadata.contains("stepdown.tokenizer.path"));

  std::ifstream in(result.manifest);
  ASSERT_TRUE(in.good()) << result.manifest;
  const nlohmann::json manifest = nlohmann::json::parse(in);
  EXPECT_EQ(manifest.at("scheme"), "q4_0");
  EXPECT_EQ(manifest.at("source").at("sha256"),
            "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
  EXPECT_EQ(manifest.at("params"), 260032);
  EXPECT_EQ(manifest.at("tensors").size(), file.tensors.size());
  bool saw_fallback = false;
  for (const nlohmann::json& t : manifest.at("tensors")) {
    if (t.at("name") == "blk.3.ffn_down.weight") {
      EXPECT_EQ(t.at("type"), "f16");
      EXPECT_NE(t.at("note").get<std::string>().find("172"), std::string::npos);
      saw_fallback = true;
    }
  }
  EXPECT_TRUE(saw_fallback);
  const double bpw = manifest.at("bits_per_weight").get<double>();
  EXPECT_DOUBLE_EQ(bpw, 8.0 * manifest.at("tensor_bytes").get<double>() / 260032.0);
}

TEST(QuantizeModel, OverrideThatDoesNotFitFailsWithoutOutput) {
  test::ScratchDir dir("quant_stories_bad");
  QuantizeOptions options;
  options.model = stories_dir() / "stories260K.bin";
  options.scheme = "q8_0";
  options.overrides = {"blk.*.ffn_down.weight=q4_0"};
  options.output = dir / "s.gguf";
  try {
    quantize_model(options);
    FAIL() << "override to q4_0 on rows of 172 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_down.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("172"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// A Hugging Face directory stores q and k rows in the neox layout; the GGUF must hold them
// interleaved, exactly as the llama2.c checkpoint they were converted from.
TEST(QuantizeModel, HfQkRowsBecomeInterleaved) {
  test::ScratchDir dir("quant_hf");
  const std::string command = "python3 '" + (test::source_dir() / "scripts/golden/io_hf_from_llama2c.py").string() +
                              "' '" + (stories_dir() / "stories260K.bin").string() + "' '" + (dir / "hf").string() +
                              "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  QuantizeOptions from_hf;
  from_hf.model = dir / "hf";
  from_hf.scheme = "f32";
  from_hf.output = dir / "from_hf.gguf";
  quantize_model(from_hf);
  QuantizeOptions from_llama2c = from_hf;
  from_llama2c.model = stories_dir() / "stories260K.bin";
  from_llama2c.output = dir / "from_llama2c.gguf";
  quantize_model(from_llama2c);

  const io::ModelFile a = io::open_gguf(from_hf.output);
  const io::ModelFile b = io::open_gguf(from_llama2c.output);
  for (const char* name : {"blk.0.attn_q.weight", "blk.4.attn_k.weight", "blk.2.ffn_down.weight"}) {
    const TensorView& ta = a.tensor(name);
    const TensorView& tb = b.tensor(name);
    ASSERT_EQ(ta.nbytes, tb.nbytes) << name;
    EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.nbytes), 0) << name;
  }
}

TEST(PlanTensors, OverridesGlobRegexAndFallback) {
  const std::vector<TensorView> tensors = {
      {"token_embd.weight", DType::F32, {512, 256}},  {"blk.0.attn_norm.weight", DType::F32, {256}},
      {"blk.0.attn_q.weight", DType::F32, {256, 256}}, {"blk.1.attn_q.weight", DType::F32, {256, 256}},
      {"blk.0.ffn_down.weight", DType::F32, {256, 96}}, {"output.weight", DType::F32, {512, 256}},
  };
  const std::vector<TensorOverride> overrides = {parse_override("token_embd.weight=q8_0"),
                                                 parse_override("^blk\\.1\\..*=f16"),
                                                 parse_override("*.weight=q6_k"),
                                                 parse_override("output.weight=bf16")};
  const std::vector<TensorPlan> plans = plan_tensors(tensors, *find_scheme("q4_k"), {overrides[0], overrides[1]});
  EXPECT_EQ(plans[0].format->name, "q8_0");
  EXPECT_EQ(plans[1].format->name, "f32");
  EXPECT_EQ(plans[2].format->name, "q4_k");
  EXPECT_EQ(plans[3].format->name, "f16");
  EXPECT_EQ(plans[4].format->name, "q5_0");  // rows of 96: q4_k falls back
  EXPECT_NE(plans[4].note.find("fallback"), std::string::npos);
  EXPECT_EQ(plans[5].format->name, "q4_k");

  std::vector<TensorView> fitting = tensors;
  fitting.erase(fitting.begin() + 4);  // rows of 96 do not fit q6_k
  const std::vector<TensorPlan> last_wins = plan_tensors(fitting, *find_scheme("q4_0"), overrides);
  EXPECT_EQ(last_wins[0].format->name, "q6_k");
  EXPECT_EQ(last_wins[1].format->name, "f32");  // 1-D stays F32
  EXPECT_EQ(last_wins[4].format->name, "bf16");
  // An override does not fall back: q6_k on rows of 96 is an error.
  EXPECT_THROW(plan_tensors(tensors, *find_scheme("q4_0"), overrides), InvalidArgument);
}

TEST(PlanTensors, BadOverridesAreRejected) {
  EXPECT_THROW(parse_override("token_embd.weight"), InvalidArgument);
  EXPECT_THROW(parse_override("token_embd.weight=q3_x"), InvalidArgument);
  EXPECT_THROW(parse_override("^blk(=q8_0"), InvalidArgument);
  EXPECT_EQ(find_scheme("int5-g128"), nullptr);
}

TEST(PlanTensors, OverridesAcceptStepdownFormats) {
  const std::vector<TensorView> tensors = {{"token_embd.weight", DType::F32, {10, 256}},
                                           {"blk.0.ffn_down.weight", DType::F32, {8, 96}}};
  const std::vector<TensorOverride> overrides = {parse_override("token_embd.weight=int3-g128"),
                                                 parse_override("blk.*.ffn_down.weight=int8-w8a8")};
  const std::vector<TensorPlan> plans = plan_tensors(tensors, *find_scheme("q8_0"), overrides);
  EXPECT_EQ(plans[0].format->dtype, DType::INT3_G128);
  EXPECT_EQ(plans[1].format->dtype, DType::INT8_W8A8);

  // An override does not fall back: int4-g64 on rows of 96 is an error naming both numbers.
  try {
    plan_tensors(tensors, *find_scheme("q8_0"), {parse_override("blk.0.ffn_down.weight=int4-g64")});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("blk.0.ffn_down.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("96"), std::string::npos) << message;
    EXPECT_NE(message.find("64"), std::string::npos) << message;
  }
}

TEST(PlanTensors, StepdownFormatsFallBack) {
  const std::vector<TensorView> tensors = {{"a", DType::F32, {4, 192}}, {"b", DType::F32, {4, 96}},
                                           {"c", DType::F32, {4, 172}}, {"d", DType::F32, {4, 384}}};
  const auto dtypes = [&](const char* scheme) {
    std::vector<DType> out;
    for (const TensorPlan& p : plan_tensors(tensors, *find_scheme(scheme), {})) out.push_back(p.format->dtype);
    return out;
  };
  EXPECT_EQ(dtypes("int4-g128"), (std::vector<DType>{DType::INT4_G64, DType::INT4_G32, DType::INT8, DType::INT4_G128}));
  EXPECT_EQ(dtypes("int4-g128-asym"),
            (std::vector<DType>{DType::INT4_G64_ASYM, DType::INT4_G32_ASYM, DType::INT8, DType::INT4_G128_ASYM}));
  EXPECT_EQ(dtypes("int3-g128"), (std::vector<DType>{DType::INT3_G64, DType::INT4_G32, DType::INT8, DType::INT3_G128}));
  EXPECT_EQ(dtypes("int3-g64-asym"),
            (std::vector<DType>{DType::INT3_G64_ASYM, DType::INT4_G32_ASYM, DType::INT8, DType::INT3_G64_ASYM}));
  EXPECT_EQ(dtypes("int8-g128"), (std::vector<DType>{DType::INT8, DType::INT8, DType::INT8, DType::INT8_G128}));
  EXPECT_EQ(dtypes("fp8"), (std::vector<DType>(4, DType::FP8_E4M3)));
  const std::vector<TensorPlan> plans = plan_tensors(tensors, *find_scheme("int4-g128"), {});
  EXPECT_NE(plans[2].note.find("172"), std::string::npos) << plans[2].note;
}

TEST(PlanTensors, OutputHeadKeepsF32Activations) {
  const std::vector<TensorView> tensors = {{"token_embd.weight", DType::F32, {10, 256}},
                                           {"output.weight", DType::F32, {10, 256}},
                                           {"blk.0.attn_q.weight", DType::F32, {8, 256}}};
  const auto dtypes = [&](const char* scheme, const std::vector<TensorOverride>& overrides) {
    std::vector<DType> out;
    for (const TensorPlan& p : plan_tensors(tensors, *find_scheme(scheme), overrides)) out.push_back(p.format->dtype);
    return out;
  };
  EXPECT_EQ(dtypes("w8a8", {}), (std::vector<DType>{DType::INT8, DType::INT8, DType::INT8_W8A8}));
  EXPECT_EQ(dtypes("int8-outlier", {}), (std::vector<DType>{DType::INT8, DType::INT8, DType::INT8_OUTLIER}));
  EXPECT_EQ(dtypes("fp8-a8", {}), (std::vector<DType>{DType::FP8_E4M3, DType::FP8_E4M3, DType::FP8_E4M3_A8}));
  EXPECT_EQ(dtypes("q8_0", {}), (std::vector<DType>(3, DType::Q8_0)));
  // An override still decides.
  EXPECT_EQ(dtypes("w8a8", {parse_override("output.weight=int8-w8a8")}),
            (std::vector<DType>{DType::INT8, DType::INT8_W8A8, DType::INT8_W8A8}));
  const std::vector<TensorPlan> plans = plan_tensors(tensors, *find_scheme("w8a8"), {});
  EXPECT_NE(plans[1].note.find("output head"), std::string::npos) << plans[1].note;
}

}  // namespace
}  // namespace stepdown::quant
