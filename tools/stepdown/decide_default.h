#pragma once
// The embedded default of `stepdown decide` with no arguments, generated at configure time
// from examples/decide-default-policy.yaml and examples/traffic-demo.jsonl, so the binary
// needs nothing from the source tree.
namespace stepdown::cli {

extern const char* const kDefaultDecidePolicy;
extern const char* const kDefaultDecideTraffic;
// The model file the default policy uses, looked up in the model cache.
inline constexpr const char* kDefaultDecideModel = "SmolLM2-135M-Instruct.Q4_1.gguf";

}  // namespace stepdown::cli
