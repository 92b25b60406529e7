#include "stepdown/model/transformer.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/model/layer_ops.h"

namespace stepdown::model {

namespace {

// Multiply-adds (keys times head_dim) below which a chunk of attention tasks is not worth
// handing to another thread.
constexpr int64_t kMinAttentionTaskMacs = 1 << 15;

// x (T, n) += b (n) on every row; no-op when b is empty.
void add_bias(Activations& x, const std::vector<float>& b) {
  if (b.empty()) return;
  for (int64_t t = 0; t < x.rows; ++t) {
    float* row = x.row(t);
    for (int64_t i = 0; i < x.cols; ++i) row[i] += b[static_cast<size_t>(i)];
  }
}

// RMSNorm over every row of x (T, n) with weight (n) into y (T, n).
void rms_norm_rows(const Activations& x, const std::vector<float>& weight, Activations& y, float eps) {
  y.resize(x.rows, x.cols);
  for (int64_t t = 0; t < x.rows; ++t) rms_norm(x.row(t), weight.data(), y.row(t), x.cols, eps);
}

// RMSNorm over each head of x (T, n_heads * head_dim) in place, with weight (head_dim).
void rms_norm_heads(Activations& x, const std::vector<float>& weight, int64_t head_dim, float eps) {
  if (weight.empty()) return;
  for (int64_t t = 0; t < x.rows; ++t) {
    for (int64_t h = 0; h < x.cols / head_dim; ++h) {
      float* head = x.row(t) + h * head_dim;
      rms_norm(head, weight.data(), head, head_dim, eps);
    }
  }
}

// x (T, n) += y (T, n).
void add_residual(Activations& x, const Activations& y) {
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] += y.data[i];
}

}  // namespace

namespace {

// The config of sliding-window layers' RoPE: their own base and no long-context scaling.
ModelConfig sliding_rope_config(const ModelConfig& config) {
  ModelConfig sliding = config;
  sliding.rope_theta = config.rope_theta_sliding;
  sliding.rope_scaling = RopeScaling{};
  return sliding;
}

}  // namespace

Transformer::Transformer(const ModelWeights& weights, ThreadPool& pool)
    : weights_(weights),
      pool_(pool),
      rope_(weights.config, weights.rope_freq_divisors),
      rope_sliding_(sliding_rope_config(weights.config), {}) {}

void Transformer::project(const kernels::WeightMatrix& w, const Activations& x, Activations& y) {
  y.resize(x.rows, w.rows);
  if (x.rows == 1) {
    kernels::matvec(w, x.row_span(0), {y.data.data(), static_cast<size_t>(w.rows)}, pool_, activation_precision_);
  } else {
    kernels::matmul(w, x.data.data(), x.rows, y.data.data(), pool_, activation_precision_);
  }
}

void Transformer::project_group(std::initializer_list<Projection> projections, const Activations& x) {
  std::array<kernels::MatmulProduct, kMaxProjectionGroup> products;
  assert(projections.size() <= products.size());
  size_t count = 0;
  for (const Projection& projection : projections) {
    projection.y->resize(x.rows, projection.w->rows);
    products[count++] = {projection.w, projection.y->data.data()};
  }
  kernels::matmul_group({products.data(), count}, x.data.data(), x.rows, pool_, activation_precision_);
}

void Transformer::embed(std::span<const TokenId> tokens, Activations& x) {
  const kernels::WeightMatrix& table = weights_.token_embd;
  x.resize(static_cast<int64_t>(tokens.size()), table.cols);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const TokenId id = tokens[t];
    if (id < 0 || id >= table.rows) {
      raise<InvalidArgument>("token id {} at index {} is outside the vocabulary [0, {})", id, t, table.rows);
    }
    float* row = x.row(static_cast<int64_t>(t));
    kernels::dequantize_row(table.dtype, table.data + static_cast<size_t>(id) * table.row_stride, row, table.cols);
    if (weights_.config.embedding_scale != 1.0f) {
      for (int64_t i = 0; i < table.cols; ++i) row[i] *= weights_.config.embedding_scale;
    }
  }
  observe(-1, "embd", x);
}

