// stepdown: the command-line entry. Each subcommand is in its own file and registers
// itself through command.h; this file parses the command line and maps errors to exit
// codes.
#include <algorithm>
#include <cstdio>

#include "command.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"

namespace stepdown::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

bool register_command(std::string name, CommandSetup setup) {
  command_registry().push_back({std::move(name), std::move(setup)});
  return true;
}

}  // namespace stepdown::cli

int main(int argc, char** argv) {
  using namespace stepdown;
  CLI::App app{"stepdown: run, compress, evaluate and choose LLMs under a latency budget"};
  app.set_version_flag("--version", STEPDOWN_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Log level on stderr: trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  int exit_code = 0;
  std::vector<cli::CommandEntry>& commands = cli::command_registry();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (cli::CommandEntry& command : commands) command.setup(app, exit_code);

  app.parse_complete_callback([&] { init_logging(log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 returns 0 for --help and --version and codes from 105 up for usage errors;
    // every usage error exits 2, as in most Unix tools.
    const int cli_code = app.exit(e);
    return cli_code == 0 ? 0 : 2;
  } catch (const stepdown::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return exit_code != 0 ? exit_code : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
