#include "test_paths.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

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

CliResult run_cli(const std::string& args) {
  const std::filesystem::path err_path =
      std::filesystem::temp_directory_path() / ("stepdown_cli_test_" + std::to_string(::getpid()) + ".err");
  const std::string command = cli_path().string() + " " + args + " 2>" + err_path.string();
  CliResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

  std::ifstream err(err_path);
  std::stringstream text;
  text << err.rdbuf();
  result.err = text.str();
  std::filesystem::remove(err_path);
  return result;
}

}  // namespace stepdown::test
