// stepdown inspect MODEL [--tokenizer FILE] [--json]: format, architecture,
// hyper-parameters, parameter count and every tensor's dtype, shape, bytes and bits per
// weight.
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/io/model_summary.h"

namespace stepdown::cli {
namespace {

struct InspectArgs {
  std::string model;
  std::string tokenizer;
  bool json = false;
};

int run_inspect(const InspectArgs& args) {
  io::OpenOptions options;
  if (!args.tokenizer.empty()) {
    if (!std::filesystem::is_regular_file(args.tokenizer)) {
      raise<IoError>("{}: tokenizer file not found (--tokenizer)", args.tokenizer);
    }
    options.tokenizer_path = args.tokenizer;
  }
  const io::ModelFile model = io::open_model_file(args.model, options);
  const io::ModelSummary summary = io::summarize_model(model);
  if (args.json) {
    // Replace bytes that are not UTF-8 (metadata strings come from the file) rather than
    // failing the whole report.
    const std::string text =
        io::summary_to_json(summary, model.metadata).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    const std::string text = io::format_summary(summary);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return 0;
}

const bool registered = register_command("inspect", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Print a model file's format, hyper-parameters and tensors");
  cmd->add_option("model", args->model, "Model: a GGUF file, a llama2.c checkpoint or a Hugging Face directory")
      ->required();
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer file for formats that carry none (tokenizer.bin)");
  cmd->add_flag("--json", args->json, "Print the report as JSON on stdout");
  cmd->callback([args, &exit_code] { exit_code = run_inspect(*args); });
});

}  // namespace
}  // namespace stepdown::cli
