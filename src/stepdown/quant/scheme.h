#pragma once
// Quantization schemes: which format each tensor of a model gets. A scheme names the
// format of its 2-D (and higher) weights; 1-D tensors (norms, biases) always stay F32.
// token_embd.weight and output.weight follow the scheme unless an override names them.
// New schemes (stepdown's group-wise formats) are one register_scheme() call.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/core/tensor.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/quantize_tensor.h"

namespace stepdown::quant {

struct Scheme {
  std::string name;            // "q4_0"
  std::string weight_format;   // registered format name for 2-D weights
  uint32_t gguf_file_type = 0; // general.file_type (ggml's enum llama_ftype)
  std::string description;
};

void register_scheme(Scheme scheme);
const Scheme* find_scheme(std::string_view name);
std::vector<std::string> scheme_names();

// PATTERN=TYPE from --override. A pattern containing one of ^ $ ( ) [ ] + | \ { } is an
// ECMAScript regex that must match the whole name. Any other pattern is a glob, where '*'
// and '?' are wildcards and '.' is literal.
struct TensorOverride {
  std::string pattern;
  std::string format;
};
TensorOverride parse_override(std::string_view text);
bool override_matches(const TensorOverride& rule, std::string_view tensor_name);

// The format chosen for one tensor, and why when it is not the scheme's own.
struct TensorPlan {
  std::string name;
  const QuantFormat* format = nullptr;
  std::string note;  // "1-D tensor", "override 'token_embd.weight=q8_0'", "fallback: ..."
};

// Chooses a format for each tensor: F32 for 1-D tensors even when an override matches, then
// the last override that matches (an error when its format does not fit the row length),
// then the scheme's format. When the scheme's format does not fit a row length, the tensor
// falls back along q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, then any 32-block format ->
// f16, or along a stepdown format's own fallback (QuantFormat::fallback, ending at per-row
// int8), and the plan's note records it. The output head (output.weight, and
// token_embd.weight, which is the head when the two are tied) takes the weight-only twin
// of a format that quantizes activations (output_head_format), unless an override names it.
std::vector<TensorPlan> plan_tensors(const std::vector<TensorView>& tensors, const Scheme& scheme,
                                     const std::vector<TensorOverride>& overrides);

// INT8 for INT8_W8A8 and INT8_OUTLIER, FP8_E4M3 for FP8_E4M3_A8 when `tensor_name` is
// output.weight or token_embd.weight, else nullptr. With SmolLM2-135M's tied head at
// weight-only INT8, SmoothQuant W8A8's mean KLD fell from 0.0136 to 0.0085. W8A8 recipes
// published for llm-compressor (recipe.yaml on Hugging Face) list lm_head under ignore.
const QuantFormat* output_head_format(const QuantFormat& planned, std::string_view tensor_name);

}  // namespace stepdown::quant
