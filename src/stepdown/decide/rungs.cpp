#include "stepdown/decide/rungs.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace stepdown::decide {
namespace {

// w8a8 and int8-outlier write stepdown's own formats, which llama.cpp cannot run.
// int4-awq and int4-gptq write q4_0, which llama.cpp also runs. Plain RTN int4 comes after
// them because it usually loses the most quality of the three, and mixed precision is the
// last quantized rung because it spends bits to win back the quality int4 lost.
const std::array<RungDefinition, 11> kLadder = {{
    {"baseline", "Baseline (as given)", 1, "", "rtn", RungCondition::kAlways},
    {"bf16", "BF16 weights", 2, "bf16", "rtn", RungCondition::kAlways},
    {"int8", "INT8 weight-only (q8_0)", 3, "q8_0", "rtn", RungCondition::kAlways},
    {"w8a8", "INT8 weights and activations (SmoothQuant, w8a8)", 3, "w8a8", "smoothquant",
     RungCondition::kNativeInt8},
    {"int8-outlier", "INT8 with an outlier split (int8-outlier)", 3, "int8-outlier", "outlier",
     RungCondition::kOutliersFound},
    {"fp8", "FP8 E4M3 weights", 4, "fp8", "fp8", RungCondition::kNativeFp8},
    {"int4-awq", "INT4 AWQ (q4_0)", 5, "q4_0", "awq", RungCondition::kAlways},
    {"int4-gptq", "INT4 GPTQ (q4_0)", 5, "q4_0", "gptq", RungCondition::kAlways},
    {"int4", "INT4 round-to-nearest (q4_0)", 5, "q4_0", "rtn", RungCondition::kAlways},
    {"mixed", "Mixed precision (q4_0 with sensitive layers at q8_0)", 5, "q4_0", "mixed",
     RungCondition::kAlways},
    {"smaller-architecture", "A smaller architecture (prune, distill, quantize)", 6, "", "",
     RungCondition::kNeverBuilt},
}};

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::span<const RungDefinition> ladder() { return kLadder; }

const RungDefinition* find_rung(std::string_view name) {
  for (const RungDefinition& rung : kLadder) {
    if (rung.name == name) return &rung;
  }
  return nullptr;
}

std::string ladder_names() {
  std::string names;
  for (const RungDefinition& rung : kLadder) names += (names.empty() ? "" : ", ") + rung.name;
  return names;
}

std::optional<std::string> skip_reason(const RungDefinition& rung, bool method_registered,
                                       const std::vector<std::string>& device_formats) {
  switch (rung.condition) {
    case RungCondition::kNativeInt8:
      if (!contains(device_formats, "int8")) return "no target device has native int8 compute";
      break;
    case RungCondition::kNativeFp8:
      if (!contains(device_formats, "fp8")) return "no native FP8 on any target device";
      break;
    case RungCondition::kNeverBuilt:
      return "a smaller architecture is not built by decide; the recommendation states the latency it needs";
    case RungCondition::kOutliersFound:
    case RungCondition::kAlways:
      break;
  }
  if (rung.method != "rtn" && !method_registered) {
    return fmt::format("quantization method '{}' is not registered in this build", rung.method);
  }
  return std::nullopt;
}

std::string compute_precision(std::string_view scheme, std::string_view method) {
  if (scheme == "" || scheme == "f32") return "f32";
  if (scheme == "f16" || scheme == "bf16") return std::string(scheme);
  if (scheme == "fp8" || method == "fp8") return "fp8";
  return "int8";
}

}  // namespace stepdown::decide
