#pragma once
// Timestamps for manifests and decision records.
#include <string>

namespace stepdown {

// The current UTC time in ISO 8601 with seconds, "2026-12-05T01:02:28Z".
std::string utc_now();

}  // namespace stepdown
