#pragma once
// Block-by-block calibration: the driver that GPTQ, AWQ, SmoothQuant and sensitivity
// methods share. It holds the model in f32 and the calibration batch's activations at one
// block boundary, never every block's.
//
// For each block i, in order:
//   1. Collect: run block i over the batch (blocks before i already quantized) and
//      accumulate the statistics the method asks for at each linear's input.
//   2. Process: call BlockMethod::process_block. The method reads the statistics, may run
//      block i again on any of the batch's sequences with candidate weights
//      (BlockContext::forward, with an observer for sub-steps), and leaves the
//      quantized-dequantized weights of block i (and any rewritten norm weights) in
//      BlockContext::weights() / block().
//   3. Propagate: run block i with those weights to give block i+1's inputs (skipped
//      after the last block).
//
// Peak memory: the f32 weights, the batch's block inputs X (N * L, D), one KV cache of L
// positions, one Hessian per input where the method requests one (width^2 doubles, times
// the pool's threads while it is summed), and one sequence's intermediates.
//
// How a scale search plugs in (awq_method.cpp): statistics() requests abs_mean.
// process_block computes the float output of the block on a subset of sequences with
// forward(), capturing the linears' inputs through the observer. For each candidate scaling
// s of a group (q/k/v, gate/up, ...), it writes Q(W diag(s)) diag(1/s) into weights(), runs
// forward() on the same sequences and compares the outputs, and keeps the best s. It then
// folds 1/s into the norms in block() and leaves the dequantized, scaled weights in
// weights(). GPTQ asks for the Hessian and writes its dequantized result into weights().
//
// Linears read these inputs: q, k, v read "attn_norm"; o reads "attn_heads"; gate and
// up read "ffn_norm"; down reads "ffn_act" (the names of model::BlockObserver).
//
// That is the parallel order: every linear of block i is calibrated on inputs computed
// with block i's float weights, so o and down never see the error of q/k/v and gate/up.
// A method whose order() is kSequential gets GPTQ's "true sequential" order instead. The
// driver takes the batch through block i one step at a time and, at each input in forward
// order, collects that input's statistics with every linear before it already quantized,
// then calls process_linears for the linears that read it:
//   attn_norm -> q, k, v;  attn_heads -> o;  ffn_norm -> gate, up;  ffn_act -> down.
// Each linear is computed once per token, except gate and up, which run a second time to
// give down's quantized output to the next block.
// NOTE: storing act (N * L, F) instead would save that second gate/up pass, a third of a
// block's multiply-adds. It would cost N * L * F floats, 400 MB for SmolLM2 at 128 x 512,
// which would put peak RSS above 2x the f32 weights.
// The sequential order holds the attention heads (N * L, Q) of the batch while o is
// calibrated, besides X.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/core/progress.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/model/activations.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/calibration_data.h"

namespace stepdown::quant {

// The weight matrices of a block, in forward order.
enum class Linear { kAttnQ, kAttnK, kAttnV, kAttnOutput, kFfnGate, kFfnUp, kFfnDown };
inline constexpr std::array<Linear, 7> kLinears = {Linear::kAttnQ,    Linear::kAttnK,   Linear::kAttnV,
                                                   Linear::kAttnOutput, Linear::kFfnGate, Linear::kFfnUp,
                                                   Linear::kFfnDown};

// The activations the linears read, named as model::BlockObserver names them.
enum class LinearInput { kAttnNorm, kAttnHeads, kFfnNorm, kFfnAct };
inline constexpr std::array<LinearInput, 4> kLinearInputs = {LinearInput::kAttnNorm, LinearInput::kAttnHeads,
                                                             LinearInput::kFfnNorm, LinearInput::kFfnAct};

// "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down".
std::string_view linear_name(Linear linear);
// GGUF tensor name, "blk.3.attn_q.weight".
std::string linear_tensor_name(int64_t layer, Linear linear);
// The linear whose GGUF tensor name is `name`, with its block, or nullopt.
std::optional<std::pair<int64_t, Linear>> parse_linear_tensor_name(std::string_view name);
LinearInput linear_input(Linear linear);
// "attn_norm", "attn_heads", "ffn_norm", "ffn_act".
std::string_view input_name(LinearInput input);

// Statistics a method requests the collect pass to accumulate at one input.
struct StatisticsRequest {
  bool xtx = false;          // sum over tokens of x x^T, (width, width) in float64
  bool abs_mean = false;     // mean over tokens of |x_c| per channel (AWQ)
  bool abs_max = false;      // max over tokens of |x_c| per channel (SmoothQuant, outliers)
  bool square_mean = false;  // mean over tokens of x_c^2 per channel (Wanda-style norms)

  bool any() const { return xtx || abs_mean || abs_max || square_mean; }
};

// Statistics of one input over every token of the batch; vectors the method did not ask
// for are empty.
struct InputStatistics {
  int64_t width = 0;
  int64_t rows = 0;                // tokens seen: samples * seq_len
  std::vector<double> xtx;         // (width, width) symmetric; GPTQ's H = 2 xtx / rows
  std::vector<double> abs_mean;    // (width)
  std::vector<float> abs_max;      // (width)
  std::vector<double> square_mean; // (width)
};

class BlockCalibrator;

// The driver's view of one block, handed to BlockMethod::process_block.
class BlockContext {
 public:
  int64_t layer() const { return layer_; }
  const model::ModelConfig& config() const;
  int64_t samples() const;
  int64_t seq_len() const;

