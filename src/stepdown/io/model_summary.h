#pragma once
// What `stepdown inspect` reports about a model file: format, architecture, the main
// hyper-parameters, parameter count, and each tensor's dtype, shape, bytes and bits per
// weight, with totals per dtype.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/io/model_file.h"

namespace stepdown::io {

struct TensorSummary {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  int64_t parameters = 0;
  uint64_t bytes = 0;
  double bits_per_weight = 0;
};

struct DTypeTotals {
  int64_t tensors = 0;
  int64_t parameters = 0;
  uint64_t bytes = 0;
};

struct ModelSummary {
  std::string path;
  std::string format;
  std::string architecture;  // empty when the metadata names none
  // "{arch}.block_count" and the like, without the architecture prefix.
  std::vector<std::pair<std::string, MetaValue>> hyperparameters;
  std::vector<TensorSummary> tensors;
  std::map<std::string, DTypeTotals> by_dtype;  // keyed by dtype name
  int64_t parameters = 0;
  uint64_t bytes = 0;
  double bits_per_weight = 0;  // 8 * bytes / parameters over all tensors
};

ModelSummary summarize_model(const ModelFile& model);

// A human-readable report: header lines, the dtype totals, then one line per tensor.
std::string format_summary(const ModelSummary& summary);

// The summary plus every metadata entry (arrays as their element type and length).
nlohmann::json summary_to_json(const ModelSummary& summary, const Metadata& metadata);

}  // namespace stepdown::io
