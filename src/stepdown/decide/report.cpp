#include "stepdown/decide/report.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"

namespace stepdown::decide {

namespace {

using nlohmann::json;

constexpr const char* kSchema = "stepdown.decision/1";
constexpr const char* kDash = "—";

// A table as plain-text cells; each renderer escapes the cells for its format.
struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
};

const json& field(const json& object, const char* key) {
  static const json null_value;
  if (!object.is_object()) return null_value;
  const auto it = object.find(key);
  return it == object.end() ? null_value : *it;
}

std::string text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return kDash;
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_number()) return fmt::format("{:.4g}", value.get<double>());
  return value.dump();
}

std::string decimal(const json& value, int digits) {
  if (!value.is_number()) return kDash;
  return fmt::format("{:.{}f}", value.get<double>(), digits);
}

std::string signed_decimal(const json& value, int digits) {
  if (!value.is_number()) return kDash;
  return fmt::format("{:+.{}f}", value.get<double>(), digits);
}

std::string pass_word(const json& value) {
  if (!value.is_boolean()) return kDash;
  return value.get<bool>() ? "pass" : "FAIL";
}

// The gate's verdict of a quality row: "pass", "FAIL", or "inconclusive" for a drop that
// passes the gate without being proven within tolerance.
std::string verdict_word(const json& row) {
  const json& verdict = field(row, "verdict");
  if (verdict.is_string() && verdict.get<std::string>() == "inconclusive") return "inconclusive";
  return pass_word(field(row, "pass"));
}

// "delta [ci_low, ci_high]" of a quality comparison.
std::string delta_with_ci(const json& comparison) {
  if (!field(comparison, "delta").is_number()) return kDash;
  std::string out = signed_decimal(field(comparison, "delta"), 3);
  if (field(comparison, "ci_low").is_number() && field(comparison, "ci_high").is_number()) {
    out += fmt::format(" [{}, {}]", signed_decimal(field(comparison, "ci_low"), 3),
                       signed_decimal(field(comparison, "ci_high"), 3));
  }
  return out;
}

std::string joined(const json& list, const char* separator) {
  if (!list.is_array()) return list.is_null() ? "" : text(list);
  std::string out;
  for (const json& item : list) out += (out.empty() ? "" : separator) + text(item);
  return out;
}

std::vector<std::string> device_names(const json& decision) {
  std::vector<std::string> devices;
  for (const json& device : field(decision, "devices")) {
    if (device.is_string()) devices.push_back(device.get<std::string>());
  }
  return devices;
}

const json& rungs_of(const json& decision) {
  static const json empty = json::array();
  const json& rungs = field(decision, "rungs");
  return rungs.is_array() ? rungs : empty;
}

