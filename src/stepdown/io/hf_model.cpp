#include "stepdown/io/hf_model.h"

#include <charconv>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/io/printable.h"
#include "stepdown/io/safetensors.h"

namespace stepdown::io {

namespace {

using nlohmann::json;

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot open for reading", path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    raise<FormatError>("{}: not valid JSON: {}", path.string(), printable(e.what(), 200));
  }
}

// The config.json fields stepdown uses, after defaults.
struct HfConfig {
  std::string model_type;
  std::string arch;  // GGUF architecture name
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  bool head_dim_given = false;
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // qwen2
  bool qk_norm = false;   // qwen3
};

// Reads config.json fields, raising FormatError that names the file and the field.
class ConfigReader {
 public:
  ConfigReader(const json& config, std::string file) : config_(config), file_(std::move(file)) {}

  int64_t positive_int(std::string_view field, std::optional<int64_t> fallback = std::nullopt) const {
    const auto it = config_.find(field);
    if (it == config_.end() || it->is_null()) {
      if (fallback) return *fallback;
      raise<FormatError>("{}: field '{}' is missing; expected a positive integer", file_, field);
    }
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (int64_t{1} << 31)) {
      raise<FormatError>("{}: field '{}': expected an integer in 1..2^31, found {}", file_, field, printable(it->dump()));
    }
    return it->get<int64_t>();
  }

  double positive_number(std::string_view field, double fallback) const {
    const auto it = config_.find(field);
    if (it == config_.end() || it->is_null()) return fallback;
    if (!it->is_number() || it->get<double>() <= 0) {
      raise<FormatError>("{}: field '{}': expected a positive number, found {}", file_, field, printable(it->dump()));
    }
    return it->get<double>();
  }

  bool boolean(std::string_view field, bool fallback) const {
    const auto it = config_.find(field);
    if (it == config_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) raise<FormatError>("{}: field '{}': expected true or false, found {}", file_, field, printable(it->dump()));
    return it->get<bool>();
  }

  std::string string(std::string_view field) const {
    const auto it = config_.find(field);
    if (it == config_.end()) raise<FormatError>("{}: field '{}' is missing; expected a string", file_, field);
    if (!it->is_string()) raise<FormatError>("{}: field '{}': expected a string, found {}", file_, field, printable(it->dump()));
    return it->get<std::string>();
  }

  const std::string& file() const { return file_; }

 private:
  const json& config_;
  std::string file_;
};

HfConfig parse_config(const json& config, const std::string& file) {
  if (!config.is_object()) raise<FormatError>("{}: expected a JSON object, found {}", file, config.type_name());
  const ConfigReader r(config, file);
  HfConfig c;
  c.model_type = r.string("model_type");
  // Defaults of max_position_embeddings follow transformers' LlamaConfig, MistralConfig,
  // Qwen2Config and Qwen3Config.
  int64_t default_context = 2048;
  if (c.model_type == "llama") {
    c.arch = "llama";
  } else if (c.model_type == "mistral") {
    c.arch = "llama";
    default_context = 4096 * 32;
  } else if (c.model_type == "qwen2") {
    c.arch = "qwen2";
    c.qkv_bias = true;
    default_context = 32768;
  } else if (c.model_type == "qwen3") {
    c.arch = "qwen3";
    c.qk_norm = true;
    default_context = 32768;
  } else {
    raise<Unsupported>("{}: field 'model_type': '{}' is not supported; expected llama, mistral, qwen2 or qwen3", file,
                       printable(c.model_type));
  }

  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.num_layers = r.positive_int("num_hidden_layers");
  c.num_heads = r.positive_int("num_attention_heads");
  c.num_kv_heads = r.positive_int("num_key_value_heads", c.num_heads);
  c.vocab_size = r.positive_int("vocab_size");
  c.context_length = r.positive_int("max_position_embeddings", default_context);
  c.rope_theta = r.positive_number("rope_theta", 10000.0);
  c.rms_norm_eps = r.positive_number("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  if (c.model_type != "qwen2") c.qkv_bias = r.boolean("attention_bias", false);

  if (c.num_heads % c.num_kv_heads != 0) {
    raise<FormatError>("{}: field 'num_key_value_heads': expected a divisor of num_attention_heads {}, found {}", file,
                       c.num_heads, c.num_kv_heads);
  }
  c.head_dim_given = config.contains("head_dim") && !config["head_dim"].is_null();
  if (c.head_dim_given) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      raise<FormatError>("{}: field 'num_attention_heads': expected a divisor of hidden_size {}, found {}", file,
                         c.hidden_size, c.num_heads);
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    raise<FormatError>("{}: head dimension {} is odd; RoPE needs an even head dimension", file, c.head_dim);
  }
  return c;
}

