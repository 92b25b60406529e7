#include "stepdown/quant/quantize_model.h"

#include <chrono>
#include <ctime>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/core/utc_time.h"
#include "stepdown/io/gguf_container.h"
#include "stepdown/io/gguf_writer.h"
#include "stepdown/io/model_file.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/hf_vocab.h"
#include "stepdown/quant/llama2c_vocab.h"
#include "stepdown/quant/method.h"
#include "stepdown/quant/quantize_tensor.h"
#include "stepdown/core/sha256.h"

namespace stepdown::quant {
namespace {

// GGUF llama.cpp reads general.quantization_version for block formats; ggml's current
// value (GGML_QNT_VERSION) is 2.
constexpr uint32_t kQuantizationVersion = 2;

// Source keys that describe the old file rather than the model: stepdown's own load-time
// keys, the container keys of stepdown-format tensors (the GGUF writer writes them anew for
// the output's tensors) and the keys set below.
bool is_rewritten_key(const std::string& key) {
  return key.starts_with("stepdown.") || key == "general.file_type" || key == "general.quantization_version" ||
         key == "general.alignment";
}

// Bytes of tensor `t` stored in `dtype`, counting a per-row header once per row.
uint64_t tensor_bytes(DType dtype, const TensorView& t) {
  return static_cast<uint64_t>(t.rows()) * dtype_bytes(dtype, t.cols());
}

std::vector<float> dequantize_tensor(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r) kernels::dequantize_row(t.dtype, t.row(r), out.data() + r * t.cols(), t.cols());
  return out;
}

// Reorders the rows of a q or k projection W (n_heads * head_dim, cols) from the neox
// layout, which pairs dimensions i and i + head_dim/2 for RoPE, to GGUF llama's
// interleaved layout, which pairs 2i and 2i+1. Output row h*head_dim + 2i + t comes from
// input row h*head_dim + t*head_dim/2 + i.
std::vector<float> neox_to_interleaved(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t n_heads) {
  const int64_t head_dim = rows / n_heads;
  const int64_t half = head_dim / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t t = 0; t < 2; ++t) {
        const float* src = w.data() + (h * head_dim + t * half + i) * cols;
        std::copy(src, src + cols, out.data() + (h * head_dim + 2 * i + t) * cols);
      }
    }
  }
  return out;
}

// Rows of a row-major byte matrix (rows, row_bytes) in the order neox_to_interleaved
// gives f32 rows, for method outputs that arrive already packed.
std::vector<std::byte> neox_to_interleaved_rows(const std::vector<std::byte>& bytes, int64_t rows, int64_t n_heads) {
  const int64_t row_bytes = static_cast<int64_t>(bytes.size()) / rows;
  const int64_t head_dim = rows / n_heads;
  const int64_t half = head_dim / 2;
  std::vector<std::byte> out(bytes.size());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t t = 0; t < 2; ++t) {
        const std::byte* src = bytes.data() + (h * head_dim + t * half + i) * row_bytes;
        std::copy(src, src + row_bytes, out.data() + (h * head_dim + 2 * i + t) * row_bytes);
      }
    }
  }
  return out;
}

io::Metadata output_metadata(const io::ModelFile& model, const Scheme& scheme) {
  io::Metadata out;
  for (const auto& [key, value] : model.metadata.entries()) {
    if (!is_rewritten_key(key)) out.set(key, value);
  }
  if (!out.contains("tokenizer.ggml.tokens")) {
    const auto tokenizer = model.metadata.get_string(io::kTokenizerPathKey);
    if (tokenizer && std::filesystem::path(*tokenizer).extension() == ".bin") {
      const std::string arch = model.metadata.require_string("general.architecture");
      embed_llama2c_tokenizer(*tokenizer, model.metadata.require_int(arch + ".vocab_size"), out);
    } else if (tokenizer && std::filesystem::path(*tokenizer).extension() == ".json") {
      try {
        embed_tokenizer_json(*tokenizer, out);
      } catch (const Unsupported& e) {
        spdlog::warn("{}; the output carries no vocabulary and llama.cpp will not load it", e.what());
      }
    } else {
      spdlog::warn("{}: no tokenizer to embed (give --tokenizer); llama.cpp will not load the output",
                   model.path.string());
    }
  }
  out.set_u32("general.file_type", scheme.gguf_file_type);
  out.set_u32("general.quantization_version", kQuantizationVersion);
  out.set_u32("general.alignment", 32);
  return out;
}

}  // namespace

