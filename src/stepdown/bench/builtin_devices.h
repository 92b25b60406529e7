#pragma once
// The device profiles of data/devices/*.yaml, compiled in. CMake generates the definition
// (builtin_devices.cpp in the build folder) from those files at configure time, so the
// binary needs nothing from the source tree.
#include <span>

namespace stepdown::bench {

struct EmbeddedDeviceFile {
  const char* name;       // file name without .yaml
  const char* file_name;  // "data/devices/<name>.yaml", for messages
  const char* yaml;       // the whole file
};

// Every embedded file, sorted by name.
std::span<const EmbeddedDeviceFile> embedded_device_files();

}  // namespace stepdown::bench
