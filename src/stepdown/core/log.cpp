#include "stepdown/core/log.h"

#include <cstdlib>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace stepdown {

void init_logging(std::string_view level) {
  const char* env_level = std::getenv("STEPDOWN_LOG");
  const std::string chosen = (env_level != nullptr && *env_level != '\0') ? env_level : std::string(level);
  std::shared_ptr<spdlog::logger> logger = spdlog::get("stepdown");
  if (!logger) logger = spdlog::stderr_color_mt("stepdown");
  logger->set_pattern("%^%l%$: %v");
  logger->set_level(spdlog::level::from_str(chosen));
  spdlog::set_default_logger(logger);
}

}  // namespace stepdown
