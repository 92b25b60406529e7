#include "stepdown/quant/block_calibration.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <sys/mman.h>
#include <unistd.h>

#include <cblas.h>
#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::quant {
namespace {

constexpr std::array<std::string_view, 7> kLinearNames = {"attn_q",   "attn_k", "attn_v", "attn_output",
                                                          "ffn_gate", "ffn_up", "ffn_down"};
constexpr std::array<std::string_view, 4> kInputNames = {"attn_norm", "attn_heads", "ffn_norm", "ffn_act"};

const kernels::WeightMatrix& matrix_of(const model::BlockWeights& b, Linear linear) {
  switch (linear) {
    case Linear::kAttnQ: return b.attn_q;
    case Linear::kAttnK: return b.attn_k;
    case Linear::kAttnV: return b.attn_v;
    case Linear::kAttnOutput: return b.attn_output;
    case Linear::kFfnGate: return b.ffn_gate;
    case Linear::kFfnUp: return b.ffn_up;
    case Linear::kFfnDown: return b.ffn_down;
  }
  return b.attn_q;
}

kernels::WeightMatrix& mutable_matrix_of(model::BlockWeights& b, Linear linear) {
  return const_cast<kernels::WeightMatrix&>(matrix_of(b, linear));
}

// Drops the pages of [data, data + bytes) from the resident set when they lie in one of
// the file's read-only mappings, which a later access reads back from the page cache.
// Bytes outside every mapping (a buffer the loader converted) are left alone, because
// MADV_DONTNEED would zero them.
void release_mapped_pages(const io::ModelFile& file, const std::byte* data, size_t bytes) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  for (const std::shared_ptr<MappedFile>& mapping : file.mappings) {
    if (data < mapping->data() || data + bytes > mapping->data() + mapping->size()) continue;
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
    const uintptr_t end = reinterpret_cast<uintptr_t>(data + bytes);
    if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) != 0) {
      spdlog::debug("{}: madvise(MADV_DONTNEED) failed; the mapped pages stay resident", mapping->path().string());
    }
    return;
  }
}

// Adds the rows of x (T, width) to the statistics of one input. X^T X goes to one
// partial sum per pool thread (stats.xtx and `xtx_parts`), each thread taking a share of
// x's rows, so the float64 products run on the pool's threads with OpenBLAS single-threaded.
// OpenBLAS's own threads would spin between calls for the cores the pool's forward passes use.
void accumulate(const model::Activations& x, const StatisticsRequest& request, InputStatistics& stats,
                std::vector<std::vector<double>>& xtx_parts, std::vector<std::vector<double>>& scratch,
                ThreadPool& pool) {
  const int64_t width = x.cols;
  stats.rows += x.rows;

  if (request.xtx) {
    // xtx (width, width) += X^T X in float64, upper triangle only (dsyrk); the parts are
    // added and mirrored once the batch is done.
    const int64_t parts = static_cast<int64_t>(xtx_parts.size()) + 1;
    scratch.resize(static_cast<size_t>(parts));
    pool.parallel_for(parts, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t r0 = x.rows * p / parts;
        const int64_t r1 = x.rows * (p + 1) / parts;
        if (r1 == r0) continue;
        std::vector<double>& rows = scratch[static_cast<size_t>(p)];
        rows.assign(x.row(r0), x.row(r0) + (r1 - r0) * width);
        double* sum = p == 0 ? stats.xtx.data() : xtx_parts[static_cast<size_t>(p - 1)].data();
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(width), static_cast<int>(r1 - r0), 1.0,
                    rows.data(), static_cast<int>(width), 1.0, sum, static_cast<int>(width));
      }
    });
  }

  for (int64_t t = 0; t < x.rows; ++t) {
    const float* row = x.row(t);
    for (int64_t c = 0; c < width; ++c) {
      const double v = row[c];
      if (request.abs_mean) stats.abs_mean[static_cast<size_t>(c)] += std::abs(v);
      if (request.square_mean) stats.square_mean[static_cast<size_t>(c)] += v * v;
      if (request.abs_max) {
        float& m = stats.abs_max[static_cast<size_t>(c)];
        m = std::max(m, std::abs(row[c]));
      }
    }
  }
}