// Adds "{arch}.rope.scaling.*" keys for config.json's rope_scaling object.
void add_rope_scaling(const json& config, const HfConfig& c, const std::string& file, Metadata& m) {
  const auto it = config.find("rope_scaling");
  if (it == config.end() || it->is_null()) return;
  const json& scaling = *it;
  if (!scaling.is_object()) {
    raise<FormatError>("{}: field 'rope_scaling': expected an object or null, found {}", file, printable(scaling.dump()));
  }
  const ConfigReader r(scaling, file + " rope_scaling");
  std::string type;
  if (scaling.contains("rope_type")) {
    type = r.string("rope_type");
  } else {
    type = r.string("type");
  }
  const std::string prefix = c.arch + ".rope.scaling.";
  auto required = [&](std::string_view field) {
    const double v = r.positive_number(field, 0);
    if (v <= 0) raise<FormatError>("{}: field 'rope_scaling.{}' is missing; {} scaling needs it", file, field, printable(type));
    return v;
  };
  if (type == "default") return;
  if (type == "linear") {
    m.set_string(prefix + "type", "linear");
    m.set_f32(prefix + "factor", static_cast<float>(required("factor")));
    return;
  }
  if (type == "llama3") {
    m.set_string(prefix + "type", "llama3");
    m.set_f32(prefix + "factor", static_cast<float>(required("factor")));
    m.set_f32(c.arch + std::string(kRopeLowFreqFactorSuffix), static_cast<float>(required("low_freq_factor")));
    m.set_f32(c.arch + std::string(kRopeHighFreqFactorSuffix), static_cast<float>(required("high_freq_factor")));
    m.set_u32(prefix + "original_context_length",
              static_cast<uint32_t>(r.positive_int("original_max_position_embeddings")));
    return;
  }
  raise<Unsupported>("{}: field 'rope_scaling' type '{}' is not supported; expected linear or llama3", file, printable(type));
}

