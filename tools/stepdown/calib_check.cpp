// stepdown calib-check --calib FILE --against SUITE_OR_TRAFFIC [--model M] [--tokenizer T]
// [--json] [--strict]: compares a calibration set with production requests and warns when
// it does not represent them (quant/calibration_check.h has the measures and thresholds).
#include <cstdio>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "command.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/calibration_check.h"

namespace stepdown::cli {
namespace {

struct CalibCheckArgs {
  std::string calibration;
  std::string against;
  std::string model;
  std::string tokenizer;
  bool json = false;
  bool strict = false;
};

void print_report(const quant::CalibrationCheck& check) {
  const auto& c = check.calibration_lengths;
  const auto& p = check.production_lengths;
  std::printf("Token mix      Jensen-Shannon %.3f bits, coverage %.1f%%\n", check.js_divergence,
              100.0 * check.coverage);
  std::printf("Item tokens    calibration %lld items: p10 %.0f, p50 %.0f, p90 %.0f, max %.0f\n",
              static_cast<long long>(c.items), c.p10, c.p50, c.p90, c.max);
  std::printf("               production  %lld items: p10 %.0f, p50 %.0f, p90 %.0f, max %.0f\n",
              static_cast<long long>(p.items), p.p10, p.p50, p.p90, p.max);
  std::printf("               Kolmogorov-Smirnov D %.3f\n", check.ks);
  for (const auto& [name, shares] : check.strata) {
    std::printf("Stratum %-14s calibration %5.1f%%, production %5.1f%%\n", name.empty() ? "(none)" : name.c_str(),
                100.0 * shares.first, 100.0 * shares.second);
  }
  for (const std::string& warning : check.warnings) std::printf("WARNING: %s\n", warning.c_str());
  if (check.representative()) std::printf("The calibration set represents production on every measure.\n");
}

int run_calib_check(const CalibCheckArgs& args) {
  std::optional<io::ModelFile> model;
  if (!args.model.empty()) {
    io::OpenOptions options;
    if (!args.tokenizer.empty()) options.tokenizer_path = args.tokenizer;
    model = io::open_model_file(args.model, options);
  }
  const quant::CalibrationCheck check =
      quant::check_calibration_files(args.calibration, args.against, model ? &*model : nullptr);
  if (args.json) {
    std::printf("%s\n", check.to_json().dump(2).c_str());
    for (const std::string& warning : check.warnings) spdlog::warn("{}", warning);
  } else {
    print_report(check);
  }
  return args.strict && !check.representative() ? 1 : 0;
}

const bool registered = register_command("calib-check", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CalibCheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "calib-check", "Check that a calibration set represents production requests (tokens, lengths, strata)");
  cmd->add_option("--calib", args->calibration, "Calibration data: traffic JSONL or plain text")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--against", args->against, "Production requests: a suite or traffic JSONL")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--model", args->model, "Tokenize with this model's tokenizer; without it words are the tokens");
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer file for model formats that carry none");
  cmd->add_flag("--json", args->json, "Print the measures and warnings as JSON on stdout");
  cmd->add_flag("--strict", args->strict, "Exit with status 1 when there is any warning");
  cmd->callback([args, &exit_code] { exit_code = run_calib_check(*args); });
});

}  // namespace
}  // namespace stepdown::cli