std::filesystem::path manifest_path_for(const std::filesystem::path& output) {
  return std::filesystem::path(output.string() + ".manifest.json");
}

QuantizeResult quantize_model(const QuantizeOptions& options) {
  check_output_path(options.output);
  const Scheme* scheme = find_scheme(options.scheme);
  if (scheme == nullptr) {
    std::string known;
    for (const std::string& n : scheme_names()) known += (known.empty() ? "" : ", ") + n;
    raise<InvalidArgument>("--scheme '{}' is unknown (known: {})", options.scheme, known);
  }
  std::vector<TensorOverride> overrides;
  for (const std::string& text : options.overrides) overrides.push_back(parse_override(text));

  io::OpenOptions open_options;
  open_options.tokenizer_path = options.tokenizer;
  const io::ModelFile model = io::open_model_file(options.model, open_options);
  std::vector<TensorPlan> plans = plan_tensors(model.tensors, *scheme, overrides);

  const QuantMethod* method = nullptr;
  if (options.method != "rtn") {
    method = find_quant_method(options.method);
    if (method == nullptr) {
      std::string known;
      for (const std::string& n : quant_method_names()) known += (known.empty() ? "" : ", ") + n;
      raise<InvalidArgument>("--method '{}' is unknown (known: {})", options.method, known);
    }
  } else if (!options.method_params.empty()) {
    raise<InvalidArgument>("--method-param is given but --method is rtn, which takes no parameters");
  }

  const std::string arch = model.metadata.get_string("general.architecture").value_or("");
  const bool permute_rope = arch == "llama" && model.metadata.get_string(io::kRopeLayoutKey).value_or("") == "neox";
  const int64_t n_heads = permute_rope ? model.metadata.require_int("llama.attention.head_count") : 0;
  const int64_t n_kv_heads =
      permute_rope ? model.metadata.get_int("llama.attention.head_count_kv").value_or(n_heads) : 0;

  ThreadPool pool(options.threads);
  MethodOutput prepared;
  if (method != nullptr) {
    spdlog::info("{}: running method '{}'", options.model.string(), method->name);
    prepared = method->run(MethodContext{model, plans, options, pool});
    for (size_t i = 0; i < plans.size(); ++i) {
      const auto it = prepared.tensors.find(model.tensors[i].name);
      if (it != prepared.tensors.end() && it->second.format != nullptr) {
        plans[i].format = it->second.format;
        plans[i].note = "method " + method->name;
      }
    }
  }

  QuantizeResult result;
  result.output = options.output;
  result.manifest = manifest_path_for(options.output);
  std::vector<io::GgufTensorInfo> infos;
  int64_t stepdown_format_tensors = 0;
  // One warning per distinct fallback, since a model repeats the same rows in every block.
  std::map<std::string, std::pair<std::string, int64_t>> fallbacks;  // "-> format (note)": first tensor, count
  for (size_t i = 0; i < plans.size(); ++i) {
    const TensorView& t = model.tensors[i];
    if (!plans[i].note.empty() && plans[i].note.starts_with("fallback")) {
      const auto entry = fallbacks.try_emplace(fmt::format("-> {} ({})", plans[i].format->name, plans[i].note),
                                               t.name + " " + shape_string(t.shape), 0).first;
      ++entry->second.second;
    }
    infos.push_back({t.name, plans[i].format->dtype, t.shape});
    if (is_stepdown_format(plans[i].format->dtype)) ++stepdown_format_tensors;
    const int64_t params = t.numel();
    result.tensors.push_back({t.name, t.shape, std::string(dtype_name(t.dtype)), plans[i].format->name,
                              plans[i].note, params, tensor_bytes(plans[i].format->dtype, t)});
    result.params += params;
    result.tensor_bytes += result.tensors.back().bytes;
  }
  for (const auto& [change, first] : fallbacks) {
    spdlog::warn("{} {}: {} tensor(s), the first {}", options.model.string(), change, first.second, first.first);
  }
  if (stepdown_format_tensors > 0) {
    spdlog::warn("{}: {} tensors use stepdown's own formats, stored in stepdown's GGUF container; stepdown runs "
                 "the output, llama.cpp does not",
                 options.output.string(), stepdown_format_tensors);
  }

  Progress progress("quantize", static_cast<int64_t>(plans.size()));
  const io::Metadata metadata = output_metadata(model, *scheme);
  io::write_gguf(options.output, metadata, infos, [&](size_t index) {
    const TensorView& t = model.tensors[index];
    const bool permute = permute_rope && t.shape.size() == 2 &&
                         (t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_k.weight"));
    const int64_t heads = t.name.ends_with(".attn_q.weight") ? n_heads : n_kv_heads;
    const auto method_tensor = prepared.tensors.find(t.name);
    if (method_tensor != prepared.tensors.end() && method_tensor->second.bytes) {
      const uint64_t expected = tensor_bytes(plans[index].format->dtype, t);
      if (method_tensor->second.bytes->size() != expected) {
        raise<InvalidArgument>("method '{}' gave {} bytes for {} but {} {} needs {}", options.method,
                               method_tensor->second.bytes->size(), t.name, plans[index].format->name,
                               shape_string(t.shape), expected);
      }
      progress.update(static_cast<int64_t>(index) + 1, t.name);
      return permute ? neox_to_interleaved_rows(*method_tensor->second.bytes, t.rows(), heads)
                     : *method_tensor->second.bytes;
    }
    const bool method_values = method_tensor != prepared.tensors.end() && !method_tensor->second.values.empty();
    std::vector<float> values = method_values ? method_tensor->second.values : dequantize_tensor(t);
    if (static_cast<int64_t>(values.size()) != t.numel()) {
      raise<InvalidArgument>("method '{}' gave {} values for {} {}, expected {}", options.method, values.size(),
                             t.name, shape_string(t.shape), t.numel());
    }
    if (permute) values = neox_to_interleaved(values, t.rows(), t.cols(), heads);
    std::vector<std::byte> bytes = quantize_tensor(t.name, *plans[index].format, values, t.rows(), t.cols(), pool);
    progress.update(static_cast<int64_t>(index) + 1, t.name);
    return bytes;
  });
  progress.finish();

  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorRecord& r : result.tensors) {
    nlohmann::json entry = {{"name", r.name}, {"shape", r.shape},   {"source_type", r.source_type},
                            {"type", r.type}, {"params", r.params}, {"bytes", r.bytes}};
    if (!r.note.empty()) entry["note"] = r.note;
    tensors.push_back(std::move(entry));
  }
  result.manifest_json = {
      {"tool", "stepdown quantize"},
      {"tool_version", STEPDOWN_VERSION},
      {"created", utc_now()},
      {"source", {{"path", options.model.string()}, {"sha256", sha256_path(options.model)},
                  {"format", std::string(io::model_format_name(model.format))}}},
      {"output", {{"path", options.output.filename().string()}, {"format", "gguf"},
                  {"sha256", sha256_path(options.output)}}},
      {"runs_in_llama_cpp", stepdown_format_tensors == 0},
      {"method", method != nullptr ? method->name : std::string("rtn")},
      {"scheme", scheme->name},
      {"overrides", options.overrides},
      {"params", result.params},
      {"tensor_bytes", result.tensor_bytes},
      {"bits_per_weight", result.params > 0 ? 8.0 * static_cast<double>(result.tensor_bytes) / result.params : 0.0},
      {"tensors", std::move(tensors)},
  };
  if (stepdown_format_tensors > 0) {
    result.manifest_json["output"]["stepdown_container_version"] = io::kContainerVersion;
  }
  if (options.tokenizer) result.manifest_json["tokenizer"] = options.tokenizer->string();
  if (method != nullptr) result.manifest_json["method_details"] = prepared.manifest;
  write_file_atomic(result.manifest, result.manifest_json.dump(2) + "\n");
  return result;
}

}  // namespace stepdown::quant
