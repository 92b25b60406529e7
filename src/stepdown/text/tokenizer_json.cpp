// Loading tokenizer.json (Hugging Face tokenizers' serialized pipeline) and the
// tokenizer_config.json beside it.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/text/bpe_tokenizer.h"

namespace stepdown::text {
namespace {

using nlohmann::json;

// Context for error messages: the file and the JSON path being read.
struct Reader {
  std::string source;
  bool legacy = true;  // tokenizer_config.json "legacy"

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    raise<FormatError>("{}: {}: {}", source, where, what);
  }

  const json& field(const json& node, const char* key, const std::string& where) const {
    if (!node.is_object() || !node.contains(key)) fail(where, fmt::format("missing field '{}'", key));
    return node.at(key);
  }

  std::string type_of(const json& node, const std::string& where) const {
    const json& type = field(node, "type", where);
    if (!type.is_string()) fail(where + ".type", "expected a string");
    return type.get<std::string>();
  }

  // A {"String": s} or {"Regex": r} pattern as a PCRE2 regex.
  std::string pattern_regex(const json& pattern, const std::string& where) const {
    if (pattern.contains("Regex")) return pattern.at("Regex").get<std::string>();
    if (pattern.contains("String")) return escape_regex(pattern.at("String").get<std::string>());
    fail(where, "expected a pattern object with 'String' or 'Regex'");
  }

