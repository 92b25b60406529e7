#pragma once
// The hyperparameters of a decoder-only transformer, read from a model's metadata in
// GGUF's key names ("{arch}.embedding_length", ...), whatever the file format was.
#include <cstdint>
#include <string>
#include <vector>

#include "stepdown/io/metadata.h"

namespace stepdown::model {

enum class Architecture { LLAMA, QWEN2, QWEN3, GEMMA3 };

// Pairing of the q and k dimensions that RoPE rotates together.
enum class RopeLayout {
  INTERLEAVED,  // pairs (2i, 2i+1): Meta checkpoints, llama2.c, GGUF llama
  NEOX,         // pairs (i, i + head_dim/2): Hugging Face checkpoints, GGUF qwen2/qwen3
};

enum class RopeScalingType { NONE, LINEAR, LLAMA3 };

// The FFN's gate activation: silu(gate) * up (SwiGLU) or gelu(gate) * up (GeGLU, tanh form).
enum class FfnActivation { SILU, GELU_TANH };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::NONE;
  double factor = 1.0;
  // Llama 3 only: the context the model was pretrained on, and the wavelength band edges.
  int64_t original_context_length = 8192;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
};

struct ModelConfig {
  Architecture architecture = Architecture::LLAMA;
  std::string architecture_name;  // general.architecture, as found
  int64_t dim = 0;                // embedding width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;           // key_length, or dim / n_heads when the file has no key_length
  int64_t ffn_dim = 0;            // hidden width of the gate/up projections
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t rope_dim = 0;           // leading dimensions of each head that RoPE rotates
  RopeLayout rope_layout = RopeLayout::INTERLEAVED;
  RopeScaling rope_scaling;
  bool qkv_bias = false;          // qwen2
  bool qk_norm = false;           // qwen3: RMSNorm over each head of q and k before RoPE
  bool tied_embeddings = false;   // logits from token_embd when the file has no output.weight
  FfnActivation ffn_activation = FfnActivation::SILU;

  // Gemma 3: embeddings scaled by sqrt(dim); RMSNorm after the attention output and after
  // the FFN output; sliding-window attention with its own RoPE base on every layer but
  // each sliding_window_pattern-th.
  float embedding_scale = 1.0f;
  bool post_norms = false;
  int64_t sliding_window = 0;          // 0: every layer attends to the whole past
  int64_t sliding_window_pattern = 0;  // layer i is global when (i + 1) % pattern == 0
  double rope_theta_sliding = 10000.0;

  // True when block `layer` attends only to the last sliding_window positions.
  bool is_sliding(int64_t layer) const {
    return sliding_window > 0 && (sliding_window_pattern <= 0 || (layer + 1) % sliding_window_pattern != 0);
  }

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
};

// Reads the config from `metadata`. `source` (the file path) goes into error messages.
// Throws FormatError naming the key when a required value is missing or out of range, and
// Unsupported for an architecture stepdown cannot run. vocab_size falls back to the length
// of tokenizer.ggml.tokens. bind_weights sets tied_embeddings,
// because only the tensor list shows whether output.weight exists.
ModelConfig config_from_metadata(const io::Metadata& metadata, const std::string& source);

std::string architecture_name(Architecture architecture);

}  // namespace stepdown::model
