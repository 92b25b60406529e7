// stepdown tokenize (MODEL | --tokenizer FILE) TEXT [--json] [--no-special]: the token ids
// and vocabulary pieces of TEXT.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/text/model_tokenizer.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::cli {
namespace {

struct TokenizeArgs {
  std::vector<std::string> positional;  // [MODEL] TEXT
  std::string tokenizer;
  bool json = false;
  bool no_special = false;
};

std::unique_ptr<text::Tokenizer> load(const TokenizeArgs& args) {
  if (!args.tokenizer.empty() && !std::filesystem::is_regular_file(args.tokenizer)) {
    raise<IoError>("{}: tokenizer file not found (--tokenizer)", args.tokenizer);
  }
  if (args.positional.size() == 1) {
    if (args.tokenizer.empty()) {
      raise<InvalidArgument>("tokenize needs a MODEL or --tokenizer FILE before the text to tokenize");
    }
    return text::load_tokenizer_file(args.tokenizer);
  }
  io::OpenOptions options;
  if (!args.tokenizer.empty()) options.tokenizer_path = args.tokenizer;
  return text::load_model_tokenizer(io::open_model_file(args.positional[0], options));
}

int run_tokenize(const TokenizeArgs& args) {
  const auto tokenizer = load(args);
  const std::vector<text::TokenId> ids = tokenizer->encode(args.positional.back(), !args.no_special);
  if (args.json) {
    nlohmann::json out = {{"ids", ids}, {"pieces", nlohmann::json::array()}};
    for (text::TokenId id : ids) out["pieces"].push_back(tokenizer->token_piece(id));
    // Pieces of byte-fallback tokens may be partial characters: replace rather than fail.
    const std::string text = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  for (text::TokenId id : ids) {
    // The piece as JSON string syntax, so spaces, newlines and control bytes stay visible.
    const std::string piece = nlohmann::json(tokenizer->token_piece(id)).dump(-1, ' ', false,
                                                                             nlohmann::json::error_handler_t::replace);
    const std::string line = fmt::format("{:>8} {}\n", id, piece);
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

const bool registered = register_command("tokenize", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids and pieces of a text");
  cmd->add_option("args", args->positional,
                  "[MODEL] TEXT: a GGUF file, Hugging Face directory or llama2.c checkpoint (optional with "
                  "--tokenizer), then the text")
      ->required()
      ->expected(1, 2);
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer file: tokenizer.json, llama2.c tokenizer.bin or GGUF");
  cmd->add_flag("--json", args->json, "Print {\"ids\": [...], \"pieces\": [...]} on stdout");
  cmd->add_flag("--no-special", args->no_special, "Leave out the BOS/EOS tokens the tokenizer adds");
  cmd->callback([args, &exit_code] { exit_code = run_tokenize(*args); });
});

}  // namespace
}  // namespace stepdown::cli
