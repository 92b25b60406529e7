// base_method=M: mixed hands the chosen formats and the base.KEY parameters to M, and the
// file takes M's values in the chosen formats.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "io/io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/method.h"
#include "stepdown/quant/quantize_model.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

// What the fake base method saw on its last run.
struct Seen {
  std::map<std::string, std::string> formats;  // tensor name -> planned format
  std::map<std::string, std::string> params;
};
Seen& seen() {
  static Seen s;
  return s;
}

// A base method that records its plans and sets every weight of blk.0.attn_q to 0.5.
void register_fake_base_method() {
  static const bool once = [] {
    register_quant_method({"test-record-plans", "records the plans it is given", [](const MethodContext& ctx) {
                             seen() = {};
                             for (const TensorPlan& plan : ctx.plans) seen().formats[plan.name] = plan.format->name;
                             seen().params = ctx.options.method_params;
                             MethodOutput out;
                             const TensorView& t = ctx.model.tensor("blk.0.attn_q.weight");
                             out.tensors[t.name].values.assign(static_cast<size_t>(t.numel()), 0.5f);
                             out.manifest = {{"fake", true}};
                             return out;
                           }});
    return true;
  }();
  (void)once;
}

TEST(MixedBaseMethod, ReceivesChosenFormats) {
  register_fake_base_method();
  test::ScratchDir dir("mixed_base");
  std::ifstream in(test::source_dir() / "bench" / "data" / "lighthouse-keeper.txt");
  std::ostringstream all;
  all << in.rdbuf();
  std::ofstream(dir / "calib.txt") << all.str().substr(0, all.str().size() / 2);

  const std::filesystem::path stories = test::shared_dir() / "models" / "stories260K";
  QuantizeOptions options;
  options.model = stories / "stories260K.bin";
  options.tokenizer = stories / "tok512.bin";
  options.scheme = "q4_0";
  options.output = dir / "m.gguf";
  options.method = "mixed";
  options.method_params = {{"target_bpw", "8.0"}, {"base_method", "test-record-plans"}, {"base.alpha", "1"}};
  options.calibration = dir / "calib.txt";
  options.calib_samples = 4;
  options.calib_seq_len = 64;
  options.threads = 2;
  const QuantizeResult result = quantize_model(options);

  const nlohmann::json& details = result.manifest_json.at("method_details");
  EXPECT_EQ(details.at("base_method"), "test-record-plans");
  EXPECT_EQ(details.at("base_method_details").at("fake"), true);
  ASSERT_EQ(seen().params.size(), 1u);
  EXPECT_EQ(seen().params.at("alpha"), "1");
  for (int layer = 0; layer < 5; ++layer) {
    const std::string unit = "blk." + std::to_string(layer);
    EXPECT_EQ(seen().formats.at(unit + ".attn_v.weight"), details.at("choice").at(unit)) << unit;
  }

  const io::ModelFile file = io::open_gguf(options.output);
  const TensorView& q = file.tensor("blk.0.attn_q.weight");
  const DType expected = details.at("choice").at("blk.0") == "q8_0" ? DType::Q8_0 : DType::Q4_0;
  ASSERT_EQ(q.dtype, expected);
  std::vector<float> row(static_cast<size_t>(q.cols()));
  kernels::dequantize_row(q.dtype, q.row(0), row.data(), q.cols());
  // q8_0 stores its scale in f16, so 127 steps give 0.5 to about 1e-4.
  EXPECT_NEAR(row[0], 0.5f, 1e-3f);
  EXPECT_NEAR(row[63], 0.5f, 1e-3f);
}

TEST(MixedBaseMethod, RejectsUnknownBaseMethod) {
  test::ScratchDir dir("mixed_base_bad");
  const std::filesystem::path stories = test::shared_dir() / "models" / "stories260K";
  QuantizeOptions options;
  options.model = stories / "stories260K.bin";
  options.tokenizer = stories / "tok512.bin";
  options.scheme = "q4_0";
  options.output = dir / "m.gguf";
  options.method = "mixed";
  options.method_params = {{"target_bpw", "8.0"}, {"base_method", "none-such"}};
  options.calibration = test::source_dir() / "bench" / "data" / "lighthouse-keeper.txt";
  EXPECT_THROW(quantize_model(options), InvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(options.output));
}

}  // namespace
}  // namespace stepdown::quant