// Turns the sums of accumulate() into the documented statistics.
void finish_statistics(InputStatistics& stats, const std::vector<std::vector<double>>& xtx_parts) {
  const int64_t n = stats.width;
  for (const std::vector<double>& part : xtx_parts) {
    if (stats.xtx.empty()) break;
    for (size_t i = 0; i < part.size(); ++i) stats.xtx[i] += part[i];
  }
  for (int64_t i = 0; i < n && !stats.xtx.empty(); ++i) {
    for (int64_t j = i + 1; j < n; ++j) stats.xtx[static_cast<size_t>(j * n + i)] = stats.xtx[static_cast<size_t>(i * n + j)];
  }
  const double rows = static_cast<double>(std::max<int64_t>(stats.rows, 1));
  for (double& v : stats.abs_mean) v /= rows;
  for (double& v : stats.square_mean) v /= rows;
}

int64_t input_width(const model::ModelConfig& c, LinearInput input) {
  switch (input) {
    case LinearInput::kAttnNorm: return c.dim;
    case LinearInput::kAttnHeads: return c.q_dim();
    case LinearInput::kFfnNorm: return c.dim;
    case LinearInput::kFfnAct: return c.ffn_dim;
  }
  return c.dim;
}

}  // namespace

std::string_view linear_name(Linear linear) { return kLinearNames[static_cast<size_t>(linear)]; }

std::string linear_tensor_name(int64_t layer, Linear linear) {
  return fmt::format("blk.{}.{}.weight", layer, linear_name(linear));
}

std::optional<std::pair<int64_t, Linear>> parse_linear_tensor_name(std::string_view name) {
  if (!name.starts_with("blk.") || !name.ends_with(".weight")) return std::nullopt;
  const std::string_view rest = name.substr(4, name.size() - 4 - 7);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  int64_t layer = 0;
  for (const char c : rest.substr(0, dot)) {
    if (c < '0' || c > '9') return std::nullopt;
    layer = layer * 10 + (c - '0');
  }
  const std::string_view linear = rest.substr(dot + 1);
  for (size_t i = 0; i < kLinearNames.size(); ++i) {
    if (kLinearNames[i] == linear) return std::pair{layer, kLinears[i]};
  }
  return std::nullopt;
}

LinearInput linear_input(Linear linear) {
  switch (linear) {
    case Linear::kAttnQ:
    case Linear::kAttnK:
    case Linear::kAttnV: return LinearInput::kAttnNorm;
    case Linear::kAttnOutput: return LinearInput::kAttnHeads;
    case Linear::kFfnGate:
    case Linear::kFfnUp: return LinearInput::kFfnNorm;
    case Linear::kFfnDown: return LinearInput::kFfnAct;
  }
  return LinearInput::kAttnNorm;
}

std::string_view input_name(LinearInput input) { return kInputNames[static_cast<size_t>(input)]; }

void BlockMethod::process_block(BlockContext&) {
  throw std::logic_error("BlockMethod::process_block: a method in the parallel order must override it");
}

void BlockMethod::process_linears(BlockContext&, LinearInput) {
  throw std::logic_error("BlockMethod::process_linears: a method in the sequential order must override it");
}

// BlockContext

const model::ModelConfig& BlockContext::config() const { return driver_.weights_.config; }
int64_t BlockContext::samples() const { return driver_.data_.samples; }
int64_t BlockContext::seq_len() const { return driver_.data_.seq_len; }
const model::Activations& BlockContext::inputs() const { return driver_.x_; }
ThreadPool& BlockContext::pool() { return driver_.pool_; }
model::BlockWeights& BlockContext::block() { return driver_.weights_.blocks.at(static_cast<size_t>(layer_)); }

const InputStatistics& BlockContext::statistics(LinearInput input) const {
  const std::optional<InputStatistics>& stats = driver_.statistics_[static_cast<size_t>(input)];
  if (!stats) {
    raise<InvalidArgument>("block {}: no statistics were collected at '{}'; request them in BlockMethod::statistics",
                           layer_, input_name(input));
  }
  return *stats;
}

std::span<float> BlockContext::weights(Linear linear) {
  return driver_.owned_f32(matrix_of(block(), linear), linear_tensor_name(layer_, linear));
}

int64_t BlockContext::rows(Linear linear) const {
  return matrix_of(driver_.weights_.blocks.at(static_cast<size_t>(layer_)), linear).rows;
}

int64_t BlockContext::cols(Linear linear) const {
  return matrix_of(driver_.weights_.blocks.at(static_cast<size_t>(layer_)), linear).cols;
}

