#include "stepdown/quant/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <span>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/quantize_tensor.h"

namespace stepdown::quant {
namespace {

constexpr const char* kBlockMatrices[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

// The matrices of `weights` that read the tensor `name`. token_embd.weight is both the
// embedding table and the output matrix when the embeddings are tied.
std::vector<kernels::WeightMatrix*> matrices_for(model::ModelWeights& weights, const std::string& name) {
  if (name == "token_embd.weight") {
    std::vector<kernels::WeightMatrix*> out{&weights.token_embd};
    if (weights.config.tied_embeddings) out.push_back(&weights.output);
    return out;
  }
  if (name == "output.weight" && !weights.config.tied_embeddings) return {&weights.output};
  for (size_t layer = 0; layer < weights.blocks.size(); ++layer) {
    model::BlockWeights& b = weights.blocks[layer];
    const std::string prefix = fmt::format("blk.{}.", layer);
    if (!name.starts_with(prefix)) continue;
    const std::string rest = name.substr(prefix.size());
    if (rest == "attn_q.weight") return {&b.attn_q};
    if (rest == "attn_k.weight") return {&b.attn_k};
    if (rest == "attn_v.weight") return {&b.attn_v};
    if (rest == "attn_output.weight") return {&b.attn_output};
    if (rest == "ffn_gate.weight") return {&b.ffn_gate};
    if (rest == "ffn_up.weight") return {&b.ffn_up};
    if (rest == "ffn_down.weight") return {&b.ffn_down};
  }
  return {};
}

// The first step of the forward pass that a unit's tensors change: -1 for the embedding
// lookup, N for block N, n_layers for the output projection alone.
int64_t first_changed_stage(const SensitivityUnit& unit, int64_t n_layers, bool tied) {
  int64_t stage = n_layers;
  for (const std::string& name : unit.tensors) {
    if (name == "token_embd.weight") return -1;
    if (name == "output.weight" && !tied) continue;
    int layer = 0;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) == 1) stage = std::min<int64_t>(stage, layer);
  }
  return stage;
}

// W (rows, cols) f32 -> `format` -> f32 again: the values a file written with `format`
// decodes to.
std::vector<float> quantize_dequantize(const std::string& name, const QuantFormat& format, const float* source,
                                       int64_t rows, int64_t cols, ThreadPool& pool) {
  const std::vector<std::byte> bytes =
      quantize_tensor(name, format, std::span<const float>(source, static_cast<size_t>(rows * cols)), rows, cols, pool);
  const size_t row_bytes = bytes.size() / static_cast<size_t>(rows);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    kernels::dequantize_row(format.dtype, bytes.data() + static_cast<size_t>(r) * row_bytes,
                            out.data() + r * cols, cols);
  }
  return out;
}

// out (V) = log_softmax(logits (V)), accumulated in double.
void log_softmax(const float* logits, float* out, int64_t vocab) {
  const float max = *std::max_element(logits, logits + vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double log_sum = std::log(sum) + max;
  for (int64_t i = 0; i < vocab; ++i) out[i] = static_cast<float>(logits[i] - log_sum);
}

// KL(base || candidate) of one token, with the base given as log-probabilities.
double kl_divergence_row(const float* base_log_probs, const float* candidate_logits, int64_t vocab) {
  const float max = *std::max_element(candidate_logits, candidate_logits + vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(candidate_logits[i]) - max);
  const double log_sum = std::log(sum) + max;
  double kl = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    const double lp = base_log_probs[i];
    kl += std::exp(lp) * (lp - (candidate_logits[i] - log_sum));
  }
  return kl;
}

// Runs the calibration sequences through a model whose matrices the caller swaps between
// passes. Keeps each block's input from the reference pass, so a pass that changes only
// block N and later starts from block N's stored input.
class SensitivityRunner {
 public:
  SensitivityRunner(model::ModelWeights& weights, ThreadPool& pool,
                    const std::vector<std::vector<text::TokenId>>& sequences)
      : weights_(weights), transformer_(weights, pool), sequences_(sequences) {
    int64_t longest = 0;
    for (const auto& s : sequences_) {
      longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
      tokens_ += static_cast<int64_t>(s.size());
    }
    cache_ = std::make_unique<model::KVCache>(weights_.config, longest);
  }

  int64_t tokens() const { return tokens_; }
  int64_t passes() const { return passes_; }

  // Stores log_softmax of the current model's logits for every token (tokens, V).
  void record_base() {
    const int64_t V = weights_.config.vocab_size;
    base_log_probs_.assign(static_cast<size_t>(tokens_ * V), 0.0f);
    int64_t offset = 0;
    for (size_t i = 0; i < sequences_.size(); ++i) {
      run(i, -1, /*record=*/false);
      for (int64_t t = 0; t < logits_.rows; ++t) {
        log_softmax(logits_.row(t), base_log_probs_.data() + (offset + t) * V, V);
      }
      offset += logits_.rows;
    }
    ++passes_;
  }