// Strata names in order of first appearance over all rungs.
std::vector<std::string> strata_names(const json& decision) {
  std::vector<std::string> names;
  for (const json& rung : rungs_of(decision)) {
    for (const json& stratum : field(field(rung, "quality"), "strata")) {
      const std::string name = text(field(stratum, "name"));
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

std::string budget_summary(const json& decision) {
  const json& budget = field(decision, "budget");
  std::vector<std::string> parts;
  for (const auto& [key, label] : {std::pair{"ttft_p95_ms", "TTFT p95"}, std::pair{"tpot_p95_ms", "TPOT p95"},
                                   std::pair{"e2e_p95_ms", "e2e p95"}}) {
    if (field(budget, key).is_number()) parts.push_back(fmt::format("{} ≤ {} ms", label, text(field(budget, key))));
  }
  if (field(budget, "memory_mb").is_number()) parts.push_back(fmt::format("memory ≤ {} MB", text(field(budget, "memory_mb"))));
  std::string out = parts.empty() ? "no latency budget" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i > 0 ? ", " : "") + parts[i];
  if (field(budget, "prompt_tokens").is_number() || field(budget, "output_tokens").is_number()) {
    out += fmt::format(" (requests of {} prompt and {} output tokens)", text(field(budget, "prompt_tokens")),
                       text(field(budget, "output_tokens")));
  }
  return out;
}

std::string host_summary(const json& decision) {
  const json& host = field(decision, "host");
  if (!host.is_object()) return "not recorded";
  return fmt::format("{}, {} threads, OPENBLAS_CORETYPE={}, CPU features: {}; read bandwidth {} GB/s, decode efficiency {}",
                     text(field(host, "cpu")), text(field(host, "threads")), text(field(host, "openblas_coretype")),
                     joined(field(host, "cpu_features"), " "), decimal(field(host, "read_bandwidth_gbps"), 1),
                     field(host, "decode_efficiency").is_number()
                         ? fmt::format("{:.1f}%", 100.0 * field(host, "decode_efficiency").get<double>())
                         : kDash);
}

Table rungs_table(const json& decision) {
  const std::vector<std::string> devices = device_names(decision);
  Table table;
  table.headers = {"rung", "label", "status", "scheme", "bpw", "size (MB)", "measured TTFT p95 (ms)", "measured TPOT p95 (ms)"};
  for (const std::string& device : devices) table.headers.push_back("predicted TPOT p95 on " + device + " (ms)");
  table.headers.insert(table.headers.end(), {"overall Δ [95% CI]", "quality", "meets budget", "reasons"});

  for (const json& rung : rungs_of(decision)) {
    const json& measured = field(rung, "measured");
    std::vector<std::string> row = {text(field(rung, "name")), text(field(rung, "label")), text(field(rung, "status")),
                                    text(field(rung, "scheme")), decimal(field(rung, "bits_per_weight"), 2),
                                    field(rung, "file_bytes").is_number()
                                        ? fmt::format("{:.1f}", field(rung, "file_bytes").get<double>() / 1e6)
                                        : kDash,
                                    decimal(field(measured, "ttft_p95_ms"), 1), decimal(field(measured, "tpot_p95_ms"), 2)};
    for (const std::string& device : devices) {
      row.push_back(decimal(field(field(field(rung, "predicted"), device.c_str()), "tpot_p95_ms"), 2));
    }
    row.push_back(delta_with_ci(field(field(rung, "quality"), "overall")));
    row.push_back(pass_word(field(rung, "meets_quality")));
    std::string budget;
    const json& meets_budget = field(rung, "meets_budget");
    if (meets_budget.is_object()) {
      for (const auto& [device, meets] : meets_budget.items()) {
        budget += fmt::format("{}{}: {}", budget.empty() ? "" : ", ", device, pass_word(meets));
      }
    }
    row.push_back(budget.empty() ? kDash : budget);
    row.push_back(joined(field(rung, "reasons"), "; "));
    table.rows.push_back(std::move(row));
  }
  return table;
}

Table strata_table(const json& decision) {
  const std::vector<std::string> strata = strata_names(decision);
  Table table;
  table.headers = {"rung", "overall"};
  for (const std::string& name : strata) table.headers.push_back(name);
  table.headers.push_back("KLD mean / same top-1");

  for (const json& rung : rungs_of(decision)) {
    const json& quality = field(rung, "quality");
    const json& overall = field(quality, "overall");
    std::vector<std::string> row = {text(field(rung, "name"))};
    row.push_back(overall.is_object() ? fmt::format("{} {} (tol {})", delta_with_ci(overall), pass_word(field(overall, "pass")),
                                                    text(field(overall, "tolerance")))
                                      : kDash);
    for (const std::string& name : strata) {
      std::string cell = kDash;
      for (const json& stratum : field(quality, "strata")) {
        if (text(field(stratum, "name")) != name) continue;
        cell = fmt::format("{} {} (n={}, tol {})", delta_with_ci(stratum), verdict_word(stratum),
                           text(field(stratum, "n")), text(field(stratum, "tolerance")));
        // The policy may leave a stratum ungated, so the cell adds "not gated" beside its pass or FAIL.
        if (field(stratum, "gated").is_boolean() && !field(stratum, "gated").get<bool>()) cell += " not gated";
      }
      row.push_back(cell);
    }
    const json& kld = field(quality, "kld");
    row.push_back(kld.is_object() ? fmt::format("{} / {}%", decimal(field(kld, "mean"), 4), decimal(field(kld, "same_top_pct"), 1))
                                  : kDash);
    table.rows.push_back(std::move(row));
  }
  return table;
}

Table device_table(const json& decision) {
  const std::vector<std::string> devices = device_names(decision);
  Table table;
  table.headers = {"rung"};
  for (const std::string& device : devices) table.headers.push_back(device + ": TTFT / TPOT / e2e p95 (ms)");
  for (const json& rung : rungs_of(decision)) {
    std::vector<std::string> row = {text(field(rung, "name"))};
    for (const std::string& device : devices) {
      const json& predicted = field(field(rung, "predicted"), device.c_str());
      if (!predicted.is_object()) {
        row.push_back(kDash);
        continue;
      }
      std::string cell = fmt::format("{} / {} / {}", decimal(field(predicted, "ttft_p95_ms"), 1),
                                     decimal(field(predicted, "tpot_p95_ms"), 2), decimal(field(predicted, "e2e_p95_ms"), 0));
      if (field(predicted, "fits_memory").is_boolean() && !field(predicted, "fits_memory").get<bool>()) cell += " (does not fit memory)";
      row.push_back(cell);
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

Table predictor_error_table(const json& decision) {
  Table table;
  table.headers = {"rung", "metric", "predicted (ms)", "measured (ms)", "error"};
  for (const json& entry : field(decision, "predictor_error")) {
    table.rows.push_back({text(field(entry, "rung")), text(field(entry, "metric")), decimal(field(entry, "predicted"), 2),
                          decimal(field(entry, "measured"), 2),
                          field(entry, "error_pct").is_number() ? fmt::format("{:+.1f}%", field(entry, "error_pct").get<double>())
                                                                : kDash});
  }
  return table;
}

std::string recommendation_headline(const json& decision) {
  const json& recommendation = field(decision, "recommendation");
  const json& rung = field(recommendation, "rung");
  if (!rung.is_string()) return "No rung meets every constraint.";
  return fmt::format("Ship rung {} on {} ({})", rung.get<std::string>(), text(field(recommendation, "device")),
                     text(field(recommendation, "model_file")));
}

// ---- Markdown ----

std::string markdown_cell(const std::string& cell) {
  std::string out;
  for (char c : cell) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string markdown_table(const Table& table) {
  if (table.rows.empty()) return "(none)\n";
  std::string out = "|";
  for (const std::string& h : table.headers) out += fmt::format(" {} |", markdown_cell(h));
  out += "\n|";
  for (size_t i = 0; i < table.headers.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : table.rows) {
    out += "|";
    for (const std::string& cell : row) out += fmt::format(" {} |", markdown_cell(cell));
    out += "\n";
  }
  return out;
}

// ---- HTML ----

std::string html_table(const Table& table) {
  if (table.rows.empty()) return "<p>(none)</p>\n";
  std::string out = "<table>\n<thead><tr>";
  for (const std::string& h : table.headers) out += "<th>" + html_escape(h) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : table.rows) {
    out += "<tr>";
    for (const std::string& cell : row) {
      const char* css = cell == "FAIL" || cell.find(" FAIL") != std::string::npos ? " class=\"fail\"" : "";
      out += fmt::format("<td{}>{}</td>", css, html_escape(cell));
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

// The <svg> element of a gnuplot SVG document, without the XML declaration before it, so
// it can sit inside HTML.
std::string inline_svg(const std::string& svg) {
  const size_t start = svg.find("<svg");
  return start == std::string::npos ? std::string() : svg.substr(start);
}

constexpr const char* kStyle = R"css(
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px; color: #1b1b1b; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.recommendation { background: #eef6ee; border-left: 5px solid #2a9d3a; padding: 0.8em 1.2em; }
.recommendation.none { background: #fbeeee; border-left-color: #c00000; }
.note { background: #fff7e0; border-left: 5px solid #d9a400; padding: 0.6em 1em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.fail { color: #a00000; font-weight: bold; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
.meta { font-size: 0.85em; color: #555; }
)css";

void check_record(const json& decision) {
  if (!decision.is_object()) raise<FormatError>("decision record: expected a JSON object, found {}", decision.type_name());
  const json& schema = field(decision, "schema");
  if (!schema.is_null() && (!schema.is_string() || schema.get<std::string>() != kSchema)) {
    raise<FormatError>("decision record: field 'schema' is {}; expected \"{}\"", schema.dump(), kSchema);
  }
  const json& rungs = field(decision, "rungs");
  if (!rungs.is_null() && !rungs.is_array()) {
    raise<FormatError>("decision record: field 'rungs' must be an array, found {}", rungs.type_name());
  }
}

}  // namespace

std::string html_escape(std::string_view input) {
  std::string out;
  out.reserve(input.size());
  for (char c : input) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_markdown(const json& decision, const PlotSet& plots) {
  check_record(decision);
  const json& recommendation = field(decision, "recommendation");
  std::string out = "# stepdown decision report\n\n";

  out += fmt::format("## Recommendation\n\n**{}**\n\n", markdown_cell(recommendation_headline(decision)));
  if (field(recommendation, "summary").is_string()) out += text(field(recommendation, "summary")) + "\n\n";
  for (const json& reason : field(recommendation, "reasons")) out += "- " + text(reason) + "\n";
  if (field(recommendation, "next_step").is_string()) out += fmt::format("\nNext step: {}\n", text(field(recommendation, "next_step")));
  out += fmt::format("\nBudget: {}.\n\n", budget_summary(decision));

  out += "## Rungs\n\n" + markdown_table(rungs_table(decision));
  out += "\n## Quality per stratum\n\nΔ = candidate − baseline with its 95% confidence interval; a stratum fails when its "
         "interval reaches below −tolerance.\n\n" + markdown_table(strata_table(decision));
  out += "\n## Predicted latency per device\n\n" + markdown_table(device_table(decision));
  out += "\n## Predictor error on this host\n\nPredicted by the calibrated roofline, measured by `stepdown bench` on the host.\n\n" +
         markdown_table(predictor_error_table(decision));

  out += "\n## Plots\n\n";
  if (!plots.note.empty()) out += fmt::format("> **Note:** {}\n\n", plots.note);
  for (const Plot& plot : plots.plots) out += fmt::format("![{}](plots/{}.svg)\n\n", plot.title, plot.name);

  out += "## Provenance\n\n";
  out += fmt::format("- host: {}\n", host_summary(decision));
  out += fmt::format("- baseline: {} (sha256 {})\n", text(field(field(decision, "baseline"), "model")),
                     text(field(field(decision, "baseline"), "sha256")));
  out += fmt::format("- policy sha256: {}\n", text(field(decision, "policy_sha256")));
  out += fmt::format("- created {} by stepdown {}\n", text(field(decision, "created")), text(field(decision, "tool_version")));
  return out;
}

std::string render_html(const json& decision, const PlotSet& plots) {
  check_record(decision);
  const json& recommendation = field(decision, "recommendation");
  const bool has_rung = field(recommendation, "rung").is_string();
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  out += "<title>stepdown decision report</title>\n<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";
  out += "<h1>stepdown decision report</h1>\n";

  out += fmt::format("<section class=\"recommendation{}\">\n<h2>Recommendation</h2>\n<p><strong>{}</strong></p>\n",
                     has_rung ? "" : " none", html_escape(recommendation_headline(decision)));
  if (field(recommendation, "summary").is_string()) out += "<p>" + html_escape(text(field(recommendation, "summary"))) + "</p>\n";
  if (field(recommendation, "reasons").is_array() && !field(recommendation, "reasons").empty()) {
    out += "<ul>\n";
    for (const json& reason : field(recommendation, "reasons")) out += "<li>" + html_escape(text(reason)) + "</li>\n";
    out += "</ul>\n";
  }
  if (field(recommendation, "next_step").is_string()) {
    out += "<p>Next step: " + html_escape(text(field(recommendation, "next_step"))) + "</p>\n";
  }
  out += "<p>Budget: " + html_escape(budget_summary(decision)) + ".</p>\n</section>\n";

  out += "<h2>Rungs</h2>\n" + html_table(rungs_table(decision));
  out += "<h2>Quality per stratum</h2>\n<p>Δ = candidate − baseline with its 95% confidence interval; a stratum fails when "
         "its interval reaches below −tolerance.</p>\n" + html_table(strata_table(decision));
  out += "<h2>Predicted latency per device</h2>\n" + html_table(device_table(decision));
  out += "<h2>Predictor error on this host</h2>\n<p>Predicted by the calibrated roofline, measured by stepdown bench on the "
         "host.</p>\n" + html_table(predictor_error_table(decision));

  out += "<h2>Plots</h2>\n";
  if (!plots.note.empty()) out += "<p class=\"note\"><strong>Note:</strong> " + html_escape(plots.note) + "</p>\n";
  for (const Plot& plot : plots.plots) {
    out += fmt::format("<figure id=\"plot-{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n", html_escape(plot.name),
                       inline_svg(plot.svg), html_escape(plot.title));
  }

  out += "<h2>Provenance</h2>\n<ul class=\"meta\">\n";
  out += "<li>host: " + html_escape(host_summary(decision)) + "</li>\n";
  out += fmt::format("<li>baseline: {} (sha256 {})</li>\n", html_escape(text(field(field(decision, "baseline"), "model"))),
                     html_escape(text(field(field(decision, "baseline"), "sha256"))));
  out += "<li>policy sha256: " + html_escape(text(field(decision, "policy_sha256"))) + "</li>\n";
  out += fmt::format("<li>created {} by stepdown {}</li>\n</ul>\n", html_escape(text(field(decision, "created"))),
                     html_escape(text(field(decision, "tool_version"))));
  out += "</body>\n</html>\n";
  return out;
}

void write_reports(const json& decision, const std::filesystem::path& out_dir) { write_reports(decision, out_dir, ReportOptions{}); }

void write_reports(const json& decision, const std::filesystem::path& out_dir, const ReportOptions& options) {
  check_record(decision);
  std::error_code error;
  std::filesystem::create_directories(out_dir / "plots", error);
  if (error) raise<IoError>("report: cannot create the folder {}: {}", (out_dir / "plots").string(), error.message());

  const PlotSet plots = render_plots(decision, options.gnuplot);
  for (const Plot& plot : plots.plots) write_file_atomic(out_dir / "plots" / (plot.name + ".svg"), plot.svg);

  // A plot left from an earlier report in the same folder would no longer match this one.
  for (const std::string& name : plot_names()) {
    const bool drawn = std::any_of(plots.plots.begin(), plots.plots.end(), [&](const Plot& plot) { return plot.name == name; });
    if (!drawn) std::filesystem::remove(out_dir / "plots" / (name + ".svg"), error);
  }
  write_file_atomic(out_dir / "report.md", render_markdown(decision, plots));
  write_file_atomic(out_dir / "report.html", render_html(decision, plots));
}

}  // namespace stepdown::decide