void BlockContext::forward(int64_t first, int64_t count, model::Activations& out, const model::BlockObserver& observer) {
  if (first < 0 || count <= 0 || first + count > samples()) {
    raise<InvalidArgument>("BlockContext::forward: sequences [{}, {}) are outside [0, {})", first, first + count,
                           samples());
  }
  const int64_t L = seq_len();
  const int64_t D = config().dim;
  out.resize(count * L, D);
  model::Activations y;
  if (observer) {
    driver_.transformer_.set_observer([&](int64_t layer, std::string_view name, const model::Activations& x) {
      if (layer == layer_) observer(layer, name, x);
    });
  }
  for (int64_t s = 0; s < count; ++s) {
    driver_.run_sequence(layer_, first + s, y);
    std::copy(y.data.begin(), y.data.end(), out.data.begin() + s * L * D);
  }
  driver_.transformer_.set_observer({});
}

// BlockCalibrator

BlockCalibrator::BlockCalibrator(model::ModelWeights& weights, const CalibrationData& data, ThreadPool& pool)
    : weights_(weights),
      data_(data),
      pool_(pool),
      transformer_(weights, pool),
      cache_(weights.config, std::max<int64_t>(data.seq_len, 1)) {
  if (data.samples <= 0 || data.seq_len <= 0 ||
      static_cast<int64_t>(data.tokens.size()) != data.samples * data.seq_len) {
    raise<InvalidArgument>("calibration data has {} tokens for {} sequences of {}; expected samples * seq_len",
                           data.tokens.size(), data.samples, data.seq_len);
  }
  const int64_t context = weights.config.context_length;
  if (context > 0 && data.seq_len > context) {
    raise<InvalidArgument>("calibration sequences have {} tokens but the model's context is {}; lower --calib-seq-len",
                           data.seq_len, context);
  }
  for (int64_t layer = 0; layer < weights.config.n_layers; ++layer) {
    for (const Linear linear : kLinears) {
      owned_f32(matrix_of(weights.blocks[static_cast<size_t>(layer)], linear), linear_tensor_name(layer, linear));
    }
  }
  positions_.resize(static_cast<size_t>(data.seq_len));
  for (int64_t t = 0; t < data.seq_len; ++t) positions_[static_cast<size_t>(t)] = static_cast<int32_t>(t);
}

std::span<float> BlockCalibrator::owned_f32(const kernels::WeightMatrix& w, std::string_view tensor_name) {
  const bool packed = w.dtype == DType::F32 && w.row_stride == static_cast<size_t>(w.cols) * sizeof(float);
  const size_t bytes = w.row_stride * static_cast<size_t>(w.rows);
  const bool owned = std::any_of(weights_.owned_buffers.begin(), weights_.owned_buffers.end(), [&](const auto& b) {
    return w.data >= b->data() && w.data + bytes <= b->data() + b->size();
  });
  if (!packed || !owned) {
    raise<InvalidArgument>("{}: block calibration needs f32 weights the model owns, found {} {}; load the model with "
                           "WeightConversion::F32",
                           tensor_name, dtype_name(w.dtype), owned ? "rows" : "memory-mapped rows");
  }
  // The buffer is a std::vector<std::byte> the weights own, so writing through it is safe.
  return {reinterpret_cast<float*>(const_cast<std::byte*>(w.data)), static_cast<size_t>(w.rows * w.cols)};
}

void BlockCalibrator::embed_batch() {
  const int64_t L = data_.seq_len;
  const int64_t D = weights_.config.dim;
  x_.resize(data_.samples * L, D);
  model::Activations y;
  for (int64_t s = 0; s < data_.samples; ++s) {
    transformer_.embed(data_.sequence(s), y);
    std::copy(y.data.begin(), y.data.end(), x_.data.begin() + s * L * D);
  }
}

void BlockCalibrator::run_sequence(int64_t layer, int64_t s, model::Activations& out) {
  const int64_t L = data_.seq_len;
  const int64_t D = weights_.config.dim;
  out.resize(L, D);
  std::copy(x_.data.begin() + s * L * D, x_.data.begin() + (s + 1) * L * D, out.data.begin());
  transformer_.forward_block(layer, out, positions_, cache_);
}