  // Mean KL(base || current model) per token, starting each sequence at `stage` (see
  // first_changed_stage). With `record`, stores every block's input for later passes.
  double mean_kld(int64_t stage, bool record) {
    const int64_t V = weights_.config.vocab_size;
    double total = 0.0;
    int64_t offset = 0;
    if (record) hidden_.assign(sequences_.size(), {});
    for (size_t i = 0; i < sequences_.size(); ++i) {
      run(i, stage, record);
      for (int64_t t = 0; t < logits_.rows; ++t) {
        total += kl_divergence_row(base_log_probs_.data() + (offset + t) * V, logits_.row(t), V);
      }
      offset += logits_.rows;
    }
    ++passes_;
    return total / static_cast<double>(tokens_);
  }

 private:
  // logits_ (T, V) for sequence i, from the embedding (stage -1) or from the stored input
  // of block `stage` (0 .. n_layers, where n_layers is the last block's output).
  void run(size_t i, int64_t stage, bool record) {
    const std::vector<text::TokenId>& tokens = sequences_[i];
    const int64_t T = static_cast<int64_t>(tokens.size());
    const int64_t L = weights_.config.n_layers;
    positions_.resize(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) positions_[static_cast<size_t>(t)] = static_cast<int32_t>(t);

    if (stage < 0) {
      transformer_.embed(tokens, x_);
      stage = 0;
    } else {
      x_ = hidden_.at(i).at(static_cast<size_t>(stage));
    }
    if (record) hidden_[i].resize(static_cast<size_t>(L + 1));

    // Blocks write their keys and values at positions 0 .. T-1 before attending over
    // them, so one cache serves every sequence and every starting block.
    for (int64_t layer = stage; layer < L; ++layer) {
      if (record) hidden_[i][static_cast<size_t>(layer)] = x_;
      transformer_.forward_block(layer, x_, positions_, *cache_);
    }
    if (record) hidden_[i][static_cast<size_t>(L)] = x_;

    transformer_.compute_logits(x_, logits_, /*all_rows=*/true);
  }

  model::ModelWeights& weights_;
  model::Transformer transformer_;
  const std::vector<std::vector<text::TokenId>>& sequences_;
  std::unique_ptr<model::KVCache> cache_;
  int64_t tokens_ = 0;
  int64_t passes_ = 0;
  std::vector<float> base_log_probs_;                // (tokens, V)
  std::vector<std::vector<model::Activations>> hidden_;  // [sequence][block] (T, D) inputs
  std::vector<int32_t> positions_;
  model::Activations x_;
  model::Activations logits_;
};

// Points every matrix that reads a unit tensor at an f32 buffer of the same shape.
void bind_values(model::ModelWeights& weights, const std::string& name, const std::vector<float>& values) {
  for (kernels::WeightMatrix* w : matrices_for(weights, name)) {
    w->data = reinterpret_cast<const std::byte*>(values.data());
  }
}

}  // namespace

UnitGranularity parse_unit_granularity(const std::string& text) {
  if (text == "block") return UnitGranularity::BLOCK;
  if (text == "matrix") return UnitGranularity::MATRIX;
  raise<InvalidArgument>("unit is '{}'; expected block or matrix", text);
}

std::vector<SensitivityUnit> sensitivity_units(const io::ModelFile& model, UnitGranularity granularity) {
  std::vector<SensitivityUnit> units;
  for (int64_t layer = 0;; ++layer) {
    SensitivityUnit block{fmt::format("blk.{}", layer), {}};
    for (const char* matrix : kBlockMatrices) {
      const std::string name = fmt::format("blk.{}.{}.weight", layer, matrix);
      const TensorView* t = model.find_tensor(name);
      if (t == nullptr || t->shape.size() != 2) continue;
      if (granularity == UnitGranularity::MATRIX) {
        units.push_back({name, {name}});
      } else {
        block.tensors.push_back(name);
      }
    }
    const bool any = model.find_tensor(fmt::format("blk.{}.attn_q.weight", layer)) != nullptr;
    if (!block.tensors.empty()) units.push_back(std::move(block));
    if (!any) break;
  }
  for (const char* name : {"token_embd.weight", "output.weight"}) {
    const TensorView* t = model.find_tensor(name);
    if (t != nullptr && t->shape.size() == 2) units.push_back({name, {name}});
  }
  return units;
}

