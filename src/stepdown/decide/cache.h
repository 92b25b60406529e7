#pragma once
// Content-addressed cache of finished climb steps, so a rerun after a crash, an interrupt
// or a changed budget reuses quantized models, benchmarks and evaluations. Each entry is a
// folder `ROOT/<kind>/<key>/` that appears only when complete: it is filled under a
// temporary name and renamed into place.
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace stepdown::decide {

// Key of a quantized model: the source's SHA-256, the scheme, method and its parameters,
// the calibration set's SHA-256 (only for calibrated methods, because RTN reads none) and
// the tool version.
struct QuantizeKeyInputs {
  std::string source_sha256;
  std::string scheme;
  std::string method;
  std::map<std::string, std::string> params;
  std::string calibration_sha256;
  int64_t calib_samples = 0;
  int64_t calib_seq_len = 0;
  uint64_t seed = 0;
  std::string tool_version;
};
std::string quantize_key(const QuantizeKeyInputs& inputs);

// Key of a benchmark: the model's SHA-256, the host (CPU, threads, OpenBLAS core type,
// host name), the benchmark's shape and the tool version.
std::string bench_key(const std::string& model_sha256, const std::string& host_id, int64_t prompt_tokens,
                      int64_t output_tokens, int repetitions, int warmup, const std::string& tool_version);

// Key of an evaluation: the model's SHA-256, the suite's SHA-256 (with its goldens) and
// the tool version. `generator` is "" for a local model, or the endpoint URL and model.
std::string eval_key(const std::string& model_sha256, const std::string& suite_sha256, const std::string& generator,
                     const std::string& tool_version);

// "cpu|threads|coretype|hostname", the machine identity of bench keys.
std::string host_identity(int threads);

class StepCache {
 public:
  // Creates `root` when missing and removes entries that an interrupted run left under a
  // temporary name.
  explicit StepCache(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }

  // The folder of a finished entry, or nullopt.
  std::optional<std::filesystem::path> find(const std::string& kind, const std::string& key) const;

  // A temporary folder to fill; commit() renames it into place and returns the final path.
  // Destroying it without commit() removes it.
  class Pending {
   public:
    Pending(std::filesystem::path temp, std::filesystem::path target);
    ~Pending();
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
    const std::filesystem::path& dir() const { return temp_; }
    std::filesystem::path commit();

   private:
    std::filesystem::path temp_;
    std::filesystem::path target_;
    bool committed_ = false;
  };
  Pending begin(const std::string& kind, const std::string& key) const;

 private:
  std::filesystem::path root_;
};

// The cache folder: $STEPDOWN_DECIDE_CACHE, else $XDG_CACHE_HOME/stepdown/decide, else
// ~/.cache/stepdown/decide.
std::filesystem::path default_cache_root();

}  // namespace stepdown::decide