void fill_metadata(const HfConfig& c, Metadata& m) {
  const std::string& a = c.arch;
  m.set_string("general.architecture", a);
  m.set_u32(a + ".context_length", static_cast<uint32_t>(c.context_length));
  m.set_u32(a + ".embedding_length", static_cast<uint32_t>(c.hidden_size));
  m.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  m.set_u32(a + ".block_count", static_cast<uint32_t>(c.num_layers));
  m.set_u32(a + ".attention.head_count", static_cast<uint32_t>(c.num_heads));
  m.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads));
  m.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  m.set_u32(a + ".vocab_size", static_cast<uint32_t>(c.vocab_size));
  m.set_f32(a + ".rope.freq_base", static_cast<float>(c.rope_theta));
  m.set_f32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
  if (c.head_dim_given) {
    m.set_u32(a + ".attention.key_length", static_cast<uint32_t>(c.head_dim));
    m.set_u32(a + ".attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  // HF checkpoints keep q/k rows in rotate-half order whatever the architecture.
  m.set_string(std::string(kRopeLayoutKey), "neox");
}

// GGUF name of an HF tensor, or nullopt when the name is not in stepdown's table.
std::optional<std::string> gguf_name(std::string_view hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view kLayers = "model.layers.";
  if (!hf.starts_with(kLayers)) return std::nullopt;
  hf.remove_prefix(kLayers.size());
  int64_t layer = 0;
  const auto [end, ec] = std::from_chars(hf.data(), hf.data() + hf.size(), layer);
  if (ec != std::errc() || end == hf.data() || *end != '.') return std::nullopt;
  const std::string_view suffix(end + 1, hf.data() + hf.size() - (end + 1));
  static constexpr std::pair<std::string_view, std::string_view> kSuffixes[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  for (const auto& [from, to] : kSuffixes) {
    if (suffix == from) return fmt::format("blk.{}.{}", layer, to);
  }
  return std::nullopt;
}

// One tensor as loaded, remembering where it came from for messages.
struct LoadedTensor {
  TensorView view;  // GGUF name
  std::string hf_name;
  std::filesystem::path file;
};

// Loads model.safetensors, or the shards listed in model.safetensors.index.json.
std::vector<LoadedTensor> load_tensors(const std::filesystem::path& dir, ModelFile& model) {
  std::vector<std::pair<SafetensorsFile, std::optional<std::set<std::string>>>> shards;
  const std::filesystem::path index_path = dir / "model.safetensors.index.json";
  const std::filesystem::path single_path = dir / "model.safetensors";
  std::error_code ec;
  if (std::filesystem::exists(index_path, ec)) {
    const json index = read_json_file(index_path);
    const std::string file = index_path.string();
    if (!index.is_object()) raise<FormatError>("{}: expected a JSON object, found {}", file, index.type_name());
    const auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      raise<FormatError>("{}: field 'weight_map' is missing or not an object", file);
    }
    std::map<std::string, std::set<std::string>> names_by_shard;
    for (const auto& [name, shard] : map_it->items()) {
      if (!shard.is_string()) {
        raise<FormatError>("{}: field 'weight_map.{}': expected a file name, found {}", file, printable(name),
                           printable(shard.dump()));
      }
      const std::string shard_name = shard.get<std::string>();
      // Shards must sit in the model directory; a path could read any file on the machine.
      if (shard_name.empty() || shard_name.find('/') != std::string::npos || shard_name.starts_with(".")) {
        raise<FormatError>("{}: field 'weight_map.{}': expected a file name in the same directory, found '{}'", file,
                           printable(name), printable(shard_name));
      }
      names_by_shard[shard_name].insert(name);
    }
    if (names_by_shard.empty()) raise<FormatError>("{}: field 'weight_map' lists no tensors", file);
    for (auto& [shard_name, names] : names_by_shard) {
      shards.emplace_back(open_safetensors(dir / shard_name), std::move(names));
    }
  } else if (std::filesystem::exists(single_path, ec)) {
    shards.emplace_back(open_safetensors(single_path), std::nullopt);
  } else {
    raise<FormatError>("{}: no model.safetensors or model.safetensors.index.json in the directory", dir.string());
  }

  std::vector<LoadedTensor> tensors;
  std::set<std::string> seen;
  std::vector<std::string> unknown;
  for (auto& [shard, listed] : shards) {
    size_t found_listed = 0;
    for (TensorView& view : shard.tensors) {
      if (listed && !listed->contains(view.name)) continue;  // the index maps it to another shard
      found_listed += listed ? 1 : 0;
      if (!seen.insert(view.name).second) {
        raise<FormatError>("{}: tensor '{}' appears in more than one shard", shard.path.string(), printable(view.name));
      }
      if (view.name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
      LoadedTensor t{view, view.name, shard.path};
      if (std::optional<std::string> name = gguf_name(view.name)) {
        t.view.name = std::move(*name);
      } else {
        unknown.push_back(view.name);
      }
      tensors.push_back(std::move(t));
    }
    if (listed && found_listed != listed->size()) {
      for (const std::string& name : *listed) {
        if (!seen.contains(name)) {
          raise<FormatError>("{}: tensor '{}' is listed in model.safetensors.index.json but missing from the shard",
                             shard.path.string(), printable(name));
        }
      }
    }
    model.mappings.push_back(shard.mapping);
  }
  if (!unknown.empty()) {
    spdlog::warn("{}: {} tensors with names stepdown does not map (first: '{}') keep their Hugging Face names",
                 dir.string(), unknown.size(), printable(unknown.front()));
  }
  return tensors;
}

// Checks that every tensor the architecture needs is present with the shape config.json
// implies, and that no layer index exceeds num_hidden_layers.
void check_shapes(const HfConfig& c, const std::vector<LoadedTensor>& tensors, const std::string& config_file) {
  std::map<std::string, const LoadedTensor*, std::less<>> by_name;
  for (const LoadedTensor& t : tensors) by_name[t.view.name] = &t;
  const int64_t q_rows = c.num_heads * c.head_dim;
  const int64_t kv_rows = c.num_kv_heads * c.head_dim;
  const std::string dims = fmt::format(
      "hidden_size {}, intermediate_size {}, num_attention_heads {}, num_key_value_heads {}, head_dim {}, "
      "vocab_size {}",
      c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size);

  auto expect = [&](const std::string& name, std::vector<int64_t> shape, bool required) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (required) {
        raise<FormatError>("{}: tensor '{}' is missing; {} with model_type {} needs it", config_file, name,
                           "config.json", c.model_type);
      }
      return;
    }
    const LoadedTensor& t = *it->second;
    if (t.view.shape != shape) {
      raise<FormatError>("{}: tensor '{}' ({}): expected shape {} from config.json ({}), found {}", t.file.string(),
                         printable(t.hf_name), name, shape_string(shape), dims, shape_string(t.view.shape));
    }
  };

  expect("token_embd.weight", {c.vocab_size, c.hidden_size}, true);
  expect("output_norm.weight", {c.hidden_size}, true);
  expect("output.weight", {c.vocab_size, c.hidden_size}, !c.tie_word_embeddings);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string blk = fmt::format("blk.{}.", i);
    expect(blk + "attn_norm.weight", {c.hidden_size}, true);
    expect(blk + "attn_q.weight", {q_rows, c.hidden_size}, true);
    expect(blk + "attn_k.weight", {kv_rows, c.hidden_size}, true);
    expect(blk + "attn_v.weight", {kv_rows, c.hidden_size}, true);
    expect(blk + "attn_output.weight", {c.hidden_size, q_rows}, true);
    expect(blk + "attn_q.bias", {q_rows}, c.qkv_bias);
    expect(blk + "attn_k.bias", {kv_rows}, c.qkv_bias);
    expect(blk + "attn_v.bias", {kv_rows}, c.qkv_bias);
    expect(blk + "attn_q_norm.weight", {c.head_dim}, c.qk_norm);
    expect(blk + "attn_k_norm.weight", {c.head_dim}, c.qk_norm);
    expect(blk + "ffn_norm.weight", {c.hidden_size}, true);
    expect(blk + "ffn_gate.weight", {c.intermediate_size, c.hidden_size}, true);
    expect(blk + "ffn_up.weight", {c.intermediate_size, c.hidden_size}, true);
    expect(blk + "ffn_down.weight", {c.hidden_size, c.intermediate_size}, true);
  }
  for (const LoadedTensor& t : tensors) {
    int64_t layer = 0;
    const std::string& name = t.view.name;
    if (!name.starts_with("blk.")) continue;
    std::from_chars(name.data() + 4, name.data() + name.size(), layer);
    if (layer >= c.num_layers) {
      raise<FormatError>("{}: tensor '{}' belongs to layer {}, but config.json has num_hidden_layers {}",
                         t.file.string(), printable(t.hf_name), layer, c.num_layers);
    }
  }
}

}  // namespace

