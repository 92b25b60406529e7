#pragma once
// The call site of the report renderer (decide/report.h: report.md, report.html and
// plots), kept in one place so that wiring it in is a one-line change.
#include <filesystem>

#include <nlohmann/json.hpp>

namespace stepdown::decide {

// Renders the human-readable reports of `decision` into `out_dir`.
void render_reports(const nlohmann::json& decision, const std::filesystem::path& out_dir);

}  // namespace stepdown::decide
