#include "test_paths.h"

#include <cstdlib>

namespace stepdown::test {

namespace {
std::filesystem::path env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? std::filesystem::path(value) : std::filesystem::path(fallback);
}
}  // namespace

std::filesystem::path shared_dir() { return env_or("STEPDOWN_SHARED_DIR", STEPDOWN_SHARED_DIR_DEFAULT); }
std::filesystem::path model_cache_dir() { return env_or("STEPDOWN_MODEL_CACHE", STEPDOWN_MODEL_CACHE_DEFAULT); }
std::filesystem::path source_dir() { return STEPDOWN_SOURCE_DIR; }
std::filesystem::path cli_path() { return STEPDOWN_CLI_PATH; }

std::filesystem::path fetched_model(const std::string& file_name) {
  const std::filesystem::path path = model_cache_dir() / file_name;
  return std::filesystem::exists(path) ? path : std::filesystem::path();
}

}  // namespace stepdown::test