bool looks_like_hf_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_directory(dir, ec) && std::filesystem::is_regular_file(dir / "config.json", ec);
}

ModelFile open_hf_directory(const std::filesystem::path& dir) {
  const std::filesystem::path config_path = dir / "config.json";
  const std::string config_file = config_path.string();
  const json config = read_json_file(config_path);
  const HfConfig c = parse_config(config, config_file);

  ModelFile model;
  model.format = ModelFormat::SAFETENSORS_HF;
  model.path = dir;
  fill_metadata(c, model.metadata);
  add_rope_scaling(config, c, config_file, model.metadata);
  for (const char* field : {"bos_token_id", "eos_token_id"}) {
    const auto it = config.find(field);
    if (it != config.end() && it->is_number_unsigned()) {
      model.metadata.set_u32(fmt::format("tokenizer.ggml.{}", field), it->get<uint32_t>());
    }
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir / "tokenizer.json", ec)) {
    model.metadata.set_string(std::string(kTokenizerPathKey), (dir / "tokenizer.json").string());
  }

  std::vector<LoadedTensor> tensors = load_tensors(dir, model);
  check_shapes(c, tensors, config_file);
  model.tensors.reserve(tensors.size());
  for (LoadedTensor& t : tensors) {
    // A tied model reads its classifier from token_embd; a stray lm_head copy is dropped
    // so that "output.weight absent" always means tied.
    if (c.tie_word_embeddings && t.view.name == "output.weight") continue;
    model.tensors.push_back(std::move(t.view));
  }
  return model;
}

}  // namespace stepdown::io
