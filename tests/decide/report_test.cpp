// The decision report rendered from tests/decide/data/decision-sample.json: the files it
// writes, the order of its sections, HTML escaping, well-formed SVG and HTML, the note that
// replaces the plots when gnuplot is missing, and the Pareto front.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/decide/plots.h"
#include "stepdown/decide/report.h"
#include "test_paths.h"
#include "xml_check.h"

namespace stepdown::decide {
namespace {

using nlohmann::json;

json load_sample() {
  std::ifstream in(test::source_dir() / "tests" / "decide" / "data" / "decision-sample.json");
  EXPECT_TRUE(in.good());
  return json::parse(in);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path fresh_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("stepdown-report-test-" + std::to_string(getpid())) / name;
  std::filesystem::remove_all(dir);
  return dir;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(Report, WritesMarkdownHtmlAndPlots) {
  const std::filesystem::path dir = fresh_dir("full");
  write_reports(load_sample(), dir);

  ASSERT_TRUE(std::filesystem::exists(dir / "report.md"));
  ASSERT_TRUE(std::filesystem::exists(dir / "report.html"));
  for (const char* name : {"quality_vs_latency", "strata", "device_latency"}) {
    const std::filesystem::path svg = dir / "plots" / (std::string(name) + ".svg");
    ASSERT_TRUE(std::filesystem::exists(svg)) << svg;
    const std::string text = read_file(svg);
    EXPECT_EQ(test::xml_problem(text), "") << svg;
    EXPECT_NE(text.find("<svg"), std::string::npos) << svg;
  }

  const std::string markdown = read_file(dir / "report.md");
  EXPECT_NE(markdown.find("![Overall quality delta vs TPOT p95"), std::string::npos);
  EXPECT_NE(markdown.find("(plots/strata.svg)"), std::string::npos);
  EXPECT_EQ(markdown.find("Plots are missing"), std::string::npos);

  const std::string html = read_file(dir / "report.html");
  EXPECT_EQ(count(html, "<svg"), 3u);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
}

TEST(Report, RecommendationComesFirst) {
  const std::string markdown = render_markdown(load_sample(), PlotSet{});
  const size_t recommendation = markdown.find("Ship rung int8 on host (model.gguf)");
  const size_t rungs = markdown.find("## Rungs");
  ASSERT_NE(recommendation, std::string::npos);
  ASSERT_NE(rungs, std::string::npos);
  EXPECT_LT(recommendation, rungs);
  EXPECT_NE(markdown.find("- int4 is faster but drops the 'code' stratum beyond its tolerance"), std::string::npos);
  EXPECT_NE(markdown.find("TPOT p95 ≤ 30 ms"), std::string::npos);
}

TEST(Report, RungTableHasEveryRungAndDevice) {
  const std::string markdown = render_markdown(load_sample(), PlotSet{});
  for (const char* rung : {"| baseline |", "| bf16 |", "| int8 |", "| w8a8 |", "| int4 |"}) {
    EXPECT_NE(markdown.find(rung), std::string::npos) << rung;
  }
  for (const char* device : {"predicted TPOT p95 on jetson-orin-nano (ms)", "predicted TPOT p95 on h100-sxm (ms)"}) {
    EXPECT_NE(markdown.find(device), std::string::npos) << device;
  }
  // int8's row: bpw, size in MB, measured TPOT p95, overall delta with its CI.
  EXPECT_NE(markdown.find("| int8 | INT8 weight-only (q8_0) | pass | q8_0 | 8.50 | 145.0 | 3533.9 | 24.20 |"),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("-0.003 [-0.011, +0.005]"), std::string::npos);
  // The skipped rung has no measurement, prediction or quality.
  EXPECT_NE(markdown.find("| w8a8 | SmoothQuant W8A8 | skipped | int8_w8a8 | — | — | — | — |"), std::string::npos) << markdown;
}

TEST(Report, StratumTableShowsFailures) {
  const std::string markdown = render_markdown(load_sample(), PlotSet{});
  EXPECT_NE(markdown.find("| rung | overall | chat | code | extraction & json | KLD mean / same top-1 |"), std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("-0.062 [-0.101, -0.024] FAIL (n=80, tol 0.02)"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("0.0472 / 88.4%"), std::string::npos);
}

TEST(Report, UngatedStratumMarked) {
  json sample = load_sample();
  sample["rungs"][4]["quality"]["strata"][2]["gated"] = false;
  const std::string markdown = render_markdown(sample, PlotSet{});
  EXPECT_NE(markdown.find("-0.020 [-0.043, +0.003] FAIL (n=100, tol 0.02) not gated"), std::string::npos) << markdown;
  EXPECT_EQ(count(markdown, "not gated"), 1u);
}

TEST(Report, PredictorErrorIsPrinted) {
  const json sample = load_sample();
  const std::string markdown = render_markdown(sample, PlotSet{});
  EXPECT_NE(markdown.find("| int4 | tpot_p95_ms | 19.60 | 25.70 | -23.7% |"), std::string::npos) << markdown;
  const std::string html = render_html(sample, PlotSet{});
  EXPECT_NE(html.find("<td>-23.7%</td>"), std::string::npos);
}

TEST(Report, HtmlEscapesRecordText) {
  json sample = load_sample();
  sample["rungs"][4]["quality"]["strata"][0]["name"] = "<script>alert(1)</script>";
  sample["recommendation"]["reasons"][0] = "x < y & \"z\" isn't <b>bold</b>";
  const std::string html = render_html(sample, PlotSet{});
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("x &lt; y &amp; &quot;z&quot; isn&#39;t &lt;b&gt;bold&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("extraction &amp; json"), std::string::npos);
  EXPECT_EQ(test::xml_problem(html.substr(html.find("<html"))), "");
}

TEST(Report, HtmlEscapeReplacesFiveCharacters) {
  EXPECT_EQ(html_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(Report, EscapedNamesReachThePlots) {
  json sample = load_sample();
  sample["rungs"][2]["name"] = "int8 <fast> & 'small'";
  sample["rungs"][4]["quality"]["strata"][1]["name"] = "code \"python\" & <sql>";
  const PlotSet plots = render_plots(sample, default_gnuplot());
  ASSERT_EQ(plots.note, "");
  ASSERT_EQ(plots.plots.size(), 3u);
  for (const Plot& plot : plots.plots) EXPECT_EQ(test::xml_problem(plot.svg), "") << plot.name;
  const std::string html = render_html(sample, plots);
  EXPECT_EQ(test::xml_problem(html.substr(html.find("<html"))), "");
}

TEST(Report, HtmlIsWellFormedWithPlots) {
  const json sample = load_sample();
  const std::string html = render_html(sample, render_plots(sample, default_gnuplot()));
  ASSERT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(test::xml_problem(html.substr(html.find("<html"))), "");
}

TEST(Report, MissingGnuplotGivesNote) {
  const std::filesystem::path dir = fresh_dir("no-gnuplot");
  ReportOptions options;
  options.gnuplot = "/nonexistent/bin/gnuplot";
  write_reports(load_sample(), dir, options);

  EXPECT_TRUE(std::filesystem::is_empty(dir / "plots"));
  const std::string markdown = read_file(dir / "report.md");
  EXPECT_NE(markdown.find("> **Note:** Plots are missing: cannot run '/nonexistent/bin/gnuplot'"), std::string::npos)
      << markdown;
  const std::string html = read_file(dir / "report.html");
  EXPECT_NE(html.find("class=\"note\""), std::string::npos);
  EXPECT_EQ(html.find("<svg"), std::string::npos);
  // The tables are all still there.
  EXPECT_NE(html.find("Ship rung int8 on host"), std::string::npos);
  EXPECT_NE(html.find("<td>int4</td>"), std::string::npos);
}

TEST(Report, RemovesStalePlots) {
  const std::filesystem::path dir = fresh_dir("stale");
  write_reports(load_sample(), dir);
  ASSERT_TRUE(std::filesystem::exists(dir / "plots" / "strata.svg"));
  ReportOptions options;
  options.gnuplot = "/nonexistent/bin/gnuplot";
  write_reports(load_sample(), dir, options);
  EXPECT_FALSE(std::filesystem::exists(dir / "plots" / "strata.svg"));
  EXPECT_TRUE(std::filesystem::is_empty(dir / "plots"));
}

TEST(Report, ToleratesMinimalRecord) {
  const json minimal = {{"schema", "stepdown.decision/1"}, {"rungs", json::array({{{"name", "bf16"}, {"status", "error"}}})},
                        {"recommendation", {{"rung", nullptr}, {"reasons", {"no rung meets the budget"}}}}};
  const std::filesystem::path dir = fresh_dir("minimal");
  write_reports(minimal, dir);
  const std::string markdown = read_file(dir / "report.md");
  EXPECT_NE(markdown.find("No rung meets every constraint."), std::string::npos);
  EXPECT_NE(markdown.find("| bf16 | — | error |"), std::string::npos) << markdown;
  const std::string html = read_file(dir / "report.html");
  EXPECT_NE(html.find("recommendation none"), std::string::npos);
}

TEST(Report, RejectsOtherRecords) {
  EXPECT_THROW(render_markdown(json::array(), PlotSet{}), FormatError);
  EXPECT_THROW(render_html({{"schema", "stepdown.gate/1"}}, PlotSet{}), FormatError);
  EXPECT_THROW(render_html({{"rungs", "none"}}, PlotSet{}), FormatError);
}

TEST(Plots, ParetoFrontOnConstructedPoints) {
  // (latency, quality): b dominates d; a is fastest; c has the best quality.
  const std::vector<std::pair<double, double>> points = {{10.0, -0.05}, {20.0, -0.01}, {40.0, 0.0}, {30.0, -0.02}, {20.0, -0.01}};
  EXPECT_EQ(pareto_front(points), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(pareto_front({}).empty());
}

TEST(Plots, PrimaryDeviceAndTpot) {
  const json sample = load_sample();
  EXPECT_EQ(primary_device(sample), "host");
  EXPECT_EQ(rung_tpot_p95(sample["rungs"][2], "host"), json(24.2));
  EXPECT_EQ(rung_tpot_p95(sample["rungs"][2], "jetson-orin-nano"), json(3.02));
  EXPECT_TRUE(rung_tpot_p95(sample["rungs"][3], "host").is_null());
  EXPECT_EQ(primary_device(json::object()), "host");
}

// Renders the report in headless Chromium when it is installed: the page must load and
// print to PDF without errors. Without Chromium the well-formedness checks above stand in.
TEST(Report, RendersInHeadlessChromium) {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
  std::string chromium;
  for (const char* candidate : candidates) {
    if (std::filesystem::exists(candidate)) chromium = candidate;
  }
  if (chromium.empty()) {
    // scripts/test installs Chromium and sets STEPDOWN_REQUIRE_BROWSER, so CI never skips this.
    const char* required = std::getenv("STEPDOWN_REQUIRE_BROWSER");
    if (required != nullptr && std::string(required) == "1") FAIL() << "chromium is not installed (Debian package chromium)";
    GTEST_SKIP() << "SKIPPED: chromium is not installed (Debian package chromium)";
  }

  const std::filesystem::path dir = fresh_dir("chromium");
  write_reports(load_sample(), dir);
  const std::filesystem::path pdf = dir / "report.pdf";
  const std::string command = "'" + chromium + "' --headless --no-sandbox --disable-gpu --no-pdf-header-footer --print-to-pdf='" +
                              pdf.string() + "' 'file://" + (dir / "report.html").string() + "' >'" +
                              (dir / "chromium.log").string() + "' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(dir / "chromium.log");
  ASSERT_TRUE(std::filesystem::exists(pdf));
  EXPECT_GT(std::filesystem::file_size(pdf), 10000u);
}

}  // namespace
}  // namespace stepdown::decide
