#pragma once
// The plots of a decision report, drawn by gnuplot (run as a subprocess with its script on
// stdin and `set terminal svg`):
//   quality_vs_latency  overall quality delta against TPOT p95 per rung, with the budget
//                       line and the Pareto front
//   strata              per-stratum deltas with confidence intervals per rung, with each
//                       stratum's tolerance
//   device_latency      predicted TPOT p95 per device per rung, with the budget line
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stepdown::decide {

struct Plot {
  std::string name;   // file stem: plots/<name>.svg
  std::string title;  // caption for people
  std::string svg;    // the whole SVG document
};

struct PlotSet {
  std::vector<Plot> plots;
  // The reason some or all plots are missing (gnuplot not found, or it failed). Empty when
  // every plot with data rendered.
  std::string note;
};

// File stems of every plot render_plots can draw.
const std::vector<std::string>& plot_names();

// The gnuplot to run: $STEPDOWN_GNUPLOT when set, else "gnuplot" looked up in PATH.
std::filesystem::path default_gnuplot();

// Draws every plot that `decision` (a stepdown.decision/1 record) has data for. A missing
// or failing gnuplot throws nothing: it logs a warning and stores the reason in `note`.
PlotSet render_plots(const nlohmann::json& decision, const std::filesystem::path& gnuplot);

// The device whose latency the report and plots put first: the recommendation's device,
// else the first of "devices", else "host".
std::string primary_device(const nlohmann::json& decision);

// TPOT p95 of a rung on `device` in ms. It is the measured figure when the rung was
// measured on that device, else the predicted one, else null JSON.
nlohmann::json rung_tpot_p95(const nlohmann::json& rung, const std::string& device);

// Indices into `points` of the Pareto front, sorted by latency. Each point is (latency,
// quality), where lower latency and higher quality are better. A point is on the front
// when no other point is at least as good on both and better on one.
std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points);

// Runs `gnuplot` with `script` on stdin. Returns an empty string on success, or why it
// failed (not found, exit status, its stderr).
std::string run_gnuplot(const std::filesystem::path& gnuplot, const std::string& script);

}  // namespace stepdown::decide
