#include "stepdown/model/weights.h"

#include <cstring>

#include <fmt/format.h>

#include "stepdown/core/error.h"
#include "stepdown/core/half.h"

namespace stepdown::model {

namespace {

// Binds tensors of one file, naming it in every error.
class Binder {
 public:
  Binder(const io::ModelFile& file, WeightConversion conversion, ModelWeights& weights)
      : file_(file), conversion_(conversion), weights_(weights) {}

  const TensorView* find(const std::string& name) const { return file_.find_tensor(name); }

  const TensorView& require(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView* tensor = file_.find_tensor(name);
    if (tensor == nullptr) {
      raise<FormatError>("{}: tensor {} is missing; expected shape {}", file_.path.string(), name, shape_string(shape));
    }
    if (tensor->shape != shape) {
      raise<FormatError>("{}: tensor {} has shape {}; expected {} from the model config", file_.path.string(), name,
                         shape_string(tensor->shape), shape_string(shape));
    }
    return *tensor;
  }

  kernels::WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorView& tensor = require(name, {rows, cols});
    check_whole_blocks(tensor);
    kernels::WeightMatrix w{tensor.dtype, tensor.data, rows, cols, tensor.row_bytes()};
    if (conversion_ == WeightConversion::NONE) return w;
    return convert(w);
  }

  std::vector<float> vector(const std::string& name, int64_t length) const {
    const TensorView& tensor = require(name, {length});
    check_whole_blocks(tensor);
    std::vector<float> values(static_cast<size_t>(length));
    kernels::dequantize_row(tensor.dtype, tensor.data, values.data(), length);
    return values;
  }

  std::vector<float> optional_vector(const std::string& name, int64_t length) const {
    return find(name) != nullptr ? vector(name, length) : std::vector<float>{};
  }

 private:
  void check_whole_blocks(const TensorView& tensor) const {
    const DTypeInfo& info = dtype_info(tensor.dtype);
    if (tensor.cols() % info.block_elems != 0) {
      raise<FormatError>("{}: tensor {} has rows of {} values, not a whole number of {} blocks of {}",
                         file_.path.string(), tensor.name, tensor.cols(), info.name, info.block_elems);
    }
  }

  // Decodes every row once into an owned buffer of the requested format.
  kernels::WeightMatrix convert(const kernels::WeightMatrix& w) {
    const DType target = conversion_ == WeightConversion::F32 ? DType::F32 : DType::BF16;
    const size_t row_stride = dtype_bytes(target, w.cols);
    auto buffer = std::make_shared<std::vector<std::byte>>(row_stride * static_cast<size_t>(w.rows));
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = 0; r < w.rows; ++r) {
      kernels::dequantize_row(w.dtype, w.data + static_cast<size_t>(r) * w.row_stride, row.data(), w.cols);
      std::byte* out = buffer->data() + static_cast<size_t>(r) * row_stride;
      if (target == DType::F32) {
        std::memcpy(out, row.data(), row_stride);
      } else {
        for (int64_t c = 0; c < w.cols; ++c) {
          const uint16_t b = f32_to_bf16(row[static_cast<size_t>(c)]);
          std::memcpy(out + 2 * c, &b, 2);
        }
      }
    }
    weights_.owned_buffers.push_back(buffer);
    return kernels::WeightMatrix{target, buffer->data(), w.rows, w.cols, row_stride};
  }

  const io::ModelFile& file_;
  WeightConversion conversion_;
  ModelWeights& weights_;
};

size_t matrix_bytes(const kernels::WeightMatrix& w) { return w.row_stride * static_cast<size_t>(w.rows); }

}  // namespace

size_t ModelWeights::decode_bytes_per_token() const {
  size_t total = matrix_bytes(output);
  for (const BlockWeights& b : blocks) {
    total += matrix_bytes(b.attn_q) + matrix_bytes(b.attn_k) + matrix_bytes(b.attn_v) + matrix_bytes(b.attn_output);
    total += matrix_bytes(b.ffn_gate) + matrix_bytes(b.ffn_up) + matrix_bytes(b.ffn_down);
  }
  return total;
}

ModelWeights bind_weights(const io::ModelFile& file, const ModelConfig& config, WeightConversion conversion) {
  ModelWeights weights;
  weights.config = config;
  weights.mappings = file.mappings;
  weights.owned_buffers = file.owned_buffers;
  ModelConfig& c = weights.config;
  Binder binder(file, conversion, weights);

  // vocab_size may only be known from the embedding table.
  if (c.vocab_size == 0) {
    const TensorView* embd = binder.find("token_embd.weight");
    if (embd != nullptr && embd->shape.size() == 2) c.vocab_size = embd->shape[0];
  }
  const int64_t D = c.dim;
  const int64_t Q = c.q_dim();
  const int64_t K = c.kv_dim();
  const int64_t H = c.head_dim;
  const int64_t F = c.ffn_dim;
  const int64_t V = c.vocab_size;

  weights.token_embd = binder.matrix("token_embd.weight", V, D);
  weights.output_norm = binder.vector("output_norm.weight", D);
  c.tied_embeddings = binder.find("output.weight") == nullptr;
  weights.output = c.tied_embeddings ? weights.token_embd : binder.matrix("output.weight", V, D);
  if (binder.find("rope_freqs.weight") != nullptr) {
    weights.rope_freq_divisors = binder.vector("rope_freqs.weight", c.rope_dim / 2);
  }

  weights.blocks.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    BlockWeights& b = weights.blocks[static_cast<size_t>(i)];
    const std::string p = fmt::format("blk.{}.", i);
    b.attn_norm = binder.vector(p + "attn_norm.weight", D);
    b.attn_q = binder.matrix(p + "attn_q.weight", Q, D);
    b.attn_k = binder.matrix(p + "attn_k.weight", K, D);
    b.attn_v = binder.matrix(p + "attn_v.weight", K, D);
    if (c.qkv_bias) {
      b.attn_q_bias = binder.vector(p + "attn_q.bias", Q);
      b.attn_k_bias = binder.vector(p + "attn_k.bias", K);
      b.attn_v_bias = binder.vector(p + "attn_v.bias", K);
    } else {
      // Some llama-architecture files carry biases too; use them when present.
      b.attn_q_bias = binder.optional_vector(p + "attn_q.bias", Q);
      b.attn_k_bias = binder.optional_vector(p + "attn_k.bias", K);
      b.attn_v_bias = binder.optional_vector(p + "attn_v.bias", K);
    }
    if (c.qk_norm) {
      b.attn_q_norm = binder.vector(p + "attn_q_norm.weight", H);
      b.attn_k_norm = binder.vector(p + "attn_k_norm.weight", H);
    }
    b.attn_output = binder.matrix(p + "attn_output.weight", D, Q);
    b.ffn_norm = binder.vector(p + "ffn_norm.weight", D);
    if (c.post_norms) {
      b.post_attention_norm = binder.vector(p + "post_attention_norm.weight", D);
      b.post_ffw_norm = binder.vector(p + "post_ffw_norm.weight", D);
    }
    b.ffn_gate = binder.matrix(p + "ffn_gate.weight", F, D);
    b.ffn_up = binder.matrix(p + "ffn_up.weight", F, D);
    b.ffn_down = binder.matrix(p + "ffn_down.weight", D, F);
  }
  return weights;
}

ModelWeights load_weights(const io::ModelFile& file, WeightConversion conversion) {
  return bind_weights(file, config_from_metadata(file.metadata, file.path.string()), conversion);
}

}  // namespace stepdown::model
