#include "stepdown/io/model_summary.h"

#include <fmt/format.h>

namespace stepdown::io {

namespace {

// Hyper-parameter keys shown by inspect, after "{arch}.".
constexpr std::string_view kArchKeys[] = {
    "block_count",
    "embedding_length",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.sliding_window",
    "context_length",
    "vocab_size",
    "rope.dimension_count",
    "rope.freq_base",
    "rope.scaling.type",
    "rope.scaling.factor",
    "attention.layer_norm_rms_epsilon",
};

std::string value_text(const MetaValue& value) {
  if (const auto* u = std::get_if<uint64_t>(&value.value)) return std::to_string(*u);
  if (const auto* i = std::get_if<int64_t>(&value.value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value.value)) return fmt::format("{:g}", *d);
  if (const auto* b = std::get_if<bool>(&value.value)) return *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&value.value)) return *s;
  const auto& array = std::get<MetaArray>(value.value);
  return fmt::format("[{} x {}]", array.values.size(), meta_type_name(array.element_type));
}

nlohmann::json value_json(const MetaValue& value) {
  if (const auto* u = std::get_if<uint64_t>(&value.value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&value.value)) return *i;
  if (const auto* d = std::get_if<double>(&value.value)) return *d;
  if (const auto* b = std::get_if<bool>(&value.value)) return *b;
  // Strings from a file need not be UTF-8; nlohmann::json raises on invalid UTF-8 at dump
  // time, so the dump below replaces invalid bytes.
  if (const auto* s = std::get_if<std::string>(&value.value)) return *s;
  const auto& array = std::get<MetaArray>(value.value);
  return {{"type", "array"},
          {"element_type", std::string(meta_type_name(array.element_type))},
          {"length", array.values.size()}};
}

std::string human_bytes(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1 << 30));
  if (bytes >= (uint64_t{1} << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= 1024) return fmt::format("{:.2f} KiB", static_cast<double>(bytes) / 1024);
  return fmt::format("{} B", bytes);
}

std::string human_count(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} B", static_cast<double>(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", static_cast<double>(n) / 1e6);
  if (n >= 1'000) return fmt::format("{:.2f} K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

double bits_per_weight(uint64_t bytes, int64_t parameters) {
  return parameters > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(parameters) : 0.0;
}

}  // namespace

ModelSummary summarize_model(const ModelFile& model) {
  ModelSummary s;
  s.path = model.path.string();
  s.format = std::string(model_format_name(model.format));
  if (const MetaValue* arch = model.metadata.find("general.architecture")) s.architecture = value_text(*arch);
  for (std::string_view key : kArchKeys) {
    if (const MetaValue* value = model.metadata.find(s.architecture + "." + std::string(key))) {
      s.hyperparameters.emplace_back(std::string(key), *value);
    }
  }
  // GGUF files of some architectures (gemma3) give the vocabulary size only as the
  // length of the token list.
  const bool has_vocab_size = model.metadata.contains(s.architecture + ".vocab_size");
  const MetaValue* tokens = model.metadata.find("tokenizer.ggml.tokens");
  if (!has_vocab_size && tokens != nullptr && tokens->type == MetaType::ARRAY) {
    const uint64_t n = std::get<MetaArray>(tokens->value).values.size();
    s.hyperparameters.emplace_back("vocab_size", MetaValue{MetaType::UINT64, n});
  }
  for (std::string_view key : {kRopeLayoutKey, kTokenizerPathKey}) {
    if (const MetaValue* value = model.metadata.find(key)) s.hyperparameters.emplace_back(key, *value);
  }

  for (const TensorView& t : model.tensors) {
    TensorSummary ts{t.name, t.dtype, t.shape, t.numel(), t.nbytes, bits_per_weight(t.nbytes, t.numel())};
    DTypeTotals& totals = s.by_dtype[std::string(dtype_name(t.dtype))];
    totals.tensors += 1;
    totals.parameters += ts.parameters;
    totals.bytes += ts.bytes;
    s.parameters += ts.parameters;
    s.bytes += ts.bytes;
    s.tensors.push_back(std::move(ts));
  }
  s.bits_per_weight = bits_per_weight(s.bytes, s.parameters);
  return s;
}

std::string format_summary(const ModelSummary& s) {
  std::string out;
  out += fmt::format("file:          {}\n", s.path);
  out += fmt::format("format:        {}\n", s.format);
  out += fmt::format("architecture:  {}\n", s.architecture.empty() ? "(not given)" : s.architecture);
  for (const auto& [key, value] : s.hyperparameters) out += fmt::format("  {:<34} {}\n", key, value_text(value));
  out += fmt::format("parameters:    {} ({})\n", human_count(s.parameters), s.parameters);
  out += fmt::format("tensor bytes:  {} ({}), {:.3f} bits per weight\n", human_bytes(s.bytes), s.bytes,
                     s.bits_per_weight);
  out += fmt::format("tensors:       {}\n", s.tensors.size());
  for (const auto& [dtype, totals] : s.by_dtype) {
    out += fmt::format("  {:<6} {:>5} tensors {:>14} parameters {:>12}  {:.3f} bpw\n", dtype, totals.tensors,
                       totals.parameters, human_bytes(totals.bytes), bits_per_weight(totals.bytes, totals.parameters));
  }
  out += "\n";
  size_t name_width = 4;
  for (const TensorSummary& t : s.tensors) name_width = std::max(name_width, t.name.size());
  out += fmt::format("{:<{}}  {:<6} {:<20} {:>12} {:>8}\n", "name", name_width, "dtype", "shape", "bytes", "bpw");
  for (const TensorSummary& t : s.tensors) {
    out += fmt::format("{:<{}}  {:<6} {:<20} {:>12} {:>8.3f}\n", t.name, name_width, dtype_name(t.dtype),
                       shape_string(t.shape), t.bytes, t.bits_per_weight);
  }
  return out;
}

nlohmann::json summary_to_json(const ModelSummary& s, const Metadata& metadata) {
  nlohmann::json j;
  j["path"] = s.path;
  j["format"] = s.format;
  j["architecture"] = s.architecture;
  j["hyperparameters"] = nlohmann::json::object();
  for (const auto& [key, value] : s.hyperparameters) j["hyperparameters"][key] = value_json(value);
  j["parameters"] = s.parameters;
  j["bytes"] = s.bytes;
  j["bits_per_weight"] = s.bits_per_weight;
  j["dtypes"] = nlohmann::json::object();
  for (const auto& [dtype, totals] : s.by_dtype) {
    j["dtypes"][dtype] = {{"tensors", totals.tensors},
                          {"parameters", totals.parameters},
                          {"bytes", totals.bytes},
                          {"bits_per_weight", bits_per_weight(totals.bytes, totals.parameters)}};
  }
  j["tensors"] = nlohmann::json::array();
  for (const TensorSummary& t : s.tensors) {
    j["tensors"].push_back({{"name", t.name},
                            {"dtype", std::string(dtype_name(t.dtype))},
                            {"shape", t.shape},
                            {"parameters", t.parameters},
                            {"bytes", t.bytes},
                            {"bits_per_weight", t.bits_per_weight}});
  }
  j["metadata"] = nlohmann::json::object();
  for (const auto& [key, value] : metadata.entries()) j["metadata"][key] = value_json(value);
  return j;
}

}  // namespace stepdown::io
