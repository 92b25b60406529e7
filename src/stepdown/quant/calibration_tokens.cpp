#include "stepdown/quant/calibration_tokens.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/core/sha256.h"

namespace stepdown::quant {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot open the calibration file", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text of one traffic line: "prompt", or the "content" strings of "messages" joined
// by newlines.
std::string traffic_line_text(const std::filesystem::path& path, int64_t line_number, const std::string& line) {
  nlohmann::json request;
  try {
    request = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    raise<InvalidArgument>("{}:{}: invalid JSON in the calibration file: {}", path.string(), line_number, e.what());
  }
  if (request.contains("prompt") && request["prompt"].is_string()) return request["prompt"].get<std::string>();
  if (request.contains("messages") && request["messages"].is_array()) {
    std::string text;
    for (const nlohmann::json& message : request["messages"]) {
      if (!message.contains("content") || !message["content"].is_string()) continue;
      if (!text.empty()) text += "\n";
      text += message["content"].get<std::string>();
    }
    return text;
  }
  raise<InvalidArgument>("{}:{}: expected a \"prompt\" string or a \"messages\" array", path.string(), line_number);
}

// Documents of the file: one per non-empty JSONL line, or the whole text.
std::vector<std::string> read_documents(const std::filesystem::path& path) {
  const std::string text = read_text(path);
  if (path.extension() != ".jsonl") return {text};
  std::vector<std::string> documents;
  std::istringstream lines(text);
  std::string line;
  int64_t line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    documents.push_back(traffic_line_text(path, line_number, line));
  }
  return documents;
}

}  // namespace

std::vector<std::vector<text::TokenId>> read_calibration_sequences(const std::filesystem::path& path,
                                                                   const text::Tokenizer& tokenizer,
                                                                   int64_t samples, int64_t seq_len, uint64_t seed) {
  if (samples <= 0 || seq_len <= 0) {
    raise<InvalidArgument>("calibration needs positive samples and sequence length, got {} and {}", samples, seq_len);
  }
  std::vector<text::TokenId> all;
  for (const std::string& document : read_documents(path)) {
    const std::vector<text::TokenId> ids = tokenizer.encode(document, /*add_special=*/true);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  if (all.empty()) raise<InvalidArgument>("{}: the calibration file holds no tokens", path.string());

  const int64_t total = static_cast<int64_t>(all.size());
  if (total <= seq_len) {
    spdlog::warn("{}: {} calibration tokens, fewer than one sequence of {}; using them as one sequence",
                 path.string(), total, seq_len);
    return {all};
  }
  if (total < samples * seq_len) {
    spdlog::warn("{}: {} calibration tokens for {} sequences of {}; the windows overlap", path.string(), total,
                 samples, seq_len);
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> offset(0, total - seq_len);
  std::vector<std::vector<text::TokenId>> sequences;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t begin = offset(rng);
    sequences.emplace_back(all.begin() + begin, all.begin() + begin + seq_len);
  }
  return sequences;
}

std::string hash_calibration_sequences(const std::vector<std::vector<text::TokenId>>& sequences) {
  std::string bytes;
  for (const std::vector<text::TokenId>& sequence : sequences) {
    for (text::TokenId id : sequence) {
      const auto value = static_cast<uint32_t>(id);
      for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((value >> (8 * b)) & 0xff));
    }
    // A separator keeps [a b][c] and [a][b c] apart.
    bytes.append(4, '\xff');
  }
  return sha256_hex(bytes);
}

}  // namespace stepdown::quant
