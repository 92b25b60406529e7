// Decode speed of a model with its weights converted to F32 and to BF16, beside the
// host's measured read bandwidth. Decode reads every weight matrix once per token, so
//   efficiency = bytes per token * tokens/s / read bandwidth
// is the fraction of the memory roofline that decode reaches.
//
// Usage: decode_speed MODEL [--threads N] [--tokens N] [--formats f32,bf16,native]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "stepdown/bench/bandwidth.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/generate.h"

namespace {

using namespace stepdown;

struct Result {
  std::string format;
  double bytes_per_token = 0;
  double tokens_per_second = 0;
};

model::WeightConversion conversion_from_name(const std::string& name) {
  if (name == "f32") return model::WeightConversion::F32;
  if (name == "bf16") return model::WeightConversion::BF16;
  if (name == "native") return model::WeightConversion::NONE;
  raise<InvalidArgument>("format \"{}\" is unknown; expected f32, bf16 or native", name);
}

// Greedy decode of n_tokens after a one-token prompt; tokens/s over the decode steps only.
Result measure_decode(const io::ModelFile& file, const std::string& format, int threads, int n_tokens) {
  const model::ModelWeights weights = model::load_weights(file, conversion_from_name(format));
  ThreadPool pool(threads);
  model::Transformer transformer(weights, pool);
  model::KVCache cache(weights.config, n_tokens + 2);
  model::Sampler sampler(model::SamplerOptions{.temperature = 0.0f});
  const model::TokenId prompt[1] = {1};

  // One untimed run first, so page faults and thread start-up stay out of the figure.
  model::generate(transformer, cache, prompt, sampler, {.max_tokens = 4}, [](model::TokenId) { return true; });
  cache.clear();
  const model::GenerationStats stats = model::generate(transformer, cache, prompt, sampler,
                                                       {.max_tokens = n_tokens}, [](model::TokenId) { return true; });
  return {format, static_cast<double>(weights.decode_bytes_per_token()), stats.decode_tokens_per_second()};
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(',', start), list.size());
    parts.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [--threads N] [--tokens N] [--formats f32,bf16,native]\n", argv[0]);
    return 2;
  }
  int threads = 0;
  int n_tokens = 64;
  std::string formats = "f32,bf16";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--tokens") n_tokens = std::atoi(argv[i + 1]);
    else if (flag == "--formats") formats = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }

  try {
    const io::ModelFile file = io::open_model_file(argv[1]);
    const int n_threads = ThreadPool(threads).size();
    const bench::BandwidthResult bandwidth = bench::measure_read_bandwidth({.threads = n_threads});
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("model %s | %d threads | OPENBLAS_CORETYPE=%s\n", argv[1], n_threads, coretype ? coretype : "(unset)");
    std::printf("read bandwidth: %.2f GB/s best, %.2f GB/s median (%zu MiB buffer, %d runs)\n", bandwidth.gb_per_s,
                bandwidth.median_gb_per_s, bandwidth.buffer_bytes >> 20, bandwidth.runs);
    std::printf("%-7s %14s %12s %12s %11s\n", "format", "MB per token", "tokens/s", "GB/s used", "efficiency");
    for (const std::string& format : split(formats)) {
      const Result r = measure_decode(file, format, n_threads, n_tokens);
      const double used = r.bytes_per_token * r.tokens_per_second / 1e9;
      std::printf("%-7s %14.1f %12.2f %12.2f %10.1f%%\n", r.format.c_str(), r.bytes_per_token / 1e6,
                  r.tokens_per_second, used, 100.0 * used / bandwidth.gb_per_s);
      std::fflush(stdout);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