void Transformer::attend(int64_t layer, const Activations& q, std::span<const int32_t> positions,
                         std::span<KVCache* const> caches, Activations& out) {
  const ModelConfig& c = weights_.config;
  const int64_t T = q.rows;
  const int64_t H = c.head_dim;
  const int64_t group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(H));
  const int64_t window = c.is_sliding(layer) ? c.sliding_window : 0;
  out.resize(T, c.q_dim());

  // One task per (token, head): heads are independent, and prefill adds tokens. Short
  // contexts run on the calling thread, because waking the workers costs more than a few
  // thousand multiply-adds per head.
  const int64_t max_keys = static_cast<int64_t>(*std::max_element(positions.begin(), positions.end())) + 1;
  const int64_t grain = std::max<int64_t>(1, kMinAttentionTaskMacs / (max_keys * H));
  pool_.parallel_for(T * c.n_heads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / c.n_heads;
      const int64_t h = task % c.n_heads;
      const KVCache& cache = *caches[static_cast<size_t>(t)];
      const int64_t kv_offset = (h / group) * H;
      const int64_t end_pos = static_cast<int64_t>(positions[static_cast<size_t>(t)]) + 1;
      const int64_t begin_pos = window > 0 ? std::max<int64_t>(0, end_pos - window) : 0;
      const int64_t n_keys = end_pos - begin_pos;
      const float* q_head = q.row(t) + h * H;

      // scores (n_keys) = q (H) . k[s] (H) / sqrt(H), causal (s <= position) and, in a
      // sliding-window layer, over the last `window` positions only.
      scores.resize(static_cast<size_t>(n_keys));
      for (int64_t s = begin_pos; s < end_pos; ++s) {
        scores[static_cast<size_t>(s - begin_pos)] =
            kernels::dot_f32(q_head, cache.key(layer, s) + kv_offset, H) * scale;
      }

      softmax(scores.data(), n_keys);

      // out (H) = sum over s of scores[s] * v[s] (H).
      float* o = out.row(t) + h * H;
      std::fill(o, o + H, 0.0f);
      for (int64_t s = begin_pos; s < end_pos; ++s) {
        kernels::axpy_f32(scores[static_cast<size_t>(s - begin_pos)], cache.value(layer, s) + kv_offset, o, H);
      }
    }
  }, grain);
}

void Transformer::check_block_input(const Activations& x, int64_t width, std::span<const int32_t> positions,
                                    std::span<KVCache* const> caches) const {
  const int64_t T = x.rows;
  if (static_cast<int64_t>(positions.size()) != T || x.cols != width) {
    raise<InvalidArgument>("forward_block: X is ({}, {}) with {} positions; expected ({}, {}) with {}", x.rows, x.cols,
                           positions.size(), T, width, T);
  }
  for (int64_t t = 0; t < T; ++t) {
    const int32_t p = positions[static_cast<size_t>(t)];
    const int64_t capacity = caches[static_cast<size_t>(t)]->capacity();
    if (p < 0 || p >= capacity) {
      raise<InvalidArgument>("forward_block: position {} is outside the KV cache [0, {})", p, capacity);
    }
  }
}

void Transformer::forward_block(int64_t layer, Activations& x, std::span<const int32_t> positions, KVCache& cache) {
  row_caches_.assign(positions.size(), &cache);
  forward_block_rows(layer, x, positions, row_caches_);
}

void Transformer::forward_block_rows(int64_t layer, Activations& x, std::span<const int32_t> positions,
                                     std::span<KVCache* const> caches) {
  check_block_input(x, weights_.config.dim, positions, caches);

  attention_norm(layer, x, xnorm_);
  attention_heads_rows(layer, xnorm_, positions, caches, attn_);
  add_attention_output(layer, attn_, x);

  ffn_norm(layer, x, xnorm_);
  ffn_activation(layer, xnorm_, gate_);
  add_ffn_output(layer, gate_, x);
}

void Transformer::attention_norm(int64_t layer, const Activations& x, Activations& xnorm) {
  // xnorm (T, D) = RMSNorm(X) * attn_norm.
  const BlockWeights& w = weights_.blocks.at(static_cast<size_t>(layer));
  rms_norm_rows(x, w.attn_norm, xnorm, static_cast<float>(weights_.config.rms_eps));
  observe(layer, "attn_norm", xnorm);
}

