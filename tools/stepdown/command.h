#pragma once
// Subcommands register themselves here, so each lives in its own file and main.cpp does
// not change when one is added. A command's setup function adds a CLI11 subcommand and
// its callback; the callback returns the process exit code.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace stepdown::cli {

using CommandSetup = std::function<void(CLI::App& app, int& exit_code)>;

struct CommandEntry {
  std::string name;
  CommandSetup setup;
};

std::vector<CommandEntry>& command_registry();

// Accepts integers >= 0 with a short message; CLI::NonNegativeNumber prints the range up
// to the largest double.
inline const CLI::Validator kNonNegativeInteger(
    [](std::string& value) -> std::string {
      try {
        size_t used = 0;
        if (std::stoll(value, &used) >= 0 && used == value.size()) return {};
      } catch (const std::exception&) {
      }
      return "expected an integer >= 0, found " + value;
    },
    "INT>=0");

// Accepts integers >= 1. CLI::PositiveNumber would print the same long range message.
inline const CLI::Validator kPositiveInteger(
    [](std::string& value) -> std::string {
      try {
        size_t used = 0;
        if (std::stoll(value, &used) >= 1 && used == value.size()) return {};
      } catch (const std::exception&) {
      }
      return "expected an integer >= 1, found " + value;
    },
    "INT>=1");

// Adds a subcommand; call from a namespace-scope initializer in the command's file.
bool register_command(std::string name, CommandSetup setup);

}  // namespace stepdown::cli
