// Mean KLD of a quantized model against its f32 source, for RTN and the calibrated
// methods, quantized in memory (quant::quantize_model_in_memory) so formats without a
// container (INT8_W8A8) are scored too. One variant per run, so the peak RSS printed is
// that variant's (source model, calibration, quantized copy and the two transformers).
//
//   build/bench/method_kld_bench MODEL.gguf --text FILE --scheme q4_0 [--block-dtype INT8_W8A8]
//       [--method awq --param clip=1 --calib FILE --samples 32 --seq-len 512 --seed 0]
//       [--ctx 512] [--threads 2]
//
// Prints one JSON line: the variant, mean KLD (stderr, p99), both perplexities, quantize
// and eval wall seconds, peak RSS, thread count, OPENBLAS_CORETYPE and the CPU.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "stepdown/bench/host_info.h"
#include "stepdown/core/dtype.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/eval/perplexity.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/in_memory_model.h"
#include "stepdown/text/model_tokenizer.h"

namespace {

using namespace stepdown;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int run(int argc, char** argv) {
  init_logging();
  quant::QuantizeOptions options;
  std::filesystem::path text_path;
  std::optional<DType> block_dtype;
  int64_t ctx = 512;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) raise<InvalidArgument>("{} expects a value", arg);
      return argv[++i];
    };
    if (arg == "--text") text_path = value();
    else if (arg == "--scheme") options.scheme = value();
    else if (arg == "--method") options.method = value();
    else if (arg == "--calib") options.calibration = value();
    else if (arg == "--samples") options.calib_samples = std::stoll(value());
    else if (arg == "--seq-len") options.calib_seq_len = std::stoll(value());
    else if (arg == "--seed") options.seed = std::stoull(value());
    else if (arg == "--threads") options.threads = std::stoi(value());
    else if (arg == "--ctx") ctx = std::stoll(value());
    else if (arg == "--override") options.overrides.push_back(value());
    else if (arg == "--block-dtype") {
      const std::string name = value();
      block_dtype = dtype_from_name(name);
      if (!block_dtype) raise<InvalidArgument>("--block-dtype {}: unknown format", name);
    } else if (arg == "--param") {
      const std::string item = value();
      const size_t eq = item.find('=');
      if (eq == std::string::npos) raise<InvalidArgument>("--param expects KEY=VALUE, got '{}'", item);
      options.method_params[item.substr(0, eq)] = item.substr(eq + 1);
    } else if (options.model.empty()) {
      options.model = arg;
    } else {
      raise<InvalidArgument>("unexpected argument '{}'", arg);
    }
  }
  if (options.model.empty() || text_path.empty()) {
    raise<InvalidArgument>("usage: method_kld_bench MODEL --text FILE --scheme S [--method M ...]");
  }

  ThreadPool pool(options.threads);
  const auto quantize_start = std::chrono::steady_clock::now();
  const quant::InMemoryModel candidate = quant::quantize_model_in_memory(options, block_dtype, pool);
  const double quantize_seconds = seconds_since(quantize_start);

  const auto eval_start = std::chrono::steady_clock::now();
  const io::ModelFile base_file = io::open_model_file(options.model);
  const model::ModelWeights base_weights = model::load_weights(base_file);
  const model::ModelWeights candidate_weights = model::load_weights(candidate.file);
  model::Transformer base(base_weights, pool);
  model::Transformer quantized(candidate_weights, pool);
  const auto tokenizer = text::load_model_tokenizer(base_file);
  std::ifstream in(text_path);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto tokens = tokenizer->encode(content, /*add_special=*/true);
  eval::PerplexityOptions ppl;
  ppl.ctx = ctx;
  eval::PerplexityResult result;
  const eval::KlDivergenceResult kl =
      eval::kl_divergence(base, quantized, tokens, eval::adds_bos(*tokenizer) ? tokenizer->bos_id() : std::nullopt,
                          ppl, result);
  const double eval_seconds = seconds_since(eval_start);

  const bench::HostInfo host = bench::read_host_info();
  nlohmann::json line = {{"model", options.model.string()},
                         {"scheme", options.scheme},
                         {"block_dtype", block_dtype ? std::string(dtype_name(*block_dtype)) : std::string("")},
                         {"method", options.method},
                         {"params", options.method_params},
                         {"calib_samples", options.calib_samples},
                         {"calib_seq_len", options.calib_seq_len},
                         {"kld_mean", kl.mean},
                         {"kld_stderr", kl.mean_stderr},
                         {"kld_p99", kl.p99},
                         {"ppl", result.ppl},
                         {"ppl_base", kl.base.ppl},
                         {"scored_tokens", result.scored_tokens},
                         {"quantize_s", quantize_seconds},
                         {"eval_s", eval_seconds},
                         {"peak_rss_mb", peak_rss_mb()},
                         {"threads", pool.size()},
                         {"openblas_coretype", host.openblas_coretype},
                         {"cpu", host.cpu_model}};
  std::cout << line.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "method_kld_bench: %s\n", e.what());
    return 1;
  }
}
