#pragma once
// A model file held in memory whose tensors are quantized into their planned formats,
// with a method's replacement weights applied. It runs and scores formats that no
// container stores yet (INT8_W8A8, FP8 with static activation scales) exactly as a
// written file would, and lets tests compare methods without writing GGUF.
#include <optional>

#include <nlohmann/json.hpp>

#include "stepdown/core/thread_pool.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/method.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {

// Quantizes every tensor of `source` into its plan's format (a method's PreparedTensor
// format when it sets one), from the method's values or bytes when it gives them and
// from the source weights otherwise. Rows stay in the source's order and the metadata is
// the source's, so the result binds like the source. Throws InvalidArgument when a
// method's values or bytes have the wrong size.
io::ModelFile quantize_in_memory(const io::ModelFile& source, const std::vector<TensorPlan>& plans,
                                 const MethodOutput& prepared, ThreadPool& pool);

struct InMemoryModel {
  io::ModelFile file;
  nlohmann::json method_details;  // the method's manifest fields; empty for RTN
};

// Opens options.model, plans it for options.scheme and options.overrides as
// quantize_model does, then stores every block matrix ("blk.*", 2-D) in `block_dtype`
// when given, for formats no registered scheme offers yet (INT8_W8A8). Runs
// options.method and quantizes into memory instead of writing a file. Throws what
// quantize_model throws for bad options.
InMemoryModel quantize_model_in_memory(const QuantizeOptions& options, std::optional<DType> block_dtype,
                                       ThreadPool& pool);

}  // namespace stepdown::quant
