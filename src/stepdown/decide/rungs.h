#pragma once
// The compression ladder as data, in the order `stepdown decide` climbs it: each rung costs
// more engineering than the one before and usually gives a lower latency.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace stepdown::decide {

// When a rung is worth building at all.
enum class RungCondition {
  kAlways,
  kNativeInt8,       // int8 compute pays only where some target device has it natively
  kNativeFp8,        // FP8 needs native support on some target device
  kOutliersFound,    // only when calibration finds activation outliers above the threshold
  kNeverBuilt,       // a smaller architecture: described, never built here
};

struct RungDefinition {
  std::string name;   // "int8"
  std::string label;  // "INT8 weight-only (q8_0)"
  int rung_index = 0; // the ladder step of DESIGN's list: 1 baseline ... 6 smaller architecture
  std::string scheme; // quantize scheme; empty for the baseline and the smaller architecture
  std::string method; // "rtn" or a calibrated method name
  RungCondition condition = RungCondition::kAlways;
};

// Every rung, in climbing order: baseline, bf16, int8, w8a8, int8-outlier, fp8, int4-awq,
// int4-gptq, int4, mixed, smaller-architecture.
std::span<const RungDefinition> ladder();

// The rung named `name`, or nullptr.
const RungDefinition* find_rung(std::string_view name);

// Comma-separated rung names, for messages.
std::string ladder_names();

// The reason `rung` cannot run on this build and these devices, or nullopt when it can.
// `method_registered` is whether quant::find_quant_method finds rung.method, and
// `device_formats` lists the native formats of every target device together.
std::optional<std::string> skip_reason(const RungDefinition& rung, bool method_registered,
                                       const std::vector<std::string>& device_formats);

// The compute precision that latency prediction assumes for a quantize scheme: f32, f16,
// bf16, fp8, or int8 for the integer formats (their CPU kernels quantize activations to int8).
std::string compute_precision(std::string_view scheme, std::string_view method);

}  // namespace stepdown::decide
