#pragma once
// Per-layer quantization sensitivity: how much the KL divergence from the unquantized
// model grows when one unit of weights drops from the reference (highest) format to a
// lower one while every other unit stays at the reference format.
//
//   sensitivity[u][j] = KLD(base || u at level j, rest at reference)
//                     - KLD(base || everything at reference)
//
// KLD is KL(base || candidate) per token over the full vocabulary, averaged over every
// position of every calibration sequence. The base is the source model decoded to f32.
// Everything runs in memory: each matrix is quantized and dequantized back to f32
// (quantize_tensor then kernels::dequantize_row), so the forward pass uses exactly the
// values a GGUF written with that format decodes to, and no file is written.
//
// A unit is by default one transformer block's linears (attention q/k/v/o and FFN
// gate/up/down), plus token_embd and output each on their own. Block granularity costs
// n_layers forward passes per level and gives sensitivities large enough to stand out of
// noise on a few thousand calibration tokens. Matrix granularity (7 units per block) is
// finer but costs 7 times the passes, and its per-matrix KLD increases are often within
// noise for small models. Both are available through UnitGranularity.
//
// The allocator in mixed_precision.h treats sensitivities as additive across units. That
// is the usual first-order assumption; interactions between units are not measured.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "stepdown/core/thread_pool.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/format.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::quant {

enum class UnitGranularity {
  BLOCK,   // blk.N: q, k, v, o, gate, up, down of one block
  MATRIX,  // each weight matrix alone
};

// Parses "block" or "matrix"; throws InvalidArgument otherwise.
UnitGranularity parse_unit_granularity(const std::string& text);

// A group of weight matrices that always share one format level.
struct SensitivityUnit {
  std::string name;                  // "blk.3", "blk.3.attn_q.weight", "token_embd.weight"
  std::vector<std::string> tensors;  // GGUF tensor names
};

// Groups the transformer's weight matrices present in `model` into units: per block or per
// matrix, then token_embd.weight and output.weight (when the file has one) as units of
// their own. Tensors the forward pass does not use as a matrix (norms, biases) are left out.
std::vector<SensitivityUnit> sensitivity_units(const io::ModelFile& model, UnitGranularity granularity);

// The format of every unit tensor at one level, e.g. from plan_tensors with that level's
// format as the scheme, so row-length fallbacks and user overrides apply as in the output.
struct FormatLevel {
  std::string name;                                    // "q4_0"
  std::map<std::string, const QuantFormat*> formats;  // by tensor name, for every unit tensor
};

struct SensitivityOptions {
  // Index into `levels` of the reference level every other unit stays at (the highest).
  size_t reference_level = 0;
  // Bound on the base log-probabilities kept in memory (tokens * vocab * 4 bytes). Only the
  // leading sequences that fit are used, with a warning.
  uint64_t max_base_bytes = uint64_t{1} << 30;
};

struct SensitivityResult {
  double base_to_reference_kld = 0.0;           // KLD with every unit at the reference level
  std::vector<std::vector<double>> sensitivity; // [unit][level]; 0 at the reference level
  int64_t sequences = 0;                        // calibration sequences used
  int64_t tokens = 0;                           // calibration tokens scored per pass
  int64_t passes = 0;                           // forward passes run, the baseline included
};

// Measures sensitivity[u][j] for every unit and every level j other than the reference.
// `sequences` are token ids (each at most the model's context length). Throws
// InvalidArgument when there are no tokens, a sequence is longer than the model's context,
// a unit names a tensor that is not a weight matrix of the model, or a level lacks a
// format for one. Holds the f32 model twice (decoded source and reference copies of the
// unit matrices) plus (tokens, vocab) f32 base log-probabilities.
SensitivityResult measure_sensitivity(const io::ModelFile& model, const std::vector<SensitivityUnit>& units,
                                      const std::vector<FormatLevel>& levels,
                                      const std::vector<std::vector<text::TokenId>>& sequences,
                                      const SensitivityOptions& options, ThreadPool& pool);

}  // namespace stepdown::quant
