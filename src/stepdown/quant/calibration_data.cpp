#include "stepdown/quant/calibration_data.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/sha256.h"
#include "stepdown/io/model_file.h"
#include "stepdown/text/model_tokenizer.h"
#include "stepdown/text/utf8.h"

namespace stepdown::quant {
namespace {

using nlohmann::json;

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot open the calibration file for reading", path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) raise<IoError>("{}: reading the calibration file failed", path.string());
  return bytes;
}

std::string_view trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

std::vector<std::string_view> split_lines(std::string_view bytes) {
  std::vector<std::string_view> lines;
  size_t begin = 0;
  while (begin <= bytes.size()) {
    size_t end = bytes.find('\n', begin);
    if (end == std::string_view::npos) end = bytes.size();
    lines.push_back(bytes.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

std::string string_field(const json& object, const char* name, const std::string& where) {
  const json& value = object.at(name);
  if (!value.is_string()) raise<FormatError>("{}: field '{}': expected a string, found {}", where, name, value.type_name());
  return value.get<std::string>();
}

std::vector<text::ChatMessage> parse_messages(const json& value, const std::string& where) {
  if (!value.is_array() || value.empty()) {
    raise<FormatError>("{}: field 'messages': expected a non-empty array of {{role, content}}, found {}", where,
                       value.type_name());
  }
  std::vector<text::ChatMessage> messages;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& message = value[i];
    const std::string field = fmt::format("{}: messages[{}]", where, i);
    if (!message.is_object() || !message.contains("role") || !message.contains("content")) {
      raise<FormatError>("{}: expected an object with string role and content", field);
    }
    messages.push_back({string_field(message, "role", field), string_field(message, "content", field)});
  }
  return messages;
}

// One traffic line. A string `reference` (the answer the request got) is kept as the
// assistant's turn, because production activations include the tokens a model writes,
// not only the prompts it reads.
CalibrationDocument parse_traffic_line(std::string_view line, int64_t number, const std::filesystem::path& path) {
  const std::string where = fmt::format("{}:{}", path.string(), number);
  json value;
  try {
    value = json::parse(line);
  } catch (const json::parse_error& e) {
    raise<FormatError>("{}: expected a JSON object per line (traffic JSONL), found invalid JSON: {}", where, e.what());
  }
  if (!value.is_object()) raise<FormatError>("{}: expected a JSON object, found {}", where, value.type_name());

  CalibrationDocument doc;
  doc.line = number;
  const bool has_prompt = value.contains("prompt");
  const bool has_messages = value.contains("messages");
  if (has_prompt == has_messages) {
    raise<FormatError>("{}: expected exactly one of 'prompt' and 'messages', found {}", where,
                       has_prompt ? "both" : "neither");
  }
  const std::optional<std::string> reference =
      value.contains("reference") && value["reference"].is_string() ? std::optional(value["reference"].get<std::string>())
                                                                     : std::nullopt;
  if (has_prompt) {
    doc.text = string_field(value, "prompt", where);
    if (reference) doc.text += *reference;
  } else {
    doc.messages = parse_messages(value["messages"], where);
    if (reference && doc.messages.back().role != "assistant") doc.messages.push_back({"assistant", *reference});
  }
  if (value.contains("stratum")) doc.stratum = string_field(value, "stratum", where);
  return doc;
}

// True when the first non-blank line is meant as JSON: it starts with '{' and ends with
// '}'. Plain text rarely has such a first line, and a traffic file with a broken first
// line should fail with its line number rather than be read as prose.
bool looks_like_jsonl(std::string_view first_line) {
  const std::string_view t = trim(first_line);
  return t.size() >= 2 && t.front() == '{' && t.back() == '}';
}

// Uniform integer in [0, n) from a 64-bit engine, by rejection, so the draw is the same
// with every standard library (uniform_int_distribution's algorithm is unspecified).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t draw = rng();
  while (draw >= limit) draw = rng();
  return draw % n;
}

std::string ids_sha256(const std::vector<text::TokenId>& ids) {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (const text::TokenId id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>((u >> shift) & 0xFF));
  }
  return sha256_hex(bytes);
}

std::string_view kind_name(CalibrationFileKind kind) {
  return kind == CalibrationFileKind::kTraffic ? "traffic" : "text";
}

}  // namespace