bool BlockCalibrator::begin_statistics(int64_t layer, const BlockMethod& method, LinearInput input) {
  const size_t i = static_cast<size_t>(input);
  requests_[i] = method.statistics(layer, input);
  statistics_[i].reset();
  if (!requests_[i].any()) return false;
  InputStatistics stats;
  stats.width = input_width(weights_.config, input);
  const size_t w = static_cast<size_t>(stats.width);
  xtx_parts_[i].clear();
  if (requests_[i].xtx) {
    stats.xtx.assign(w * w, 0.0);
    xtx_parts_[i].assign(static_cast<size_t>(pool_.size() - 1), std::vector<double>(w * w, 0.0));
  }
  if (requests_[i].abs_mean) stats.abs_mean.assign(w, 0.0);
  if (requests_[i].abs_max) stats.abs_max.assign(w, 0.0f);
  if (requests_[i].square_mean) stats.square_mean.assign(w, 0.0);
  statistics_[i] = std::move(stats);
  return true;
}

void BlockCalibrator::accumulate_input(LinearInput input, const model::Activations& x) {
  const size_t i = static_cast<size_t>(input);
  if (statistics_[i]) accumulate(x, requests_[i], *statistics_[i], xtx_parts_[i], scratch_, pool_);
}

void BlockCalibrator::finish_all_statistics() {
  for (size_t i = 0; i < statistics_.size(); ++i) {
    if (statistics_[i]) finish_statistics(*statistics_[i], xtx_parts_[i]);
    xtx_parts_[i].clear();
  }
}

void BlockCalibrator::collect(int64_t layer, const BlockMethod& method) {
  bool any = false;
  for (const LinearInput input : kLinearInputs) any = begin_statistics(layer, method, input) || any;
  if (!any) return;

  transformer_.set_observer([&](int64_t observed_layer, std::string_view name, const model::Activations& x) {
    if (observed_layer != layer) return;
    for (const LinearInput input : kLinearInputs) {
      if (name == kInputNames[static_cast<size_t>(input)]) accumulate_input(input, x);
    }
  });
  model::Activations y;
  for (int64_t s = 0; s < data_.samples; ++s) run_sequence(layer, s, y);
  transformer_.set_observer({});
  finish_all_statistics();
}

void BlockCalibrator::copy_sequence(const model::Activations& batch, int64_t s, model::Activations& seq) const {
  const int64_t L = data_.seq_len;
  seq.resize(L, batch.cols);
  const auto first = batch.data.begin() + s * L * batch.cols;
  std::copy(first, first + L * batch.cols, seq.data.begin());
}

void BlockCalibrator::store_sequence(const model::Activations& seq, int64_t s, model::Activations& batch) const {
  std::copy(seq.data.begin(), seq.data.end(), batch.data.begin() + s * data_.seq_len * batch.cols);
}

void BlockCalibrator::run_sequential(int64_t layer, BlockMethod& method, Progress& progress) {
  const int64_t N = data_.samples;
  BlockContext context(*this, layer);
  model::Activations x;      // (L, D) one sequence of X
  model::Activations xnorm;  // (L, D)
  model::Activations heads;  // (L, Q)
  model::Activations act;    // (L, F)
  const auto step = [&](LinearInput input) {
    finish_all_statistics();
    progress.update(layer, fmt::format("block {} quantize {}", layer, input_name(input)));
    method.process_linears(context, input);
    statistics_[static_cast<size_t>(input)].reset();
  };

  // q, k and v read attn_norm(X).
  begin_statistics(layer, method, LinearInput::kAttnNorm);
  for (int64_t s = 0; s < N; ++s) {
    copy_sequence(x_, s, x);
    transformer_.attention_norm(layer, x, xnorm);
    accumulate_input(LinearInput::kAttnNorm, xnorm);
  }
  step(LinearInput::kAttnNorm);

  // o reads the attention heads computed with q, k and v quantized, kept for the next step.
  model::Activations batch_heads;  // (N * L, Q)
  batch_heads.resize(N * data_.seq_len, weights_.config.q_dim());
  begin_statistics(layer, method, LinearInput::kAttnHeads);
  for (int64_t s = 0; s < N; ++s) {
    copy_sequence(x_, s, x);
    transformer_.attention_norm(layer, x, xnorm);
    transformer_.attention_heads(layer, xnorm, positions_, cache_, heads);
    accumulate_input(LinearInput::kAttnHeads, heads);
    store_sequence(heads, s, batch_heads);
  }
  step(LinearInput::kAttnHeads);

  // gate and up read ffn_norm(X + o(heads)) with o quantized; X takes that sum in place.
  begin_statistics(layer, method, LinearInput::kFfnNorm);
  for (int64_t s = 0; s < N; ++s) {
    copy_sequence(x_, s, x);
    copy_sequence(batch_heads, s, heads);
    transformer_.add_attention_output(layer, heads, x);
    store_sequence(x, s, x_);
    transformer_.ffn_norm(layer, x, xnorm);
    accumulate_input(LinearInput::kFfnNorm, xnorm);
  }
  batch_heads = model::Activations();
  step(LinearInput::kFfnNorm);

  // down reads the activation of gate and up quantized.
  begin_statistics(layer, method, LinearInput::kFfnAct);
  for (int64_t s = 0; s < N; ++s) {
    copy_sequence(x_, s, x);
    transformer_.ffn_norm(layer, x, xnorm);
    transformer_.ffn_activation(layer, xnorm, act);
    accumulate_input(LinearInput::kFfnAct, act);
  }
  step(LinearInput::kFfnAct);

  // The next block's inputs: X + down(act), the activation computed again.
  if (layer + 1 == weights_.config.n_layers) return;
  progress.update(layer, fmt::format("block {} propagate", layer));
  for (int64_t s = 0; s < N; ++s) {
    copy_sequence(x_, s, x);
    transformer_.ffn_norm(layer, x, xnorm);
    transformer_.ffn_activation(layer, xnorm, act);
    transformer_.add_ffn_output(layer, act, x);
    store_sequence(x, s, x_);
  }
}

