#include "stepdown/model/config.h"

#include <cmath>

#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"

namespace stepdown::model {

namespace {

// A required positive integer "{arch}.{suffix}".
int64_t require_positive(const io::Metadata& metadata, const std::string& key, const std::string& source) {
  const std::optional<int64_t> value = metadata.get_int(key);
  if (!value) raise<FormatError>("{}: metadata key {} is missing; expected a positive integer", source, key);
  if (*value <= 0) raise<FormatError>("{}: metadata key {} is {}; expected a positive integer", source, key, *value);
  return *value;
}

Architecture parse_architecture(const std::string& name, const std::string& source) {
  if (name == "llama" || name == "mistral") return Architecture::LLAMA;
  if (name == "qwen2") return Architecture::QWEN2;
  if (name == "qwen3") return Architecture::QWEN3;
  if (name == "gemma3") return Architecture::GEMMA3;
  raise<Unsupported>("{}: general.architecture is \"{}\"; stepdown runs llama, mistral, qwen2, qwen3 and gemma3",
                     source, name);
}

RopeScaling read_rope_scaling(const io::Metadata& metadata, const std::string& arch, const std::string& source,
                              int64_t context_length) {
  RopeScaling scaling;
  const std::string prefix = arch + ".rope.scaling.";
  const std::optional<std::string> type = metadata.get_string(prefix + "type");
  if (!type || *type == "none") return scaling;

  if (*type == "linear") {
    scaling.type = RopeScalingType::LINEAR;
  } else if (*type == "llama3") {
    scaling.type = RopeScalingType::LLAMA3;
  } else {
    raise<Unsupported>("{}: metadata key {}type is \"{}\"; stepdown supports none, linear and llama3", source, prefix,
                       *type);
  }

  scaling.factor = metadata.get_float(prefix + "factor").value_or(1.0);
  if (!(scaling.factor > 0.0)) {
    raise<FormatError>("{}: metadata key {}factor is {}; expected a positive number", source, prefix, scaling.factor);
  }
  scaling.original_context_length = metadata.get_int(prefix + "original_context_length").value_or(context_length);
  scaling.low_freq_factor = metadata.get_float(arch + std::string(io::kRopeLowFreqFactorSuffix)).value_or(1.0);
  scaling.high_freq_factor = metadata.get_float(arch + std::string(io::kRopeHighFreqFactorSuffix)).value_or(4.0);
  if (scaling.type == RopeScalingType::LLAMA3 &&
      (scaling.original_context_length <= 0 || !(scaling.high_freq_factor > scaling.low_freq_factor))) {
    raise<FormatError>(
        "{}: llama3 RoPE scaling needs original_context_length > 0 and high_freq_factor > low_freq_factor; found {}, "
        "{} and {}",
        source, scaling.original_context_length, scaling.high_freq_factor, scaling.low_freq_factor);
  }
  return scaling;
}

// Gemma 3's extras. GGUF files from llama.cpp's converter carry only the window size. The
// layer pattern (every 6th layer global) and the sliding layers' RoPE base (10000) are
// fixed for the architecture, and the logits match llama.cpp 0.3.36's with these values.
void read_gemma3(const io::Metadata& metadata, const std::string& a, const std::string& source, ModelConfig& config) {
  config.qk_norm = true;
  config.post_norms = true;
  config.ffn_activation = FfnActivation::GELU_TANH;
  config.embedding_scale = std::sqrt(static_cast<float>(config.dim));
  config.sliding_window = metadata.get_int(a + ".attention.sliding_window").value_or(0);
  if (config.sliding_window < 0) {
    raise<FormatError>("{}: {}.attention.sliding_window is {}; expected a value >= 0", source, a,
                       config.sliding_window);
  }
  config.sliding_window_pattern = metadata.get_int(a + ".attention.sliding_window_pattern").value_or(6);
  config.rope_theta_sliding = metadata.get_float(a + ".rope.freq_base_swa").value_or(10000.0);
}

}  // namespace

std::string architecture_name(Architecture architecture) {
  switch (architecture) {
    case Architecture::LLAMA:
      return "llama";
    case Architecture::QWEN2:
      return "qwen2";
    case Architecture::QWEN3:
      return "qwen3";
    case Architecture::GEMMA3:
      return "gemma3";
  }
  return "unknown";
}

ModelConfig config_from_metadata(const io::Metadata& metadata, const std::string& source) {
  ModelConfig config;
  const std::optional<std::string> arch = metadata.get_string("general.architecture");
  if (!arch) raise<FormatError>("{}: metadata key general.architecture is missing", source);
  config.architecture_name = *arch;
  config.architecture = parse_architecture(*arch, source);
  const std::string& a = *arch;

  config.dim = require_positive(metadata, a + ".embedding_length", source);
  config.n_layers = require_positive(metadata, a + ".block_count", source);
  config.n_heads = require_positive(metadata, a + ".attention.head_count", source);
  config.ffn_dim = require_positive(metadata, a + ".feed_forward_length", source);
  config.n_kv_heads = metadata.get_int(a + ".attention.head_count_kv").value_or(config.n_heads);
  if (config.n_kv_heads <= 0 || config.n_heads % config.n_kv_heads != 0) {
    raise<FormatError>("{}: {}.attention.head_count_kv is {}; expected a positive divisor of head_count {}", source, a,
                       config.n_kv_heads, config.n_heads);
  }

  if (metadata.contains(a + ".attention.key_length")) {
    config.head_dim = require_positive(metadata, a + ".attention.key_length", source);
  } else {
    if (config.dim % config.n_heads != 0) {
      raise<FormatError>("{}: {}.embedding_length {} is not a multiple of head_count {} and {}.attention.key_length "
                         "is missing",
                         source, a, config.dim, config.n_heads, a);
    }
    config.head_dim = config.dim / config.n_heads;
  }
  const int64_t value_length = metadata.get_int(a + ".attention.value_length").value_or(config.head_dim);
  if (value_length != config.head_dim) {
    raise<Unsupported>("{}: {}.attention.value_length {} differs from key_length {}; stepdown needs them equal", source,
                       a, value_length, config.head_dim);
  }
  if (config.head_dim % 2 != 0) {
    raise<FormatError>("{}: head dimension {} is odd; RoPE needs pairs of dimensions", source, config.head_dim);
  }

  if (metadata.contains(a + ".vocab_size")) {
    config.vocab_size = require_positive(metadata, a + ".vocab_size", source);
  } else if (const auto tokens = metadata.get_string_array("tokenizer.ggml.tokens")) {
    config.vocab_size = static_cast<int64_t>(tokens->size());
  }
  // NOTE: when neither key is present, bind_weights takes vocab_size from token_embd.weight.

  config.context_length = metadata.get_int(a + ".context_length").value_or(2048);
  if (config.context_length <= 0) {
    raise<FormatError>("{}: {}.context_length is {}; expected a positive integer", source, a, config.context_length);
  }
  config.rms_eps = metadata.get_float(a + ".attention.layer_norm_rms_epsilon").value_or(1e-5);
  if (!(config.rms_eps > 0.0)) {
    raise<FormatError>("{}: {}.attention.layer_norm_rms_epsilon is {}; expected a positive number", source, a,
                       config.rms_eps);
  }
  config.rope_theta = metadata.get_float(a + ".rope.freq_base").value_or(10000.0);
  if (!(config.rope_theta > 0.0)) {
    raise<FormatError>("{}: {}.rope.freq_base is {}; expected a positive number", source, a, config.rope_theta);
  }
  config.rope_dim = metadata.get_int(a + ".rope.dimension_count").value_or(config.head_dim);
  if (config.rope_dim <= 0 || config.rope_dim > config.head_dim || config.rope_dim % 2 != 0) {
    raise<FormatError>("{}: {}.rope.dimension_count is {}; expected an even number in [2, {}]", source, a,
                       config.rope_dim, config.head_dim);
  }

  const std::string default_layout = config.architecture == Architecture::LLAMA ? "interleaved" : "neox";
  const std::string layout = metadata.get_string(io::kRopeLayoutKey).value_or(default_layout);
  if (layout == "interleaved") {
    config.rope_layout = RopeLayout::INTERLEAVED;
  } else if (layout == "neox") {
    config.rope_layout = RopeLayout::NEOX;
  } else {
    raise<FormatError>("{}: metadata key {} is \"{}\"; expected \"interleaved\" or \"neox\"", source,
                       io::kRopeLayoutKey, layout);
  }
  config.rope_scaling = read_rope_scaling(metadata, a, source, config.context_length);

  config.qkv_bias = config.architecture == Architecture::QWEN2;
  config.qk_norm = config.architecture == Architecture::QWEN3;
  if (config.architecture == Architecture::GEMMA3) read_gemma3(metadata, a, source, config);
  return config;
}

}  // namespace stepdown::model
