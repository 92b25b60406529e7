// stepdown quantize MODEL --scheme SCHEME -o OUT [--tokenizer FILE] [--override PATTERN=TYPE ...]
// [--threads N] [--json] [--method M --calib FILE ... [--against SUITE_OR_TRAFFIC]]: writes OUT as GGUF and
// OUT.manifest.json beside it.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "command.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/calibration_check.h"
#include "stepdown/quant/quantize_model.h"
#include "stepdown/quant/scheme.h"

namespace stepdown::cli {
namespace {

struct QuantizeArgs {
  std::string model;
  std::string tokenizer;
  std::string scheme;
  std::string output;
  std::vector<std::string> overrides;
  int threads = 0;
  bool json = false;
  std::string method = "rtn";
  std::vector<std::string> method_params;
  std::string calibration;
  std::string against;
  int64_t calib_samples = 128;
  int64_t calib_seq_len = 512;
  uint64_t seed = 0;
};

// KEY=VALUE from --method-param. The method itself validates the keys.
std::map<std::string, std::string> parse_method_params(const std::vector<std::string>& items) {
  std::map<std::string, std::string> params;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InvalidArgument("--method-param expects KEY=VALUE, got '" + item + "'");
    }
    params[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return params;
}

// Warns, as `stepdown calib-check` does, when the calibration set does not represent the
// production requests in `args.against`. Quantization goes ahead either way.
void warn_unrepresentative_calibration(const QuantizeArgs& args) {
  if (args.calibration.empty()) throw InvalidArgument("--against needs --calib: there is no calibration set to check");
  io::OpenOptions open;
  if (!args.tokenizer.empty()) open.tokenizer_path = args.tokenizer;
  const io::ModelFile model = io::open_model_file(args.model, open);
  const quant::CalibrationCheck check = quant::check_calibration_files(args.calibration, args.against, &model);
  for (const std::string& warning : check.warnings) {
    spdlog::warn("WARNING: calibration set {} against {}: {}", args.calibration, args.against, warning);
  }
}

int run_quantize(const QuantizeArgs& args) {
  check_output_is_not_input(args.model, args.output, "model");
  if (!args.against.empty()) warn_unrepresentative_calibration(args);
  quant::QuantizeOptions options;
  options.model = args.model;
  if (!args.tokenizer.empty()) options.tokenizer = args.tokenizer;
  options.scheme = args.scheme;
  options.overrides = args.overrides;
  options.output = args.output;
  options.threads = args.threads;
  options.method = args.method;
  options.method_params = parse_method_params(args.method_params);
  if (!args.calibration.empty()) options.calibration = args.calibration;
  options.calib_samples = args.calib_samples;
  options.calib_seq_len = args.calib_seq_len;
  options.seed = args.seed;
  const quant::QuantizeResult result = quant::quantize_model(options);
  if (args.json) {
    const std::string text = result.manifest_json.dump(2);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    spdlog::info("wrote {} ({} params, {:.2f} MB, {:.3f} bits per weight) and {}", result.output.string(),
                 result.params, static_cast<double>(result.tensor_bytes) / 1e6,
                 result.manifest_json["bits_per_weight"].get<double>(), result.manifest.string());
  }
  return 0;
}

const bool registered = register_command("quantize", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model by round-to-nearest or a calibrated --method, and write it as GGUF");
  cmd->add_option("model", args->model, "Model: a GGUF file, a llama2.c checkpoint or a Hugging Face directory")
      ->required();
  std::string schemes;
  for (const std::string& name : quant::scheme_names()) schemes += (schemes.empty() ? "" : ", ") + name;
  cmd->add_option("--scheme", args->scheme,
                  schemes + " (see docs/quantize.md; int*, fp8 and w8a8 outputs run in stepdown only, not llama.cpp)")
      ->required();
  cmd->add_option("-o,--output", args->output, "Output GGUF path; the manifest goes to OUT.manifest.json")
      ->required();
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer to embed for formats that carry none (tokenizer.bin)");
  cmd->add_option("--override", args->overrides,
                  "PATTERN=TYPE: give tensors whose name matches the glob or regex PATTERN the type TYPE; "
                  "repeatable, the last match wins");
  cmd->add_option("--threads", args->threads, "Worker threads; 0 uses every core")->check(kNonNegativeInteger);
  cmd->add_flag("--json", args->json, "Print the manifest as JSON on stdout");
  cmd->add_option("--method", args->method, "rtn (default) or a calibrated method; see docs/quantize.md");
  cmd->add_option("--method-param", args->method_params, "KEY=VALUE for the method (repeatable)");
  cmd->add_option("--calib", args->calibration, "Calibration data: traffic JSONL (prompt or messages) or plain text");
  cmd->add_option("--against", args->against,
                  "Production requests (suite or traffic JSONL): warn when --calib does not represent them")
      ->check(CLI::ExistingFile);
  cmd->add_option("--calib-samples", args->calib_samples, "Calibration sequences")->check(kPositiveInteger);
  cmd->add_option("--calib-seq-len", args->calib_seq_len, "Tokens per calibration sequence")
      ->check(kPositiveInteger);
  cmd->add_option("--seed", args->seed, "Seed for calibration sampling");
  cmd->callback([args, &exit_code] { exit_code = run_quantize(*args); });
});

}  // namespace
}  // namespace stepdown::cli