void Transformer::attention_heads(int64_t layer, const Activations& xnorm, std::span<const int32_t> positions,
                                  KVCache& cache, Activations& heads) {
  row_caches_.assign(positions.size(), &cache);
  check_block_input(xnorm, weights_.config.dim, positions, row_caches_);
  attention_heads_rows(layer, xnorm, positions, row_caches_, heads);
}

void Transformer::attention_heads_rows(int64_t layer, const Activations& xnorm, std::span<const int32_t> positions,
                                       std::span<KVCache* const> caches, Activations& heads) {
  const ModelConfig& c = weights_.config;
  const BlockWeights& w = weights_.blocks.at(static_cast<size_t>(layer));
  const int64_t T = xnorm.rows;
  const float eps = static_cast<float>(c.rms_eps);

  // Projections: q (T, Q), k (T, K), v (T, K) = xnorm @ W^T + bias.
  project_group({{&w.attn_q, &q_}, {&w.attn_k, &k_}, {&w.attn_v, &v_}}, xnorm);
  add_bias(q_, w.attn_q_bias);
  add_bias(k_, w.attn_k_bias);
  add_bias(v_, w.attn_v_bias);
  observe(layer, "q", q_);
  observe(layer, "k", k_);
  observe(layer, "v", v_);

  // Qwen3 normalizes each head of q and k before rotating it.
  rms_norm_heads(q_, w.attn_q_norm, c.head_dim, eps);
  rms_norm_heads(k_, w.attn_k_norm, c.head_dim, eps);

  // RoPE on every head of q and k at each token's position.
  const Rope& rope = c.is_sliding(layer) ? rope_sliding_ : rope_;
  for (int64_t t = 0; t < T; ++t) {
    rope.apply(q_.row(t), c.n_heads, positions[static_cast<size_t>(t)]);
    rope.apply(k_.row(t), c.n_kv_heads, positions[static_cast<size_t>(t)]);
  }
  observe(layer, "q_rope", q_);
  observe(layer, "k_rope", k_);

  // KV cache: store k and v of every token before any token attends.
  for (int64_t t = 0; t < T; ++t) {
    const int32_t p = positions[static_cast<size_t>(t)];
    KVCache& cache = *caches[static_cast<size_t>(t)];
    std::copy(k_.row(t), k_.row(t) + c.kv_dim(), cache.key(layer, p));
    std::copy(v_.row(t), v_.row(t) + c.kv_dim(), cache.value(layer, p));
  }

  // Grouped-query attention: heads (T, Q), each kv head shared by n_heads / n_kv_heads heads.
  attend(layer, q_, positions, caches, heads);
  observe(layer, "attn_heads", heads);
}

void Transformer::add_attention_output(int64_t layer, const Activations& heads, Activations& x) {
  // X (T, D) += heads (T, Q) @ W_o^T (D, Q). A model with a post-attention norm (Gemma 3)
  // normalizes the product before the add.
  const BlockWeights& w = weights_.blocks.at(static_cast<size_t>(layer));
  project(w.attn_output, heads, proj_);
  if (!w.post_attention_norm.empty()) {
    rms_norm_rows(proj_, w.post_attention_norm, proj_, static_cast<float>(weights_.config.rms_eps));
  }
  observe(layer, "attn_out", proj_);
  add_residual(x, proj_);
  observe(layer, "ffn_inp", x);
}

void Transformer::ffn_norm(int64_t layer, const Activations& x, Activations& xnorm) {
  // xnorm (T, D) = RMSNorm(X) * ffn_norm.
  const BlockWeights& w = weights_.blocks.at(static_cast<size_t>(layer));
  rms_norm_rows(x, w.ffn_norm, xnorm, static_cast<float>(weights_.config.rms_eps));
  observe(layer, "ffn_norm", xnorm);
}