CalibrationFile read_calibration_file(const std::filesystem::path& path) {
  const std::string bytes = read_bytes(path);
  CalibrationFile file;
  file.path = path;
  file.sha256 = sha256_hex(bytes);
  if (trim(bytes).empty()) {
    raise<InvalidArgument>("{}: the calibration file is empty; expected traffic JSONL or plain text", path.string());
  }
  const size_t nul = bytes.find('\0');
  if (nul != std::string::npos) {
    raise<FormatError>("{}: byte {} is NUL; expected traffic JSONL or plain UTF-8 text, found binary data",
                       path.string(), nul);
  }
  const size_t invalid = text::find_invalid_utf8(bytes);
  if (invalid != std::string::npos) {
    raise<FormatError>("{}: byte {} is not valid UTF-8; expected traffic JSONL or plain UTF-8 text", path.string(),
                       invalid);
  }

  const std::vector<std::string_view> lines = split_lines(bytes);
  const auto first = std::find_if(lines.begin(), lines.end(), [](std::string_view l) { return !trim(l).empty(); });
  if (!looks_like_jsonl(*first)) {
    file.kind = CalibrationFileKind::kText;
    file.documents.push_back({1, bytes, {}, {}});
    return file;
  }

  file.kind = CalibrationFileKind::kTraffic;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    file.documents.push_back(parse_traffic_line(lines[i], static_cast<int64_t>(i) + 1, path));
  }
  return file;
}

std::vector<std::vector<text::TokenId>> tokenize_documents(const CalibrationFile& file,
                                                           const text::Tokenizer& tokenizer,
                                                           const text::ChatTemplate* chat_template) {
  std::vector<std::vector<text::TokenId>> out;
  out.reserve(file.documents.size());
  for (const CalibrationDocument& doc : file.documents) {
    if (doc.messages.empty()) {
      out.push_back(tokenizer.encode(doc.text, /*add_special=*/true));
      continue;
    }
    if (chat_template == nullptr) {
      raise<InvalidArgument>("{}:{}: the request has messages but the model has no chat template to render them",
                             file.path.string(), doc.line);
    }
    const bool open_turn = doc.messages.back().role != "assistant";
    const std::string rendered = chat_template->render(doc.messages, open_turn);
    out.push_back(tokenizer.encode(rendered, /*add_special=*/false));
  }
  return out;
}

nlohmann::json CalibrationData::to_json() const {
  json strata = json::object();
  for (const auto& [name, count] : stats.strata) strata[name] = count;
  return {
      {"kind", kind_name(kind)},
      {"file_sha256", file_sha256},
      {"tokens_sha256", tokens_sha256},
      {"samples", samples},
      {"seq_len", seq_len},
      {"seed", seed},
      {"documents", stats.documents},
      {"stream_tokens", stats.stream_tokens},
      {"document_tokens", {{"min", stats.min_document_tokens},
                           {"median", stats.median_document_tokens},
                           {"max", stats.max_document_tokens}}},
      {"distinct_tokens", stats.distinct_tokens},
      {"coverage", stats.coverage},
      {"strata", std::move(strata)},
  };
}

