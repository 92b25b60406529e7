#include "stepdown/quant/hf_vocab.h"

#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/text/pipeline.h"

namespace stepdown::quant {
namespace {

// llama.cpp's llama_token_type values (llama-vocab.h).
constexpr int32_t kTypeNormal = 1, kTypeControl = 3, kTypeUserDefined = 4;

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) raise<IoError>("{}: cannot open", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    raise<FormatError>("{}: invalid JSON: {}", path.string(), e.what());
  }
}

// Collects the Split regexes and whether a ByteLevel step is present, through Sequences.
void scan_pre_tokenizer(const nlohmann::json& node, std::vector<std::string>& regexes, bool& byte_level) {
  if (!node.is_object()) return;
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    for (const nlohmann::json& step : node.value("pretokenizers", nlohmann::json::array())) {
      scan_pre_tokenizer(step, regexes, byte_level);
    }
  } else if (type == "Split" && node.contains("pattern") && node["pattern"].contains("Regex")) {
    regexes.push_back(node["pattern"]["Regex"].get<std::string>());
  } else if (type == "ByteLevel") {
    byte_level = true;
  }
}

// A special token given in tokenizer_config.json as a string or as {"content": ...}.
std::optional<std::string> config_token(const nlohmann::json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const nlohmann::json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return std::nullopt;
}

// True when the post-processor's single-sequence template starts with the BOS token, as
// Llama 3's TemplateProcessing does. GGUF stores this as tokenizer.ggml.add_bos_token.
bool template_adds_bos(const nlohmann::json& node, const std::string& bos) {
  if (!node.is_object()) return false;
  if (node.value("type", "") == "Sequence") {
    for (const nlohmann::json& step : node.value("processors", nlohmann::json::array())) {
      if (template_adds_bos(step, bos)) return true;
    }
    return false;
  }
  if (node.value("type", "") != "TemplateProcessing" || !node.contains("single")) return false;
  const nlohmann::json& single = node["single"];
  return single.is_array() && !single.empty() && single[0].contains("SpecialToken") &&
         single[0]["SpecialToken"].value("id", "") == bos;
}

}  // namespace

void embed_tokenizer_json(const std::filesystem::path& tokenizer_json, io::Metadata& metadata) {
  const nlohmann::json tok = read_json(tokenizer_json);
  const std::string name = tokenizer_json.string();
  const nlohmann::json& model = tok.at("model");
  std::vector<std::string> regexes;
  bool byte_level = false;
  scan_pre_tokenizer(tok.value("pre_tokenizer", nlohmann::json()), regexes, byte_level);
  if (model.value("type", "") != "BPE" || !byte_level) {
    raise<Unsupported>("{}: only byte-level BPE tokenizers can be embedded in GGUF (found model type '{}'{})", name,
                       model.value("type", ""), byte_level ? "" : " without a ByteLevel pre-tokenizer");
  }

  std::map<int64_t, std::string> by_id;
  for (const auto& [piece, id] : model.at("vocab").items()) by_id[id.get<int64_t>()] = piece;
  std::map<int64_t, int32_t> added_type;
  for (const nlohmann::json& added : tok.value("added_tokens", nlohmann::json::array())) {
    const int64_t id = added.at("id").get<int64_t>();
    by_id[id] = added.at("content").get<std::string>();
    added_type[id] = added.value("special", false) ? kTypeControl : kTypeUserDefined;
  }
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (const auto& [id, piece] : by_id) {
    if (id != static_cast<int64_t>(tokens.size())) {
      raise<FormatError>("{}: token ids are not contiguous: id {} follows {} tokens", name, id, tokens.size());
    }
    tokens.push_back(piece);
    const auto it = added_type.find(id);
    types.push_back(it != added_type.end() ? it->second : kTypeNormal);
  }

  std::vector<std::string> merges;
  for (const nlohmann::json& merge : model.value("merges", nlohmann::json::array())) {
    if (merge.is_string()) {
      merges.push_back(merge.get<std::string>());
    } else if (merge.is_array() && merge.size() == 2) {
      merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
    } else {
      raise<FormatError>("{}: model.merges entry {} is neither \"a b\" nor [\"a\", \"b\"]", name, merge.dump());
    }
  }

  std::string pre = "gpt2";
  if (!regexes.empty()) {
    // NOTE: only Llama 3's split regex is recognized; other regexes are written as
    // "default", which llama.cpp loads with a warning and splits text differently.
    pre = regexes.size() == 1 && regexes[0] == text::kLlama3Pattern ? "llama-bpe" : "default";
  }

  const auto id_of = [&](const std::string& piece) -> std::optional<uint32_t> {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] == piece) return static_cast<uint32_t>(i);
    }
    return std::nullopt;
  };
  metadata.set_string("tokenizer.ggml.model", "gpt2");
  metadata.set_string("tokenizer.ggml.pre", pre);
  const std::filesystem::path config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    const nlohmann::json config = read_json(config_path);
    if (const auto bos = config_token(config, "bos_token"); bos && id_of(*bos)) {
      metadata.set_u32("tokenizer.ggml.bos_token_id", *id_of(*bos));
      if (template_adds_bos(tok.value("post_processor", nlohmann::json()), *bos)) {
        metadata.set_bool("tokenizer.ggml.add_bos_token", true);
      }
    }
    if (const auto eos = config_token(config, "eos_token"); eos && id_of(*eos)) {
      metadata.set_u32("tokenizer.ggml.eos_token_id", *id_of(*eos));
    }
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
      metadata.set_bool("tokenizer.ggml.add_bos_token", config["add_bos_token"].get<bool>());
    }
    if (config.contains("chat_template") && config["chat_template"].is_string()) {
      metadata.set_string("tokenizer.chat_template", config["chat_template"].get<std::string>());
    }
  }
  metadata.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
  metadata.set_i32_array("tokenizer.ggml.token_type", types);
  metadata.set_string_array("tokenizer.ggml.merges", std::move(merges));
}

}  // namespace stepdown::quant