void Transformer::ffn_activation(int64_t layer, const Activations& xnorm, Activations& act) {
  // SwiGLU or GeGLU: gate, up (T, F); act = silu(gate) * up or gelu(gate) * up, computed
  // in the gate buffer.
  const BlockWeights& w = weights_.blocks.at(static_cast<size_t>(layer));
  project_group({{&w.ffn_gate, &act}, {&w.ffn_up, &up_}}, xnorm);
  observe(layer, "ffn_gate", act);
  observe(layer, "ffn_up", up_);
  if (weights_.config.ffn_activation == FfnActivation::GELU_TANH) {
    geglu(act.data.data(), up_.data.data(), static_cast<int64_t>(act.data.size()));
  } else {
    swiglu(act.data.data(), up_.data.data(), static_cast<int64_t>(act.data.size()));
  }
  observe(layer, "ffn_act", act);
}

void Transformer::add_ffn_output(int64_t layer, const Activations& act, Activations& x) {
  // X (T, D) += act (T, F) @ W_down^T (D, F). A model with a post-FFN norm (Gemma 3)
  // normalizes the product before the add.
  const BlockWeights& w = weights_.blocks.at(static_cast<size_t>(layer));
  project(w.ffn_down, act, proj_);
  if (!w.post_ffw_norm.empty()) rms_norm_rows(proj_, w.post_ffw_norm, proj_, static_cast<float>(weights_.config.rms_eps));
  observe(layer, "ffn_out", proj_);
  add_residual(x, proj_);
  observe(layer, "block_out", x);
}

void Transformer::compute_logits(const Activations& x, Activations& logits, bool all_rows) {
  const ModelConfig& c = weights_.config;
  const int64_t first = all_rows ? 0 : x.rows - 1;

  // Final norm of the rows that need logits: xnorm (R, D).
  xnorm_.resize(x.rows - first, c.dim);
  for (int64_t t = first; t < x.rows; ++t) {
    rms_norm(x.row(t), weights_.output_norm.data(), xnorm_.row(t - first), c.dim, static_cast<float>(c.rms_eps));
  }
  observe(-1, "output_norm", xnorm_);

  // logits (R, V) = xnorm @ output^T (V, D); output is token_embd when tied.
  project(weights_.output, xnorm_, logits);
  observe(-1, "logits", logits);
}

void Transformer::forward(std::span<const TokenId> tokens, KVCache& cache, Activations& logits, bool all_logits) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t start = cache.length();
  if (T == 0) raise<InvalidArgument>("forward: no tokens given");
  if (start + T > cache.capacity()) {
    raise<InvalidArgument>("forward: {} tokens after {} cached positions exceed the KV cache capacity {}", T, start,
                           cache.capacity());
  }
  positions_.resize(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) positions_[static_cast<size_t>(t)] = static_cast<int32_t>(start + t);

  embed(tokens, x_);

  for (int64_t layer = 0; layer < weights_.config.n_layers; ++layer) {
    forward_block(layer, x_, positions_, cache);
  }
  cache.set_length(start + T);

  compute_logits(x_, logits, all_logits);
}

void Transformer::forward_batch(std::span<const TokenId> tokens, std::span<KVCache* const> caches,
                                Activations& logits) {
  const int64_t B = static_cast<int64_t>(tokens.size());
  if (B == 0) raise<InvalidArgument>("forward_batch: no tokens given");
  if (caches.size() != tokens.size()) {
    raise<InvalidArgument>("forward_batch: {} tokens but {} KV caches; expected one cache per token", B, caches.size());
  }
  positions_.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const KVCache& cache = *caches[static_cast<size_t>(b)];
    if (cache.length() >= cache.capacity()) {
      raise<InvalidArgument>("forward_batch: the KV cache of sequence {} is full ({} positions)", b, cache.capacity());
    }
    positions_[static_cast<size_t>(b)] = static_cast<int32_t>(cache.length());
  }

  embed(tokens, x_);

  for (int64_t layer = 0; layer < weights_.config.n_layers; ++layer) {
    forward_block_rows(layer, x_, positions_, caches);
  }
  for (KVCache* cache : caches) cache->set_length(cache->length() + 1);

  compute_logits(x_, logits, /*all_rows=*/true);
}

}  // namespace stepdown::model
