#pragma once
// Where tests find their data. Each path can be overridden by an environment variable.
#include <filesystem>
#include <string>

namespace stepdown::test {

// ../shared test data (models/, tokenizers/); env STEPDOWN_SHARED_DIR.
std::filesystem::path shared_dir();
// Models fetched by scripts/fetch-models; env STEPDOWN_MODEL_CACHE.
std::filesystem::path model_cache_dir();
// The repository root (tests/golden fixtures live under it).
std::filesystem::path source_dir();
// The built stepdown CLI, for end-to-end tests.
std::filesystem::path cli_path();

// Path of a fetched model, or empty when scripts/fetch-models has not run.
std::filesystem::path fetched_model(const std::string& file_name);

struct CliResult {
  int exit_code = -1;  // -1 when the CLI did not exit normally
  std::string out;
  std::string err;
};

// Runs the stepdown CLI with `args` (shell-quoted by the caller) and captures stdout,
// stderr and the exit code.
CliResult run_cli(const std::string& args);

}  // namespace stepdown::test

// Skips the current test, saying which fetched model is missing and how to get it.
#define STEPDOWN_REQUIRE_FETCHED_MODEL(path_var, file_name)                                      \
  const std::filesystem::path path_var = ::stepdown::test::fetched_model(file_name);            \
  if (path_var.empty()) {                                                                        \
    GTEST_SKIP() << "SKIPPED: fetched model " << file_name << " not found in "                   \
                 << ::stepdown::test::model_cache_dir() << "; run scripts/fetch-models";         \
  }
