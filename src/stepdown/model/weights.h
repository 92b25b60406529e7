#pragma once
// The weights of a transformer, bound by GGUF tensor name from an opened model file and
// checked against its config. Matrices stay in their stored format in the memory-mapped
// file unless a conversion is asked for; norm weights and biases are copied to f32.
//
// Shape legend: D dim, Q n_heads * head_dim, K n_kv_heads * head_dim, H head_dim,
// F ffn_dim, V vocab_size. Matrices are (rows, cols) = (out_features, in_features).
#include <memory>
#include <optional>
#include <vector>

#include "stepdown/core/mapped_file.h"
#include "stepdown/io/model_file.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/model/config.h"

namespace stepdown::model {

// Format the weight matrices are held in while the model runs.
enum class WeightConversion {
  NONE,  // as stored in the file (memory-mapped, dequantized row by row in each product)
  F32,   // decoded once at load into owned f32 buffers
  BF16,  // decoded once at load and rounded to bf16
};

struct BlockWeights {
  std::vector<float> attn_norm;        // (D)
  kernels::WeightMatrix attn_q;        // (Q, D)
  kernels::WeightMatrix attn_k;        // (K, D)
  kernels::WeightMatrix attn_v;        // (K, D)
  std::vector<float> attn_q_bias;      // (Q) or empty
  std::vector<float> attn_k_bias;      // (K) or empty
  std::vector<float> attn_v_bias;      // (K) or empty
  std::vector<float> attn_q_norm;      // (H) or empty; qwen3
  std::vector<float> attn_k_norm;      // (H) or empty; qwen3
  kernels::WeightMatrix attn_output;   // (D, Q)
  std::vector<float> post_attention_norm;  // (D) or empty; gemma3, on the attention output
  std::vector<float> ffn_norm;         // (D)
  std::vector<float> post_ffw_norm;    // (D) or empty; gemma3, on the FFN output
  kernels::WeightMatrix ffn_gate;      // (F, D)
  kernels::WeightMatrix ffn_up;        // (F, D)
  kernels::WeightMatrix ffn_down;      // (D, F)
};

struct ModelWeights {
  ModelConfig config;
  kernels::WeightMatrix token_embd;    // (V, D)
  std::vector<BlockWeights> blocks;    // n_layers
  std::vector<float> output_norm;      // (D)
  kernels::WeightMatrix output;        // (V, D); the same bytes as token_embd when tied
  // Divisors of each RoPE frequency (GGUF rope_freqs.weight, Llama 3), (rope_dim / 2) or empty.
  std::vector<float> rope_freq_divisors;

  // Bytes of weights one decode step reads: every block matrix and the output matrix
  // (the embedding lookup reads one row, which is left out).
  size_t decode_bytes_per_token() const;

  // Keep the mapped file and any converted buffers alive as long as the weights.
  std::vector<std::shared_ptr<MappedFile>> mappings;
  std::vector<std::shared_ptr<std::vector<std::byte>>> owned_buffers;
};

// Binds every tensor the config requires, checking each shape. A missing tensor or a
// shape mismatch throws FormatError naming the file, the tensor, the expected and the
// found shape. Sets config.tied_embeddings when the file has no output.weight.
ModelWeights bind_weights(const io::ModelFile& file, const ModelConfig& config,
                          WeightConversion conversion = WeightConversion::NONE);

// Reads the config from the file's metadata, then binds the weights.
ModelWeights load_weights(const io::ModelFile& file, WeightConversion conversion = WeightConversion::NONE);

}  // namespace stepdown::model
