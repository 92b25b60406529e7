#include "stepdown/decide/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

extern char** environ;

namespace stepdown::decide {

namespace {

using nlohmann::json;

// A finite number at `key` of `object`, or NaN when it is missing, null or not a number.
double number_at(const json& object, const char* key) {
  if (!object.is_object()) return std::nan("");
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nan("");
  return it->get<double>();
}

std::string string_at(const json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A gnuplot single-quoted string: '' stands for ', and control characters become spaces.
std::string gnuplot_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A label inside a data block, double-quoted; a double quote in the text becomes '.
std::string data_label(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += c == '"' ? '\'' : static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  return out + "\"";
}

std::string number(double value) { return std::isfinite(value) ? fmt::format("{:.6g}", value) : "NaN"; }

std::string rung_name(const json& rung) {
  const std::string name = string_at(rung, "name");
  return name.empty() ? "?" : name;
}

const json& rungs_of(const json& decision) {
  static const json empty = json::array();
  const auto it = decision.find("rungs");
  return it != decision.end() && it->is_array() ? *it : empty;
}

std::string header(const std::filesystem::path& output, const std::string& title) {
  std::string script;
  script += "set terminal svg size 760,460 noenhanced font 'sans,11' background rgb 'white'\n";
  script += fmt::format("set output {}\n", gnuplot_quoted(output.string()));
  script += fmt::format("set title {}\n", gnuplot_quoted(title));
  script += "set grid\nset key outside right top\n";
  return script;
}

std::string quality_vs_latency_script(const json& decision, const std::filesystem::path& output, bool& has_data) {
  const std::string device = primary_device(decision);
  std::vector<std::pair<double, double>> points;
  std::vector<std::string> names;
  double tolerance = std::nan("");
  for (const json& rung : rungs_of(decision)) {
    const json tpot = rung_tpot_p95(rung, device);
    const json overall = rung.contains("quality") && rung["quality"].is_object() ? rung["quality"].value("overall", json())
                                                                               : json();
    const double delta = number_at(overall, "delta");
    if (!tpot.is_number() || !std::isfinite(delta)) continue;
    points.emplace_back(tpot.get<double>(), delta);
    names.push_back(rung_name(rung));
    if (!std::isfinite(tolerance)) tolerance = number_at(overall, "tolerance");
  }
  has_data = !points.empty();

  std::string script = header(output, fmt::format("Quality vs latency on {}", device));
  script += "set xlabel 'TPOT p95 (ms)'\nset ylabel 'overall quality delta (candidate - baseline)'\n";
  script += "$rungs << EOD\n";
  for (size_t i = 0; i < points.size(); ++i) {
    script += fmt::format("{} {} {}\n", number(points[i].first), number(points[i].second), data_label(names[i]));
  }
  script += "EOD\n$front << EOD\n";
  for (size_t index : pareto_front(points)) script += fmt::format("{} {}\n", number(points[index].first), number(points[index].second));
  script += "EOD\n";

  const double budget = number_at(decision.value("budget", json()), "tpot_p95_ms");
  if (std::isfinite(budget)) {
    script += fmt::format("set arrow from {0}, graph 0 to {0}, graph 1 nohead dashtype 2 linewidth 2 linecolor rgb '#c00000'\n",
                          number(budget));
    script += fmt::format("set label 'TPOT budget {} ms' at {}, graph 0.96 left offset 0.5,0 textcolor rgb '#c00000'\n",
                          number(budget), number(budget));
  }
  if (std::isfinite(tolerance)) {
    script += fmt::format("set arrow from graph 0, first {0} to graph 1, first {0} nohead dashtype 3 linecolor rgb '#806000'\n",
                          number(-tolerance));
    script += fmt::format("set label 'tolerance -{}' at graph 0.01, first {} left offset 0,0.6 textcolor rgb '#806000'\n",
                          number(tolerance), number(-tolerance));
  }
  script += "set offsets graph 0.08, graph 0.15, graph 0.1, graph 0.1\n";
  script += "plot $rungs using 1:2 with points pointtype 7 pointsize 1.3 linecolor rgb '#1f4e9c' title 'rung', \\\n"
            "     $rungs using 1:2:3 with labels left offset 0.8,0.6 notitle, \\\n"
            "     $front using 1:2 with lines linewidth 2 linecolor rgb '#2a9d3a' title 'Pareto front'\n";
  return script;
}

std::string strata_script(const json& decision, const std::filesystem::path& output, bool& has_data) {
  // Strata in order of first appearance, with the first tolerance given for each.
  std::vector<std::string> strata;
  std::vector<double> tolerances;
  std::vector<const json*> rungs;
  for (const json& rung : rungs_of(decision)) {
    const json quality = rung.value("quality", json());
    if (!quality.is_object() || !quality.contains("strata") || !quality["strata"].is_array() || quality["strata"].empty()) continue;
    rungs.push_back(&rung);
    for (const json& stratum : quality["strata"]) {
      const std::string name = string_at(stratum, "name");
      if (std::find(strata.begin(), strata.end(), name) == strata.end()) {
        strata.push_back(name);
        tolerances.push_back(number_at(stratum, "tolerance"));
      }
    }
  }
  has_data = !rungs.empty();

  std::string script = header(output, "Quality delta per stratum, with confidence intervals");
  script += "set ylabel 'quality delta (candidate - baseline)'\n";
  script += "set xtics (";
  for (size_t i = 0; i < strata.size(); ++i) script += fmt::format("{}{} {}", i > 0 ? ", " : "", gnuplot_quoted(strata[i]), i);
  script += ")\n";
  script += fmt::format("set xrange [-0.6:{}]\n", number(static_cast<double>(strata.size()) - 0.4));
  script += "set arrow from graph 0, first 0 to graph 1, first 0 nohead linecolor rgb '#808080'\n";

  // One block per rung: x offset within the stratum's slot, delta, CI low, CI high.
  const double width = 0.7 / static_cast<double>(std::max<size_t>(rungs.size(), 1));
  std::string plot = "plot ";
  for (size_t k = 0; k < rungs.size(); ++k) {
    const double offset = (static_cast<double>(k) - (static_cast<double>(rungs.size()) - 1.0) / 2.0) * width;
    script += fmt::format("$rung{} << EOD\n", k);
    for (const json& stratum : (*rungs[k])["quality"]["strata"]) {
      const size_t slot = static_cast<size_t>(std::find(strata.begin(), strata.end(), string_at(stratum, "name")) - strata.begin());
      const double delta = number_at(stratum, "delta");
      double low = number_at(stratum, "ci_low");
      double high = number_at(stratum, "ci_high");
      if (!std::isfinite(low)) low = delta;
      if (!std::isfinite(high)) high = delta;
      script += fmt::format("{} {} {} {}\n", number(static_cast<double>(slot) + offset), number(delta), number(low), number(high));
    }
    script += "EOD\n";
    plot += fmt::format("{}$rung{} using 1:2:3:4 with yerrorbars pointtype 7 pointsize 1 title {}", k > 0 ? ", \\\n     " : "",
                        k, gnuplot_quoted(rung_name(*rungs[k])));
  }
  script += "$tolerance << EOD\n";
  bool any_tolerance = false;
  for (size_t i = 0; i < strata.size(); ++i) {
    if (!std::isfinite(tolerances[i])) continue;
    any_tolerance = true;
    script += fmt::format("{} {}\n{} {}\n\n", number(static_cast<double>(i) - 0.45), number(-tolerances[i]),
                          number(static_cast<double>(i) + 0.45), number(-tolerances[i]));
  }
  script += "EOD\n";
  if (any_tolerance) plot += ", \\\n     $tolerance using 1:2 with lines dashtype 2 linewidth 2 linecolor rgb '#c00000' title 'tolerance'";
  script += plot + "\n";
  return script;
}

std::string device_latency_script(const json& decision, const std::filesystem::path& output, bool& has_data) {
  std::vector<std::string> devices;
  if (decision.contains("devices") && decision["devices"].is_array()) {
    for (const json& device : decision["devices"]) {
      if (device.is_string()) devices.push_back(device.get<std::string>());
    }
  }
  const json& rungs = rungs_of(decision);

  std::string script = header(output, "Predicted TPOT p95 per device");
  script += "set ylabel 'TPOT p95 (ms)'\nset xtics rotate by -30 left\n";
  script += "set xtics (";
  for (size_t i = 0; i < rungs.size(); ++i) script += fmt::format("{}{} {}", i > 0 ? ", " : "", gnuplot_quoted(rung_name(rungs[i])), i);
  script += ")\n";
  script += fmt::format("set xrange [-0.5:{}]\n", number(static_cast<double>(rungs.size()) - 0.5));

  double low = INFINITY;
  double high = 0.0;
  std::string plot = "plot ";
  size_t series = 0;
  for (size_t d = 0; d < devices.size(); ++d) {
    std::string block = fmt::format("$device{} << EOD\n", d);
    bool any = false;
    for (size_t i = 0; i < rungs.size(); ++i) {
      const json predicted = rungs[i].value("predicted", json());
      const double tpot = predicted.is_object() ? number_at(predicted.value(devices[d], json()), "tpot_p95_ms") : std::nan("");
      if (!std::isfinite(tpot) || tpot <= 0.0) continue;
      any = true;
      low = std::min(low, tpot);
      high = std::max(high, tpot);
      block += fmt::format("{} {}\n", i, number(tpot));
    }
    if (!any) continue;
    script += block + "EOD\n";
    plot += fmt::format("{}$device{} using 1:2 with linespoints pointtype 7 linewidth 1.5 title {}", series > 0 ? ", \\\n     " : "",
                        d, gnuplot_quoted(devices[d]));
    ++series;
  }
  has_data = series > 0;

  const double budget = number_at(decision.value("budget", json()), "tpot_p95_ms");
  if (std::isfinite(budget) && budget > 0.0) {
    low = std::min(low, budget);
    high = std::max(high, budget);
    script += fmt::format("set arrow from graph 0, first {0} to graph 1, first {0} nohead dashtype 2 linewidth 2 linecolor rgb '#c00000'\n",
                          number(budget));
    script += fmt::format("set label 'TPOT budget {} ms' at graph 0.99, first {} right offset 0,0.6 textcolor rgb '#c00000'\n",
                          number(budget), number(budget));
  }
  // Devices differ by orders of magnitude (a phone and an H200), so a wide range gets a
  // log axis.
  if (has_data && high / low > 30.0) script += "set logscale y\n";
  script += plot + "\n";
  return script;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh folder for one gnuplot run's script, output and stderr.
std::filesystem::path make_scratch_dir() {
  static std::atomic<int> counter{0};
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    fmt::format("stepdown-plots-{}-{}", getpid(), counter.fetch_add(1));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

const std::vector<std::string>& plot_names() {
  static const std::vector<std::string> names = {"quality_vs_latency", "strata", "device_latency"};
  return names;
}

std::filesystem::path default_gnuplot() {
  const char* configured = std::getenv("STEPDOWN_GNUPLOT");
  return configured != nullptr && *configured != '\0' ? configured : "gnuplot";
}

std::string primary_device(const json& decision) {
  const std::string recommended = string_at(decision.value("recommendation", json()), "device");
  if (!recommended.empty()) return recommended;
  if (decision.contains("devices") && decision["devices"].is_array() && !decision["devices"].empty() &&
      decision["devices"][0].is_string()) {
    return decision["devices"][0].get<std::string>();
  }
  return "host";
}

json rung_tpot_p95(const json& rung, const std::string& device) {
  const json measured = rung.value("measured", json());
  if (measured.is_object() && string_at(measured, "device") == device) {
    const double value = number_at(measured, "tpot_p95_ms");
    if (std::isfinite(value)) return value;
  }
  const json predicted = rung.value("predicted", json());
  if (predicted.is_object()) {
    const double value = number_at(predicted.value(device, json()), "tpot_p95_ms");
    if (std::isfinite(value)) return value;
  }
  return json();
}

std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points) {
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) {
      if (j == i) continue;
      const bool no_worse = points[j].first <= points[i].first && points[j].second >= points[i].second;
      const bool better = points[j].first < points[i].first || points[j].second > points[i].second;
      // Of two identical points, only the first stays on the front.
      dominated = (no_worse && better) || (points[j] == points[i] && j < i);
    }
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) { return points[a].first < points[b].first; });
  return front;
}

std::string run_gnuplot(const std::filesystem::path& gnuplot, const std::string& script) {
  const std::filesystem::path dir = make_scratch_dir();
  const std::filesystem::path script_path = dir / "script.gp";
  const std::filesystem::path stderr_path = dir / "stderr.txt";
  std::ofstream(script_path) << script;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, script_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const std::string program = gnuplot.string();
  char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);