CalibrationData sample_calibration(const CalibrationFile& file,
                                   const std::vector<std::vector<text::TokenId>>& documents,
                                   const text::Tokenizer& tokenizer, const CalibrationOptions& options) {
  if (options.samples <= 0) raise<InvalidArgument>("--calib-samples must be positive, found {}", options.samples);
  if (options.seq_len <= 0) raise<InvalidArgument>("--calib-seq-len must be positive, found {}", options.seq_len);

  // Stream: every document, each closed by EOS unless it already ends with it.
  const std::optional<text::TokenId> eos = tokenizer.eos_id();
  std::vector<text::TokenId> stream;
  std::vector<int64_t> lengths;
  for (const std::vector<text::TokenId>& doc : documents) {
    lengths.push_back(static_cast<int64_t>(doc.size()));
    stream.insert(stream.end(), doc.begin(), doc.end());
    if (eos && (doc.empty() || doc.back() != *eos)) stream.push_back(*eos);
  }
  const int64_t n = static_cast<int64_t>(stream.size());
  if (n < options.seq_len) {
    raise<InvalidArgument>("{}: the calibration file gives {} tokens ({} documents) but one sequence needs "
                           "--calib-seq-len {}; give more text or a shorter --calib-seq-len",
                           file.path.string(), n, documents.size(), options.seq_len);
  }
  if (n < options.samples * options.seq_len) {
    spdlog::warn("{}: {} tokens for {} sequences of {}: the sequences overlap, so the calibration set has less "
                 "variety than its size suggests",
                 file.path.string(), n, options.samples, options.seq_len);
  }

  // Windows at uniform starts; position 0 gets BOS when the tokenizer adds one.
  const std::vector<text::TokenId> empty = tokenizer.encode("", /*add_special=*/true);
  const std::optional<text::TokenId> bos = tokenizer.bos_id();
  const bool starts_with_bos = bos && !empty.empty() && empty.front() == *bos;
  CalibrationData data;
  data.kind = file.kind;
  data.samples = options.samples;
  data.seq_len = options.seq_len;
  data.seed = options.seed;
  data.file_sha256 = file.sha256;
  data.tokens.reserve(static_cast<size_t>(options.samples * options.seq_len));
  std::mt19937_64 rng(options.seed);
  std::vector<bool> covered(static_cast<size_t>(n), false);
  for (int64_t s = 0; s < options.samples; ++s) {
    const auto start = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(n - options.seq_len + 1)));
    data.tokens.insert(data.tokens.end(), stream.begin() + start, stream.begin() + start + options.seq_len);
    if (starts_with_bos) data.tokens[static_cast<size_t>(s * options.seq_len)] = *bos;
    std::fill(covered.begin() + start, covered.begin() + start + options.seq_len, true);
  }
  data.tokens_sha256 = ids_sha256(data.tokens);

  // Summary statistics.
  CalibrationStats& stats = data.stats;
  stats.documents = static_cast<int64_t>(documents.size());
  stats.stream_tokens = n;
  std::vector<int64_t> sorted = lengths;
  std::sort(sorted.begin(), sorted.end());
  stats.min_document_tokens = sorted.front();
  stats.median_document_tokens = sorted[sorted.size() / 2];
  stats.max_document_tokens = sorted.back();
  stats.distinct_tokens = static_cast<int64_t>(std::unordered_set<text::TokenId>(data.tokens.begin(), data.tokens.end()).size());
  stats.coverage = static_cast<double>(std::count(covered.begin(), covered.end(), true)) / static_cast<double>(n);
  for (const CalibrationDocument& doc : file.documents) ++stats.strata[doc.stratum];
  return data;
}

CalibrationData load_calibration_data(const io::ModelFile& model, const std::filesystem::path& path,
                                      const CalibrationOptions& options) {
  const CalibrationFile file = read_calibration_file(path);
  const std::unique_ptr<text::Tokenizer> tokenizer = text::load_model_tokenizer(model);
  const bool needs_template = std::any_of(file.documents.begin(), file.documents.end(),
                                          [](const CalibrationDocument& d) { return !d.messages.empty(); });
  const std::unique_ptr<text::ChatTemplate> chat_template =
      needs_template ? text::chat_template_for(model.metadata) : nullptr;
  const std::vector<std::vector<text::TokenId>> documents = tokenize_documents(file, *tokenizer, chat_template.get());
  CalibrationData data = sample_calibration(file, documents, *tokenizer, options);
  spdlog::info("{}: {} calibration, {} documents, {} tokens; drew {} x {} tokens (seed {}, {:.0f}% of the stream)",
               path.string(), kind_name(file.kind), data.stats.documents, data.stats.stream_tokens, data.samples,
               data.seq_len, data.seed, 100.0 * data.stats.coverage);
  return data;
}

}  // namespace stepdown::quant