SensitivityResult measure_sensitivity(const io::ModelFile& model, const std::vector<SensitivityUnit>& units,
                                      const std::vector<FormatLevel>& levels,
                                      const std::vector<std::vector<text::TokenId>>& sequences,
                                      const SensitivityOptions& options, ThreadPool& pool) {
  if (options.reference_level >= levels.size()) {
    raise<InvalidArgument>("reference level {} is out of range; there are {} levels", options.reference_level,
                           levels.size());
  }
  int64_t all_tokens = 0;
  for (const auto& s : sequences) all_tokens += static_cast<int64_t>(s.size());
  if (all_tokens == 0) {
    raise<InvalidArgument>("{}: no calibration tokens to measure sensitivity on", model.path.string());
  }

  model::ModelWeights weights = model::load_weights(model, model::WeightConversion::F32);
  const int64_t context = weights.config.context_length;
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (context > 0 && static_cast<int64_t>(sequences[i].size()) > context) {
      raise<InvalidArgument>("calibration sequence {} has {} tokens; {} allows at most {}", i, sequences[i].size(),
                             model.path.string(), context);
    }
  }

  // The leading sequences whose base log-probabilities fit in max_base_bytes.
  const uint64_t bytes_per_token = static_cast<uint64_t>(weights.config.vocab_size) * sizeof(float);
  std::vector<std::vector<text::TokenId>> used;
  int64_t tokens = 0;
  for (const auto& s : sequences) {
    if (!used.empty() && static_cast<uint64_t>(tokens + static_cast<int64_t>(s.size())) * bytes_per_token >
                             options.max_base_bytes) {
      break;
    }
    used.push_back(s);
    tokens += static_cast<int64_t>(s.size());
  }
  if (used.size() < sequences.size()) {
    spdlog::warn("sensitivity: using {} of {} calibration sequences ({} of {} tokens), because the base "
                 "log-probabilities of more would exceed {} MiB",
                 used.size(), sequences.size(), tokens, all_tokens, options.max_base_bytes >> 20);
  }

  // The decoded source values of every unit tensor, which each level quantizes.
  struct Source {
    const float* values = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
  };
  std::map<std::string, Source> sources;
  for (const SensitivityUnit& unit : units) {
    for (const std::string& name : unit.tensors) {
      const std::vector<kernels::WeightMatrix*> bound = matrices_for(weights, name);
      if (bound.empty()) {
        raise<InvalidArgument>("{}: tensor {} of unit {} is not a weight matrix of the forward pass",
                               model.path.string(), name, unit.name);
      }
      const kernels::WeightMatrix& w = *bound.front();
      sources[name] = {reinterpret_cast<const float*>(w.data), w.rows, w.cols};
      for (const FormatLevel& level : levels) {
        const auto it = level.formats.find(name);
        if (it == level.formats.end() || it->second == nullptr) {
          raise<InvalidArgument>("level {} has no format for tensor {}", level.name, name);
        }
      }
    }
  }

  SensitivityRunner runner(weights, pool, used);
  spdlog::info("sensitivity: {} units, {} levels, {} sequences, {} tokens", units.size(), levels.size(),
               used.size(), tokens);
  runner.record_base();

  // Every unit at the reference level; these buffers stay bound except while one unit is
  // measured at another level.
  const FormatLevel& reference = levels[options.reference_level];
  std::map<std::string, std::vector<float>> reference_values;
  for (const auto& [name, source] : sources) {
    reference_values[name] =
        quantize_dequantize(name, *reference.formats.at(name), source.values, source.rows, source.cols, pool);
    bind_values(weights, name, reference_values[name]);
  }

  SensitivityResult result;
  result.sequences = static_cast<int64_t>(used.size());
  result.tokens = tokens;
  result.base_to_reference_kld = runner.mean_kld(-1, /*record=*/true);
  result.sensitivity.assign(units.size(), std::vector<double>(levels.size(), 0.0));

  Progress progress("sensitivity", static_cast<int64_t>(units.size()));
  const int64_t L = weights.config.n_layers;
  for (size_t u = 0; u < units.size(); ++u) {
    const SensitivityUnit& unit = units[u];
    const int64_t stage = first_changed_stage(unit, L, weights.config.tied_embeddings);
    for (size_t j = 0; j < levels.size(); ++j) {
      if (j == options.reference_level) continue;
      bool same_as_reference = true;
      for (const std::string& name : unit.tensors) {
        same_as_reference = same_as_reference && levels[j].formats.at(name) == reference.formats.at(name);
      }
      // Formats equal to the reference's (a row-length fallback, an override) change nothing.
      if (same_as_reference) continue;

      std::vector<std::vector<float>> level_values;
      level_values.reserve(unit.tensors.size());
      for (const std::string& name : unit.tensors) {
        const Source& source = sources.at(name);
        level_values.push_back(
            quantize_dequantize(name, *levels[j].formats.at(name), source.values, source.rows, source.cols, pool));
        bind_values(weights, name, level_values.back());
      }

      result.sensitivity[u][j] = runner.mean_kld(stage, /*record=*/false) - result.base_to_reference_kld;

      for (const std::string& name : unit.tensors) bind_values(weights, name, reference_values.at(name));
    }
    progress.update(static_cast<int64_t>(u) + 1, unit.name);
  }
  progress.finish();
  result.passes = runner.passes();
  return result;
}

}  // namespace stepdown::quant