  // Statistics of `input`; throws InvalidArgument when the method asked for none there.
  const InputStatistics& statistics(LinearInput input) const;

  // X (samples * seq_len, D): the block's inputs with every earlier block quantized.
  // Sequence s is rows [s * seq_len, (s + 1) * seq_len).
  const model::Activations& inputs() const;

  // W (rows, cols) f32 of `linear` in this block, writable in place; forward() and the
  // propagate pass use what is there.
  std::span<float> weights(Linear linear);
  int64_t rows(Linear linear) const;
  int64_t cols(Linear linear) const;
  // The block's weights, for norms a method rewrites (attn_norm, ffn_norm). Matrices must
  // be changed through weights(), because their data points at f32 buffers the model owns.
  model::BlockWeights& block();

  // Y (count * seq_len, D) = block(X rows of sequences [first, first + count)) with the
  // current weights; `observer`, when set, sees every named intermediate of each
  // sequence ((seq_len, width) at a time). Throws InvalidArgument for a range outside
  // [0, samples).
  void forward(int64_t first, int64_t count, model::Activations& out, const model::BlockObserver& observer = {});

  ThreadPool& pool();

 private:
  friend class BlockCalibrator;
  BlockContext(BlockCalibrator& driver, int64_t layer) : driver_(driver), layer_(layer) {}
  BlockCalibrator& driver_;
  int64_t layer_;
};

enum class CalibrationOrder { kParallel, kSequential };

// The interface a calibrated method implements for the driver.
class BlockMethod {
 public:
  virtual ~BlockMethod() = default;
  virtual CalibrationOrder order() const { return CalibrationOrder::kParallel; }
  // Statistics to collect at `input` of block `layer`. In the parallel order, returning
  // none for every input skips the collect pass of that block.
  virtual StatisticsRequest statistics(int64_t layer, LinearInput input) const = 0;
  // Parallel order: quantizes block `block.layer()`, leaving the dequantized weights in
  // block.weights(). The default throws std::logic_error.
  virtual void process_block(BlockContext& block);
  // Sequential order: quantizes the linears of block `block.layer()` that read `input`,
  // leaving their dequantized weights in block.weights(). Only `input`'s statistics are
  // available. The default throws std::logic_error.
  virtual void process_linears(BlockContext& block, LinearInput input);
};

// Loads the weights of `file` for run_block_calibration: block matrices in owned f32, the
// rest (embedding, output) memory-mapped as stored. The mapped pages of each block matrix
// are dropped from the resident set once it is decoded. They stay in the page cache unless
// memory runs short, so a later read (the GGUF writer) rarely goes to disk, and peak RSS
// has one copy of the block weights instead of two when the source is f32.
model::ModelWeights load_calibration_weights(const io::ModelFile& file);

// Runs every block in the method's order, showing progress per block. Sets OpenBLAS to
// one thread (X^T X runs on the pool's threads instead).
// Block matrices of `weights` must be owned f32 (load_calibration_weights, or
// model::load_weights(file, WeightConversion::F32)); they hold the methods' dequantized
// weights afterwards. Throws InvalidArgument when
// a block matrix is not f32 and owned, or when a calibration token is outside the vocab.
void run_block_calibration(model::ModelWeights& weights, const CalibrationData& data, BlockMethod& method,
                           ThreadPool& pool);

// The driver's state; BlockContext forwards to it. Use run_block_calibration.
class BlockCalibrator {
 public:
  BlockCalibrator(model::ModelWeights& weights, const CalibrationData& data, ThreadPool& pool);
  void run(BlockMethod& method);

 private:
  friend class BlockContext;
  void embed_batch();
  void collect(int64_t layer, const BlockMethod& method);
  void propagate(int64_t layer);
  // One block in the sequential order, from collecting attn_norm to propagating.
  void run_sequential(int64_t layer, BlockMethod& method, Progress& progress);
  // Allocates the statistics `method` requests at `input` of `layer` (none when it
  // requests nothing there). Returns whether it requests any.
  bool begin_statistics(int64_t layer, const BlockMethod& method, LinearInput input);
  // Adds x (T, width) to the statistics of `input`, when any are requested.
  void accumulate_input(LinearInput input, const model::Activations& x);
  void finish_all_statistics();
  // seq (L, width) = rows of sequence s in `batch` (N * L, width), and back.
  void copy_sequence(const model::Activations& batch, int64_t s, model::Activations& seq) const;
  void store_sequence(const model::Activations& seq, int64_t s, model::Activations& batch) const;
  // Runs block `layer` on sequence s of x_ into `out` (seq_len, D).
  void run_sequence(int64_t layer, int64_t s, model::Activations& out);
  std::span<float> owned_f32(const kernels::WeightMatrix& w, std::string_view tensor_name);

  model::ModelWeights& weights_;
  const CalibrationData& data_;
  ThreadPool& pool_;
  model::Transformer transformer_;
  model::KVCache cache_;
  std::vector<int32_t> positions_;  // 0 .. seq_len - 1
  model::Activations x_;            // (samples * seq_len, D) block inputs
  std::array<std::optional<InputStatistics>, 4> statistics_;  // per LinearInput
  std::array<StatisticsRequest, 4> requests_;                 // per LinearInput
  // Per LinearInput, X^T X partial sums of pool threads 1 .. P-1 (thread 0 adds into
  // InputStatistics::xtx), each (width, width) float64, and each thread's float64 copy of its rows.
  std::array<std::vector<std::vector<double>>, 4> xtx_parts_;
  std::vector<std::vector<double>> scratch_;
};

}  // namespace stepdown::quant
