#pragma once
// Logging to stderr with levels, through spdlog. Results that machines read go to stdout
// (--json); everything for people goes here.
#include <string_view>

#include <spdlog/spdlog.h>

namespace stepdown {

// Sends the default logger to stderr at `level` ("trace", "debug", "info", "warn",
// "error", "off"). The environment variable STEPDOWN_LOG overrides `level`.
void init_logging(std::string_view level = "info");

}  // namespace stepdown