  static std::string escape_regex(const std::string& literal) {
    std::string out;
    for (char c : literal) {
      if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
    return out;
  }

  static PrependScheme prepend_scheme(const json& node) {
    if (node.contains("prepend_scheme")) {
      const std::string scheme = node.at("prepend_scheme").get<std::string>();
      if (scheme == "first") return PrependScheme::First;
      if (scheme == "never") return PrependScheme::Never;
      return PrependScheme::Always;
    }
    // Files older than prepend_scheme carry add_prefix_space instead.
    return node.value("add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
  }

  std::unique_ptr<Normalizer> normalizer(const json& node, const std::string& where) const {
    const std::string type = type_of(node, where);
    if (type == "Sequence") {
      std::vector<std::unique_ptr<Normalizer>> steps;
      const json& list = field(node, "normalizers", where);
      for (size_t i = 0; i < list.size(); ++i) steps.push_back(normalizer(list[i], fmt::format("{}.normalizers[{}]", where, i)));
      return make_normalizer_sequence(std::move(steps));
    }
    if (type == "Prepend") {
      // With legacy false, transformers gives text after a special token no dummy prefix.
      return make_prepend_normalizer(field(node, "prepend", where).get<std::string>(), !legacy);
    }
    if (type == "Replace") {
      const json& pattern = field(node, "pattern", where);
      const bool is_regex = pattern.contains("Regex");
      std::string text = is_regex ? pattern.at("Regex").get<std::string>() : pattern.value("String", "");
      return make_replace_normalizer(std::move(text), is_regex, field(node, "content", where).get<std::string>());
    }
    if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") return make_unicode_normalizer(type);
    if (type == "Strip") return make_strip_normalizer(node.value("strip_left", true), node.value("strip_right", true));
    if (type == "Lowercase") return make_lowercase_normalizer();
    raise<Unsupported>("{}: {}: normalizer type '{}' is not supported", source, where, type);
  }

  std::unique_ptr<PreTokenizer> pre_tokenizer(const json& node, const std::string& where) const {
    const std::string type = type_of(node, where);
    if (type == "Sequence") {
      std::vector<std::unique_ptr<PreTokenizer>> steps;
      const json& list = field(node, "pretokenizers", where);
      for (size_t i = 0; i < list.size(); ++i) {
        steps.push_back(pre_tokenizer(list[i], fmt::format("{}.pretokenizers[{}]", where, i)));
      }
      return make_pre_tokenizer_sequence(std::move(steps));
    }
    if (type == "Split") {
      const std::string behavior_name = field(node, "behavior", where).get<std::string>();
      SplitBehavior behavior = SplitBehavior::Isolated;
      if (behavior_name == "Removed") {
        behavior = SplitBehavior::Removed;
      } else if (behavior_name == "MergedWithPrevious") {
        behavior = SplitBehavior::MergedWithPrevious;
      } else if (behavior_name == "MergedWithNext") {
        behavior = SplitBehavior::MergedWithNext;
      } else if (behavior_name == "Contiguous") {
        behavior = SplitBehavior::Contiguous;
      } else if (behavior_name != "Isolated") {
        fail(where + ".behavior", fmt::format("unknown split behavior '{}'", behavior_name));
      }
      return make_split_pre_tokenizer(pattern_regex(field(node, "pattern", where), where + ".pattern"), behavior,
                                      node.value("invert", false));
    }
    if (type == "ByteLevel") {
      return make_byte_level_pre_tokenizer(node.value("add_prefix_space", false), node.value("use_regex", true));
    }
    if (type == "Digits") return make_digits_pre_tokenizer(node.value("individual_digits", false));
    if (type == "Metaspace") {
      PrependScheme scheme = prepend_scheme(node);
      if (!legacy && scheme == PrependScheme::Always) scheme = PrependScheme::First;
      return make_metaspace_pre_tokenizer(node.value("replacement", "\xE2\x96\x81"), scheme, node.value("split", true));
    }
    raise<Unsupported>("{}: {}: pre-tokenizer type '{}' is not supported", source, where, type);
  }

  std::unique_ptr<Decoder> decoder(const json& node, const std::string& where) const {
    const std::string type = type_of(node, where);
    if (type == "Sequence") {
      std::vector<std::unique_ptr<Decoder>> steps;
      const json& list = field(node, "decoders", where);
      for (size_t i = 0; i < list.size(); ++i) steps.push_back(decoder(list[i], fmt::format("{}.decoders[{}]", where, i)));
      return make_decoder_sequence(std::move(steps));
    }
    if (type == "ByteLevel") return make_byte_level_decoder();
    if (type == "Replace") {
      const json& pattern = field(node, "pattern", where);
      if (!pattern.contains("String")) fail(where + ".pattern", "only String patterns are supported in decoders");
      return make_replace_decoder(pattern.at("String").get<std::string>(), field(node, "content", where).get<std::string>());
    }
    if (type == "ByteFallback") return make_byte_fallback_decoder();
    if (type == "Fuse") return make_fuse_decoder();
    if (type == "Strip") {
      return make_strip_decoder(field(node, "content", where).get<std::string>(), node.value("start", 0),
                                node.value("stop", 0));
    }
    if (type == "Metaspace") return make_metaspace_decoder(node.value("replacement", "\xE2\x96\x81"), prepend_scheme(node));
    raise<Unsupported>("{}: {}: decoder type '{}' is not supported", source, where, type);
  }

  // Fills prefix_ids and suffix_ids from a post-processor for single sequences.
  void post_processor(const json& node, const std::string& where, BpeSpec& spec) const {
    const std::string type = type_of(node, where);
    if (type == "Sequence") {
      const json& list = field(node, "processors", where);
      for (size_t i = 0; i < list.size(); ++i) post_processor(list[i], fmt::format("{}.processors[{}]", where, i), spec);
      return;
    }
    if (type == "ByteLevel") return;  // only adjusts offsets
    if (type == "TemplateProcessing") {
      const json& special_tokens = field(node, "special_tokens", where);
      bool after_sequence = false;
      for (const json& item : field(node, "single", where)) {
        if (item.contains("Sequence")) {
          after_sequence = true;
          continue;
        }
        const std::string name = field(field(item, "SpecialToken", where + ".single"), "id", where + ".single").get<std::string>();
        if (!special_tokens.contains(name)) fail(where + ".special_tokens", fmt::format("missing entry '{}'", name));
        for (const json& id : field(special_tokens.at(name), "ids", where + ".special_tokens." + name)) {
          (after_sequence ? spec.suffix_ids : spec.prefix_ids).push_back(id.get<TokenId>());
        }
      }
      return;
    }
    if (type == "BertProcessing" || type == "RobertaProcessing") {
      spec.prefix_ids.push_back(field(node, "cls", where).at(1).get<TokenId>());
      spec.suffix_ids.push_back(field(node, "sep", where).at(1).get<TokenId>());
      return;
    }
    raise<Unsupported>("{}: {}: post-processor type '{}' is not supported", source, where, type);
  }
};

// A token named in tokenizer_config.json, as a string or as {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& value = config.at(key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value.at("content").get<std::string>();
  return std::nullopt;
}

bool contains_type(const json& node, const std::string& type) {
  if (node.is_object()) {
    if (node.value("type", "") == type) return true;
    for (const auto& [key, child] : node.items()) {
      if (contains_type(child, type)) return true;
    }
  } else if (node.is_array()) {
    for (const json& child : node) {
      if (contains_type(child, type)) return true;
    }
  }
  return false;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("cannot open {}: {}", path.string(), std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

std::unique_ptr<Tokenizer> parse_tokenizer_json(std::string_view tokenizer_json, std::string_view config_json,
                                                std::string_view source) {
  Reader reader{std::string(source)};
  json root, config = json::object();
  try {
    root = json::parse(tokenizer_json);
    if (!config_json.empty()) config = json::parse(config_json);
  } catch (const json::parse_error& e) {
    raise<FormatError>("{}: invalid JSON: {}", source, e.what());
  }
  if (config.contains("legacy") && config.at("legacy").is_boolean()) reader.legacy = config.at("legacy").get<bool>();

  try {
    const json& model = reader.field(root, "model", "tokenizer.json");
    const std::string model_type = model.value("type", "BPE");
    if (model_type != "BPE") {
      raise<Unsupported>("{}: model.type is '{}'; only BPE tokenizers are supported", source, model_type);
    }
    if (!model.value("continuing_subword_prefix", json()).is_null() || !model.value("end_of_word_suffix", json()).is_null()) {
      raise<Unsupported>("{}: BPE continuing_subword_prefix and end_of_word_suffix are not supported", source);
    }

    BpeSpec spec;
    const json& vocab = reader.field(model, "vocab", "model");
    TokenId max_id = -1;
    for (const auto& [piece, id] : vocab.items()) max_id = std::max(max_id, id.get<TokenId>());
    for (const json& token : root.value("added_tokens", json::array())) max_id = std::max(max_id, token.at("id").get<TokenId>());
    spec.pieces.resize(static_cast<size_t>(max_id + 1));
    for (const auto& [piece, id] : vocab.items()) spec.pieces[id.get<TokenId>()] = piece;

    for (const json& merge : reader.field(model, "merges", "model")) {
      if (merge.is_array() && merge.size() == 2) {
        spec.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
        continue;
      }
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ', 1);
      if (space == std::string::npos) reader.fail("model.merges", fmt::format("merge '{}' has no space", text));
      spec.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    }
    spec.merge_order = MergeOrder::Rank;
    spec.byte_fallback = model.value("byte_fallback", false);
    spec.fuse_unknown = model.value("fuse_unk", false);
    spec.ignore_merges = model.value("ignore_merges", false);
    if (const json unk = model.value("unk_token", json()); unk.is_string()) {
      const auto it = vocab.find(unk.get<std::string>());
      if (it != vocab.end()) spec.unknown_id = it->get<TokenId>();
    }

    for (const json& token : root.value("added_tokens", json::array())) {
      AddedToken added;
      added.content = token.at("content").get<std::string>();
      added.id = token.at("id").get<TokenId>();
      added.special = token.value("special", false);
      added.lstrip = token.value("lstrip", false);
      added.rstrip = token.value("rstrip", false);
      added.normalized = token.value("normalized", !added.special);
      added.single_word = token.value("single_word", false);
      spec.pieces[added.id] = added.content;
      spec.added_tokens.push_back(std::move(added));
    }
    // NOTE: added tokens with normalized=true are matched on the raw text, where
    // tokenizers matches them after normalization; the two differ only when the
    // normalizer rewrites the token's own characters.

    if (const json& node = root.value("normalizer", json()); !node.is_null()) spec.normalizer = reader.normalizer(node, "normalizer");
    if (const json& node = root.value("pre_tokenizer", json()); !node.is_null()) {
      spec.pre_tokenizer = reader.pre_tokenizer(node, "pre_tokenizer");
    }
    if (const json& node = root.value("decoder", json()); !node.is_null()) spec.decoder = reader.decoder(node, "decoder");
    const json& post = root.value("post_processor", json());
    if (!post.is_null()) {
      reader.post_processor(post, "post_processor", spec);
    }

    const bool byte_level = contains_type(root.value("pre_tokenizer", json()), "ByteLevel") ||
                            contains_type(root.value("decoder", json()), "ByteLevel");
    spec.piece_encoding = byte_level ? PieceEncoding::ByteLevel : PieceEncoding::Metaspace;
    const json& decoder = root.value("decoder", json());
    spec.decode_strips_leading_space = !byte_level && (contains_type(decoder, "Strip") || contains_type(decoder, "Metaspace"));

    const auto find_id = [&](const std::optional<std::string>& content) -> std::optional<TokenId> {
      if (!content) return std::nullopt;
      for (TokenId id = 0; id < static_cast<TokenId>(spec.pieces.size()); ++id) {
        if (spec.pieces[id] == *content) return id;
      }
      return std::nullopt;
    };
    spec.bos_id = find_id(config_token(config, "bos_token"));
    spec.eos_id = find_id(config_token(config, "eos_token"));
    // Without a post-processor, transformers adds BOS/EOS as tokenizer_config.json says.
    if (post.is_null()) {
      if (config.value("add_bos_token", false) && spec.bos_id) spec.prefix_ids.push_back(*spec.bos_id);
      if (config.value("add_eos_token", false) && spec.eos_id) spec.suffix_ids.push_back(*spec.eos_id);
    }
    for (const char* end_of_turn : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|eom_id|>"}) {
      if (const auto id = find_id(std::string(end_of_turn))) spec.extra_stop_ids.push_back(*id);
    }
    return std::make_unique<BpeTokenizer>(std::move(spec));
  } catch (const json::exception& e) {
    raise<FormatError>("{}: unexpected JSON structure: {}", source, e.what());
  }
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  const std::filesystem::path config_path = path.parent_path() / "tokenizer_config.json";
  const std::string config = std::filesystem::exists(config_path) ? read_text_file(config_path) : std::string();
  return parse_tokenizer_json(text, config, path.string());
}

}  // namespace stepdown::text