  std::string failure;
  if (spawn_error != 0) {
    failure = fmt::format("cannot run '{}': {}", program, std::strerror(spawn_error));
  } else {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string errors = read_text(stderr_path);
      if (errors.size() > 400) errors = errors.substr(0, 400) + "...";
      failure = WIFEXITED(status) && WEXITSTATUS(status) == 127
                    ? fmt::format("cannot run '{}': not found", program)
                    : fmt::format("'{}' failed (status {}): {}", program, status, errors);
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return failure;
}

PlotSet render_plots(const json& decision, const std::filesystem::path& gnuplot) {
  using ScriptFn = std::string (*)(const json&, const std::filesystem::path&, bool&);
  struct Spec {
    const char* name;
    const char* title;
    ScriptFn script;
  };
  const Spec specs[] = {
      {"quality_vs_latency", "Overall quality delta vs TPOT p95 per rung, with the budget and the Pareto front",
       quality_vs_latency_script},
      {"strata", "Quality delta per stratum with confidence intervals, and each stratum's tolerance", strata_script},
      {"device_latency", "Predicted TPOT p95 per device per rung, with the budget", device_latency_script},
  };

  PlotSet set;
  const std::filesystem::path dir = make_scratch_dir();
  for (const Spec& spec : specs) {
    const std::filesystem::path svg_path = dir / (std::string(spec.name) + ".svg");
    bool has_data = false;
    const std::string script = spec.script(decision, svg_path, has_data);
    if (!has_data) continue;

    const std::string failure = run_gnuplot(gnuplot, script);
    if (!failure.empty()) {
      set.note = fmt::format("Plots are missing: {}. Install gnuplot (Debian package gnuplot-nox) or set STEPDOWN_GNUPLOT.",
                             failure);
      spdlog::warn("report: {}", set.note);
      break;
    }
    set.plots.push_back(Plot{spec.name, spec.title, read_text(svg_path)});
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return set;
}

}  // namespace stepdown::decide
