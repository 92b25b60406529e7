#pragma once
// Registry of calibrated quantization methods (GPTQ, AWQ, SmoothQuant, ...). Plain RTN
// ("rtn") is the default and needs no entry, because every tensor goes through its
// format's row quantizer. A method runs once before the output is written. For each tensor
// it changes, it returns replacement f32 weights, which the planned format still quantizes
// with RTN (AWQ after scaling), or the finished bytes of that format (GPTQ). It also returns
// the manifest fields that record what it did.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/core/thread_pool.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/scheme.h"

namespace stepdown::quant {

struct QuantizeOptions;

// A method's result for one tensor. Rows are in the source file's order, and the writer
// applies any RoPE row permutation afterwards, to values and bytes alike.
struct PreparedTensor {
  // W (rows, cols) f32 to quantize with the planned format instead of the source weights.
  // Empty keeps the source weights, for a method that only changes the format.
  std::vector<float> values;
  // rows * row_bytes of the planned format, written as they are. When set, `values` is
  // ignored. The method checks that they decode to what it computed.
  std::optional<std::vector<std::byte>> bytes;
  // A different format than planned (for example an outlier-split format); nullptr keeps
  // the plan's.
  const QuantFormat* format = nullptr;
};

// A 1-D tensor a method rewrites (a RMSNorm weight that absorbed AWQ or SmoothQuant
// scales) is returned the same way, with `values` of length numel.
struct MethodOutput {
  std::map<std::string, PreparedTensor> tensors;
  // Merged into the manifest under "method_details": parameters, calibration set hash,
  // per-layer choices, sensitivity map.
  nlohmann::json manifest = nlohmann::json::object();
};

struct MethodContext {
  const io::ModelFile& model;
  const std::vector<TensorPlan>& plans;  // one per model.tensors entry, same order
  const QuantizeOptions& options;
  ThreadPool& pool;
};

using QuantMethodFn = std::function<MethodOutput(const MethodContext&)>;

struct QuantMethod {
  std::string name;         // "gptq"
  std::string description;  // one line for --help and error messages
  QuantMethodFn run;
};

// Adds a method; throws InvalidArgument when the name is taken or is "rtn".
void register_quant_method(QuantMethod method);
// The method named `name` (case-insensitive), or nullptr ("rtn" has no entry).
const QuantMethod* find_quant_method(std::string_view name);
// "rtn" followed by every registered method, in registration order.
std::vector<std::string> quant_method_names();

}  // namespace stepdown::quant
