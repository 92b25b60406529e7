#pragma once
// Quantizes a whole model file into a GGUF, plus "<output>.manifest.json" beside it.
// llama.cpp loads the output unless a tensor is in one of stepdown's own formats, which go
// into stepdown's GGUF container (io/gguf_container.h). Source weights of any stored type are dequantized to f32 first.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/quant/scheme.h"

namespace stepdown::quant {

struct QuantizeOptions {
  std::filesystem::path model;
  std::optional<std::filesystem::path> tokenizer;  // for llama2.c checkpoints
  std::string scheme = "q8_0";
  std::vector<std::string> overrides;  // PATTERN=TYPE
  std::filesystem::path output;
  int threads = 0;  // 0: all cores

  // Calibrated methods (see method.h); "rtn" needs none of the fields below.
  std::string method = "rtn";
  std::map<std::string, std::string> method_params;  // --method-param KEY=VALUE
  std::optional<std::filesystem::path> calibration;  // traffic JSONL or plain text
  int64_t calib_samples = 128;
  int64_t calib_seq_len = 512;
  uint64_t seed = 0;
};

struct TensorRecord {
  std::string name;
  std::vector<int64_t> shape;
  std::string source_type;
  std::string type;
  std::string note;
  int64_t params = 0;
  uint64_t bytes = 0;
};

struct QuantizeResult {
  std::filesystem::path output;
  std::filesystem::path manifest;
  std::vector<TensorRecord> tensors;
  int64_t params = 0;
  uint64_t tensor_bytes = 0;
  nlohmann::json manifest_json;
};

// Writes options.output (GGUF) and its manifest, both atomically.
// Throws InvalidArgument for an unknown scheme or override and for tensors the chosen
// formats cannot hold (see plan_tensors and quantize_tensor).
QuantizeResult quantize_model(const QuantizeOptions& options);

// The manifest written beside `output`: "<output>.manifest.json", so several outputs can
// share a folder.
std::filesystem::path manifest_path_for(const std::filesystem::path& output);

}  // namespace stepdown::quant
