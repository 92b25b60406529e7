#pragma once
// The forward pass of a decoder-only transformer (Llama 2/3, Mistral, SmolLM2, Qwen2,
// Qwen3, Gemma 3), one function per step so callers can run it block by block.
// Calibration feeds a batch through one block at a time, and an observer can dump every
// named intermediate.
//
// Shape legend: T tokens in the batch, D dim, Q n_heads * head_dim, K n_kv_heads *
// head_dim, F ffn_dim, V vocab_size. Prefill runs T tokens at once through
// kernels::matmul; decode (T = 1) uses kernels::matvec. Compute is f32 throughout.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string_view>

#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/model/activations.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/rope.h"
#include "stepdown/model/weights.h"

namespace stepdown::model {

using TokenId = int32_t;

// Called with each named intermediate of a block ("attn_norm", "q", "k", "v", "q_rope",
// "k_rope", "attn_heads", "attn_out", "ffn_inp", "ffn_norm", "ffn_gate", "ffn_up",
// "ffn_act", "ffn_out", "block_out"), each (T, width), and with layer -1 for "embd",
// "output_norm" and "logits".
using BlockObserver = std::function<void(int64_t layer, std::string_view name, const Activations& x)>;

class Transformer {
 public:
  // `weights` and `pool` must outlive the transformer.
  Transformer(const ModelWeights& weights, ThreadPool& pool);

  const ModelConfig& config() const { return weights_.config; }
  const ModelWeights& weights() const { return weights_; }
  ThreadPool& pool() { return pool_; }
  void set_observer(BlockObserver observer) { observer_ = std::move(observer); }
  // Precision of the activations in every projection; kF32 (exact) unless set. kInt8
  // speeds up Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 weights and changes their rounding (see
  // kernels::ActivationPrecision).
  void set_activation_precision(kernels::ActivationPrecision precision) { activation_precision_ = precision; }

  // X (T, D) = rows of token_embd for `tokens`. Throws InvalidArgument for an id outside
  // [0, V).
  void embed(std::span<const TokenId> tokens, Activations& x);

  // X (T, D) -> X (T, D) in place through block `layer`, for tokens at `positions` (T).
  // Writes their keys and values into `cache` at those positions, then attends causally
  // over cache positions [0, position] of each token. Positions must be below
  // cache.capacity(); the caller advances cache.length().
  void forward_block(int64_t layer, Activations& x, std::span<const int32_t> positions, KVCache& cache);

  // The steps of forward_block, for callers that take a batch through one block a step at
  // a time (block calibration in GPTQ's true sequential order). forward_block is
  //   attention_norm(x, xnorm); attention_heads(xnorm, heads); add_attention_output(heads, x);
  //   ffn_norm(x, xnorm); ffn_activation(xnorm, act); add_ffn_output(act, x);
  // and each step observes what forward_block observes in it. Outputs are resized; an
  // output must not be an input of the same call.
  // xnorm (T, D) = RMSNorm(X (T, D)) * attn_norm.
  void attention_norm(int64_t layer, const Activations& x, Activations& xnorm);
  // heads (T, Q) = attention over `cache` of q, k, v projected from xnorm (T, D); writes
  // the keys and values at `positions` into the cache first, as forward_block does.
  void attention_heads(int64_t layer, const Activations& xnorm, std::span<const int32_t> positions, KVCache& cache,
                       Activations& heads);
  // X (T, D) += heads (T, Q) @ W_o^T.
  void add_attention_output(int64_t layer, const Activations& heads, Activations& x);
  // xnorm (T, D) = RMSNorm(X (T, D)) * ffn_norm.
  void ffn_norm(int64_t layer, const Activations& x, Activations& xnorm);
  // act (T, F) = silu(xnorm @ W_gate^T) * (xnorm @ W_up^T), or gelu for GeGLU models.
  void ffn_activation(int64_t layer, const Activations& xnorm, Activations& act);
  // X (T, D) += act (T, F) @ W_down^T.
  void add_ffn_output(int64_t layer, const Activations& act, Activations& x);

  // logits (R, V) = output (V, D) @ RMSNorm(X) for the last row of X only (R = 1), or for
  // every row (R = T).
  void compute_logits(const Activations& x, Activations& logits, bool all_rows);

  // The whole model for `tokens` at positions cache.length() onward: embed, every block,
  // logits. Advances cache.length() by T. Throws InvalidArgument when the tokens do not fit
  // in the cache.
  void forward(std::span<const TokenId> tokens, KVCache& cache, Activations& logits, bool all_logits = false);

  // One decode step for B independent sequences: tokens[b] goes to caches[b] at position
  // caches[b]->length(), and logits (B, V) row b is its next-token logits. Every weight
  // matrix is read once for all B tokens (kernels::matmul); attention reads each row's own
  // cache. Advances every cache by one. Row b equals what forward() gives for that
  // sequence alone up to summation order. Throws InvalidArgument when the sizes differ or
  // a cache is full.
  void forward_batch(std::span<const TokenId> tokens, std::span<KVCache* const> caches, Activations& logits);

 private:
  void observe(int64_t layer, std::string_view name, const Activations& x) const {
    if (observer_) observer_(layer, name, x);
  }
  // Y (T, rows) = X (T, cols) @ W^T, by matvec when T = 1.
  void project(const kernels::WeightMatrix& w, const Activations& x, Activations& y);
  // Y_i (T, rows_i) = X (T, cols) @ W_i^T for up to kMaxProjectionGroup matrices that read
  // the same X (q, k, v; gate, up), in one pass over the thread pool. Each Y_i equals what
  // project gives.
  struct Projection {
    const kernels::WeightMatrix* w;
    Activations* y;
  };
  static constexpr size_t kMaxProjectionGroup = 3;
  void project_group(std::initializer_list<Projection> projections, const Activations& x);
  // forward_block with row t's keys and values in caches[t] (T caches).
  void forward_block_rows(int64_t layer, Activations& x, std::span<const int32_t> positions,
                          std::span<KVCache* const> caches);
  // attention_heads with row t's keys and values in caches[t].
  void attention_heads_rows(int64_t layer, const Activations& xnorm, std::span<const int32_t> positions,
                            std::span<KVCache* const> caches, Activations& heads);
  // out (T, Q) from q (T, Q) and the cached keys and values of block `layer`, row t's in
  // caches[t].
  void attend(int64_t layer, const Activations& q, std::span<const int32_t> positions,
              std::span<KVCache* const> caches, Activations& out);
  // Throws InvalidArgument unless X is (T, width) with T positions inside their caches.
  void check_block_input(const Activations& x, int64_t width, std::span<const int32_t> positions,
                         std::span<KVCache* const> caches) const;

  const ModelWeights& weights_;
  ThreadPool& pool_;
  Rope rope_;          // global layers
  Rope rope_sliding_;  // sliding-window layers (Gemma 3 gives them their own base)
  BlockObserver observer_;
  kernels::ActivationPrecision activation_precision_ = kernels::ActivationPrecision::kF32;

  // Scratch reused across calls so decode allocates nothing after the first token.
  Activations x_;      // (T, D)
  Activations xnorm_;  // (T, D)
  Activations q_;      // (T, Q)
  Activations k_;      // (T, K)
  Activations v_;      // (T, K)
  Activations attn_;   // (T, Q)
  Activations proj_;   // (T, D)
  Activations gate_;   // (T, F)
  Activations up_;     // (T, F)
  std::vector<int32_t> positions_;
  std::vector<KVCache*> row_caches_;  // (T) the cache of each row
};

}  // namespace stepdown::model
