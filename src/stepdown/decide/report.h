#pragma once
// The decision report for people: report.md and a self-contained report.html (inline CSS,
// the plots inlined as SVG, no scripts and no external files), rendered from a
// stepdown.decision/1 record. Optional fields may be missing or null (a skipped rung has
// no quality and no measurement); the report shows a dash for them.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "stepdown/decide/plots.h"

namespace stepdown::decide {

struct ReportOptions {
  std::filesystem::path gnuplot = default_gnuplot();  // a missing binary gives a report with a note instead of plots
};

// Writes out_dir/report.md, out_dir/report.html and out_dir/plots/*.svg, each atomically,
// creating the folders. Throws FormatError when `decision` is not an object, names another
// schema, or has "rungs" that is not an array; IoError when a file cannot be written.
void write_reports(const nlohmann::json& decision, const std::filesystem::path& out_dir);
void write_reports(const nlohmann::json& decision, const std::filesystem::path& out_dir, const ReportOptions& options);

// The two documents, given plots already drawn. The Markdown links plots/<name>.svg; the
// HTML inlines each SVG.
std::string render_markdown(const nlohmann::json& decision, const PlotSet& plots);
std::string render_html(const nlohmann::json& decision, const PlotSet& plots);

// `text` with &, <, >, " and ' replaced by character references.
std::string html_escape(std::string_view text);

}  // namespace stepdown::decide
