// stepdown report DECISION.json -o DIR [--gnuplot PATH]: renders report.md, report.html
// and plots/*.svg from a decision record that stepdown decide wrote.
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "command.h"
#include "stepdown/core/error.h"
#include "stepdown/decide/report.h"

namespace stepdown::cli {
namespace {

struct ReportArgs {
  std::string decision;
  std::string out_dir;
  std::string gnuplot;
};

int run_report(const ReportArgs& args) {
  std::ifstream in(args.decision);
  if (!in) raise<IoError>("{}: decision record not found or not readable", args.decision);
  nlohmann::json decision;
  try {
    decision = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    raise<FormatError>("{}: invalid JSON at byte {}: {}", args.decision, e.byte, e.what());
  }

  decide::ReportOptions options;
  if (!args.gnuplot.empty()) options.gnuplot = args.gnuplot;
  decide::write_reports(decision, args.out_dir, options);
  spdlog::info("report: wrote {}/report.md and {}/report.html", args.out_dir, args.out_dir);
  return 0;
}

const bool registered = register_command("report", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand("report", "Render report.md, report.html and plots from a decision record");
  cmd->add_option("decision", args->decision, "decision.json written by stepdown decide")->required();
  cmd->add_option("-o,--out", args->out_dir, "Folder for report.md, report.html and plots/ (created if missing)")->required();
  cmd->add_option("--gnuplot", args->gnuplot, "gnuplot binary (default: $STEPDOWN_GNUPLOT, else gnuplot in PATH)");
  cmd->callback([args, &exit_code] { exit_code = run_report(*args); });
});

}  // namespace
}  // namespace stepdown::cli
