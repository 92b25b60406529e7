// stepdown devices [NAME|FILE.yaml] [--json]: the builtin device profiles as a table, or
// one profile (builtin or a user's YAML file) with the source of every figure.
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "stepdown/bench/device_profile.h"

namespace stepdown::cli {
namespace {

struct DevicesArgs {
  std::string device;
  bool json = false;
};

nlohmann::json profile_json(const bench::DeviceProfile& profile) {
  return {{"name", profile.name},
          {"description", profile.description},
          {"read_bandwidth_gbps", profile.read_bandwidth_gbps},
          {"memory_gb", profile.memory_gb},
          {"peak_tflops", profile.peak_tflops},
          {"native_formats", profile.native_formats},
          {"network_rtt_ms", profile.network_rtt_ms},
          {"measured", profile.measured},
          {"sources", profile.sources}};
}

std::string peaks_text(const bench::DeviceProfile& profile) {
  std::string text;
  for (const auto& [precision, tflops] : profile.peak_tflops) text += fmt::format("{}{} {:g}", text.empty() ? "" : ", ", precision, tflops);
  return text;
}

void print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

int run_devices(const DevicesArgs& args) {
  if (!args.device.empty()) {
    const bench::DeviceProfile profile = bench::resolve_device_profile(args.device);
    print(args.json ? profile_json(profile).dump(2) + "\n" : bench::to_yaml(profile));
    return 0;
  }

  std::vector<bench::DeviceProfile> profiles;
  for (const std::string& name : bench::builtin_device_names()) profiles.push_back(bench::builtin_device_profile(name));
  if (args.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const bench::DeviceProfile& profile : profiles) list.push_back(profile_json(profile));
    print(list.dump(2) + "\n");
    return 0;
  }
  print(fmt::format("{:<22} {:>9} {:>7} {:>7}  {}\n", "name", "read GB/s", "mem GB", "RTT ms", "peak TFLOPS (TOPS for int)"));
  for (const bench::DeviceProfile& profile : profiles) {
    print(fmt::format("{:<22} {:>9g} {:>7g} {:>7g}  {}\n", profile.name, profile.read_bandwidth_gbps, profile.memory_gb,
                      profile.network_rtt_ms, peaks_text(profile)));
  }
  return 0;
}

const bool registered = register_command("devices", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DevicesArgs>();
  CLI::App* cmd = app.add_subcommand("devices", "List the builtin device profiles, or print one with its sources");
  cmd->add_option("device", args->device, "A builtin device name, or a device profile .yaml file");
  cmd->add_flag("--json", args->json, "Print JSON on stdout");
  cmd->callback([args, &exit_code] { exit_code = run_devices(*args); });
});

}  // namespace
}  // namespace stepdown::cli
