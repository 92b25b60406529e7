// stepdown bench: prefill and decode speed, TTFT and TPOT percentiles, peak memory and
// decode efficiency against the host's measured read bandwidth, for one model.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "command.h"
#include "stepdown/bench/latency.h"
#include "stepdown/bench/latency_report.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/core/progress.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/weights.h"

namespace stepdown::cli {
namespace {

struct BenchOptions {
  std::string model_path;
  std::optional<std::string> tokenizer_path;
  std::string weights = "native";
  std::string activations = "f32";
  bool json = false;
  bool no_bandwidth = false;
  bench::LatencyOptions latency;
};

model::WeightConversion parse_conversion(const std::string& name) {
  if (name == "native") return model::WeightConversion::NONE;
  if (name == "f32") return model::WeightConversion::F32;
  if (name == "bf16") return model::WeightConversion::BF16;
  raise<InvalidArgument>("--weights is \"{}\"; expected native, f32 or bf16", name);
}

kernels::ActivationPrecision parse_activations(const std::string& name) {
  if (name == "f32") return kernels::ActivationPrecision::kF32;
  if (name == "int8") return kernels::ActivationPrecision::kInt8;
  raise<InvalidArgument>("--activations is \"{}\"; expected f32 or int8", name);
}

int run_bench(BenchOptions options) {
  options.latency.activations = parse_activations(options.activations);
  io::OpenOptions open_options;
  if (options.tokenizer_path) open_options.tokenizer_path = *options.tokenizer_path;
  const io::ModelFile file = io::open_model_file(options.model_path, open_options);
  const model::ModelWeights weights = model::load_weights(file, parse_conversion(options.weights));
  const model::ModelConfig& config = weights.config;
  spdlog::info("{}: {} blocks, dim {}, vocab {}, weights {}; pp{} tg{}, {} runs after {} warm-up", options.model_path,
               config.n_layers, config.dim, config.vocab_size, options.weights, options.latency.prompt_tokens,
               options.latency.decode_tokens, options.latency.repetitions, options.latency.warmup);

  options.latency.measure_bandwidth = !options.no_bandwidth;
  Progress progress("bench", options.latency.warmup + options.latency.repetitions);
  const bench::LatencyReport report = bench::measure_latency(weights, options.latency, [&](int done, int total) {
    progress.update(done, done <= options.latency.warmup ? "warm-up" : "timed");
  });
  progress.finish();

  if (options.json) {
    nlohmann::json json = bench::to_json(report);
    json["model"] = options.model_path;
    json["weights"] = options.weights;
    json["activations"] = options.activations;
    std::printf("%s\n", json.dump(2).c_str());
  } else {
    std::printf("model        %s (weights %s)\n%s", options.model_path.c_str(), options.weights.c_str(),
                bench::format_table(report).c_str());
  }
  return 0;
}

const bool registered = register_command("bench", [](CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prefill and decode speed, TTFT and TPOT percentiles, and decode efficiency against bandwidth");
  cmd->add_option("model", options->model_path, "Model file: GGUF, Hugging Face directory or llama2.c checkpoint")
      ->required();
  cmd->add_option("--tokenizer", options->tokenizer_path, "Tokenizer file for formats that carry none");
  cmd->add_option("--weights", options->weights,
                  "Format of the weights in memory: native (as stored, mapped), f32 or bf16 (converted at load)")
      ->capture_default_str();
  cmd->add_option("--activations", options->activations,
                  "Activations in matrix products: f32 (exact) or int8 (blocks of 32 quantized per call, integer dot "
                  "products; Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 weights only, as llama.cpp does)")
      ->capture_default_str();
  cmd->add_option("-p,--prompt-tokens", options->latency.prompt_tokens, "Synthetic prompt tokens prefilled in one batch")
      ->capture_default_str();
  cmd->add_option("-n,--decode-tokens", options->latency.decode_tokens, "Single-token decode steps after the prompt")
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", options->latency.repetitions, "Timed repetitions of prefill and decode")
      ->capture_default_str();
  cmd->add_option("--warmup", options->latency.warmup, "Untimed repetitions before the timed ones")
      ->capture_default_str();
  cmd->add_option("--threads", options->latency.threads, "Worker threads; 0 uses every hardware thread")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--seed", options->latency.seed, "Seed of the synthetic prompt ids")->capture_default_str();
  cmd->add_flag("--no-bandwidth", options->no_bandwidth, "Skip the read-bandwidth probe (efficiency is then 0)");
  cmd->add_flag("--json", options->json, "Print the full report as JSON on stdout instead of a table");
  cmd->callback([options, &exit_code] { exit_code = run_bench(*options); });
});

}  // namespace
}  // namespace stepdown::cli
