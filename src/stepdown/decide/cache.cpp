#include "stepdown/decide/cache.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "stepdown/bench/host_info.h"
#include "stepdown/core/error.h"
#include "stepdown/core/sha256.h"
#include "stepdown/decide/interrupt.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTempMarker = ".tmp-";

std::string key_of(const nlohmann::json& fields) { return sha256_hex(fields.dump()); }

// True when the process `pid` that named a temporary folder is gone.
bool owner_is_gone(const std::string& name) {
  const size_t at = name.rfind(kTempMarker);
  if (at == std::string::npos) return false;
  const long pid = std::strtol(name.c_str() + at + std::string_view(kTempMarker).size(), nullptr, 10);
  if (pid <= 0) return true;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

std::string quantize_key(const QuantizeKeyInputs& inputs) {
  nlohmann::json fields = {{"kind", "quantize"},         {"source", inputs.source_sha256},
                           {"scheme", inputs.scheme},    {"method", inputs.method},
                           {"params", inputs.params},    {"tool_version", inputs.tool_version}};
  if (inputs.method != "rtn") {
    fields["calibration"] = inputs.calibration_sha256;
    fields["calib_samples"] = inputs.calib_samples;
    fields["calib_seq_len"] = inputs.calib_seq_len;
    fields["seed"] = inputs.seed;
  }
  return key_of(fields);
}

std::string bench_key(const std::string& model_sha256, const std::string& host_id, int64_t prompt_tokens,
                      int64_t output_tokens, int repetitions, int warmup, const std::string& tool_version) {
  // format 2: bench.json carries the model cost of latency_predict.h.
  return key_of({{"kind", "bench"},
                 {"format", 2},
                 {"model", model_sha256},
                 {"host", host_id},
                 {"prompt_tokens", prompt_tokens},
                 {"output_tokens", output_tokens},
                 {"repetitions", repetitions},
                 {"warmup", warmup},
                 {"tool_version", tool_version}});
}

std::string eval_key(const std::string& model_sha256, const std::string& suite_sha256, const std::string& generator,
                     const std::string& tool_version) {
  return key_of({{"kind", "eval"},
                 {"model", model_sha256},
                 {"suite", suite_sha256},
                 {"generator", generator},
                 {"tool_version", tool_version}});
}

std::string host_identity(int threads) {
  const bench::HostInfo host = bench::read_host_info();
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  return fmt::format("{}|{}|{}|{}", host.cpu_model, threads, host.openblas_coretype, hostname);
}

StepCache::StepCache(fs::path root) : root_(std::move(root)) {
  std::error_code error;
  fs::create_directories(root_, error);
  if (error) raise<IoError>("{}: cannot create the decide cache: {}", root_.string(), error.message());
  for (const auto& kind : fs::directory_iterator(root_)) {
    if (!kind.is_directory()) continue;
    for (const auto& entry : fs::directory_iterator(kind.path())) {
      const std::string name = entry.path().filename().string();
      if (name.find(kTempMarker) != std::string::npos && owner_is_gone(name)) fs::remove_all(entry.path(), error);
    }
  }
}

std::optional<fs::path> StepCache::find(const std::string& kind, const std::string& key) const {
  const fs::path dir = root_ / kind / key;
  if (fs::is_directory(dir)) return dir;
  return std::nullopt;
}

StepCache::Pending StepCache::begin(const std::string& kind, const std::string& key) const {
  const fs::path target = root_ / kind / key;
  const fs::path temp = root_ / kind / fmt::format("{}{}{}", key, kTempMarker, ::getpid());
  std::error_code error;
  fs::remove_all(temp, error);
  fs::create_directories(temp, error);
  if (error) raise<IoError>("{}: cannot create a cache entry: {}", temp.string(), error.message());
  return Pending(temp, target);
}

StepCache::Pending::Pending(fs::path temp, fs::path target) : temp_(std::move(temp)), target_(std::move(target)) {
  register_interrupt_cleanup(temp_);
}

StepCache::Pending::~Pending() {
  if (committed_) return;
  std::error_code error;
  fs::remove_all(temp_, error);
  unregister_interrupt_cleanup(temp_);
}

fs::path StepCache::Pending::commit() {
  std::error_code error;
  fs::rename(temp_, target_, error);
  if (error) {
    // Another run finished the same entry first; its copy is as good as ours.
    if (!fs::is_directory(target_)) {
      raise<IoError>("{}: cannot move the cache entry into place: {}", target_.string(), error.message());
    }
    fs::remove_all(temp_, error);
  }
  unregister_interrupt_cleanup(temp_);
  committed_ = true;
  return target_;
}

fs::path default_cache_root() {
  if (const char* dir = std::getenv("STEPDOWN_DECIDE_CACHE"); dir != nullptr && *dir != '\0') return dir;
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir != nullptr && *dir != '\0') {
    return fs::path(dir) / "stepdown" / "decide";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/tmp") / ".cache" / "stepdown" / "decide";
}

}  // namespace stepdown::decide