void BlockCalibrator::propagate(int64_t layer) {
  const int64_t L = data_.seq_len;
  const int64_t D = weights_.config.dim;
  model::Activations y;
  for (int64_t s = 0; s < data_.samples; ++s) {
    run_sequence(layer, s, y);
    std::copy(y.data.begin(), y.data.end(), x_.data.begin() + s * L * D);
  }
}

void BlockCalibrator::run(BlockMethod& method) {
  embed_batch();
  const int64_t n_layers = weights_.config.n_layers;
  Progress progress("calibrate", n_layers);
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    if (method.order() == CalibrationOrder::kSequential) {
      run_sequential(layer, method, progress);
      progress.update(layer + 1, fmt::format("block {} done", layer));
      continue;
    }

    progress.update(layer, fmt::format("block {} collect", layer));
    collect(layer, method);

    progress.update(layer, fmt::format("block {} quantize", layer));
    BlockContext context(*this, layer);
    method.process_block(context);
    for (std::optional<InputStatistics>& stats : statistics_) stats.reset();

    progress.update(layer, fmt::format("block {} propagate", layer));
    if (layer + 1 < n_layers) propagate(layer);
    progress.update(layer + 1, fmt::format("block {} done", layer));
  }
  progress.finish();
}

model::ModelWeights load_calibration_weights(const io::ModelFile& file) {
  // Bound in place, then each block matrix decoded to an owned f32 buffer and its source
  // pages dropped at once, so the source and the f32 copy are never both resident. The
  // embedding stays in the file: calibration only looks up its rows.
  model::ModelWeights weights = model::load_weights(file, model::WeightConversion::NONE);
  for (model::BlockWeights& block : weights.blocks) {
    for (const Linear linear : kLinears) {
      kernels::WeightMatrix& w = mutable_matrix_of(block, linear);
      auto buffer = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(w.rows * w.cols) * sizeof(float));
      auto* out = reinterpret_cast<float*>(buffer->data());
      for (int64_t r = 0; r < w.rows; ++r) {
        kernels::dequantize_row(w.dtype, w.data + static_cast<size_t>(r) * w.row_stride, out + r * w.cols, w.cols);
      }
      release_mapped_pages(file, w.data, w.row_stride * static_cast<size_t>(w.rows));
      weights.owned_buffers.push_back(buffer);
      w = kernels::WeightMatrix{DType::F32, buffer->data(), w.rows, w.cols, static_cast<size_t>(w.cols) * sizeof(float)};
    }
  }
  return weights;
}

void run_block_calibration(model::ModelWeights& weights, const CalibrationData& data, BlockMethod& method,
                           ThreadPool& pool) {
  // OpenBLAS runs single-threaded: X^T X is split across the pool's threads (accumulate),
  // and GPTQ's factorizations and updates take well under a second per block. OpenBLAS's
  // own threads spin between calls, which took a fifth of the CPU time from the forward
  // passes when X^T X ran on them.
  openblas_set_num_threads(1);
  BlockCalibrator driver(weights, data, pool);
  driver.run(method);
}

}  // namespace stepdown::quant
