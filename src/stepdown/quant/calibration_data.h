#pragma once
// Calibration data for calibrated quantization (GPTQ, AWQ, SmoothQuant, sensitivity): the
// `--calib` file read as documents, tokenized with the model's tokenizer, and cut into N
// sequences of L tokens drawn with a seeded RNG.
//
// Input, detected by content: traffic JSONL (the first non-blank line is a JSON object;
// each line has `prompt` or OpenAI-style `messages`, optionally `stratum`), or plain UTF-8
// text (one document). `messages` are rendered with the model's chat template and encoded
// without added special tokens, because the template writes BOS itself, as
// `stepdown eval` does; `prompt` and plain text are encoded with the tokenizer's own
// BOS/EOS rules.
//
// Sampling: the documents' tokens are concatenated into one stream, each document
// followed by EOS when the tokenizer has one and the document does not already end with
// it, so a window that crosses a document boundary sees the boundary the model was
// trained on. Each sequence is a window of L tokens at a start drawn uniformly from the
// stream. When the tokenizer adds BOS, a window's first token is replaced by BOS, since
// every production request starts with it and position 0 behaves unlike the rest
// (attention sink). Short documents are never padded.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/text/chat_template.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::io {
struct ModelFile;
}  // namespace stepdown::io

namespace stepdown::quant {

enum class CalibrationFileKind { kTraffic, kText };

// One request of a traffic file, or the whole of a plain text file.
struct CalibrationDocument {
  int64_t line = 0;                        // 1-based line in the file (1 for plain text)
  std::string text;                        // `prompt` or the plain text; empty with messages
  std::vector<text::ChatMessage> messages; // set instead of text for chat requests
  std::string stratum;                     // empty when the line has none
};

struct CalibrationFile {
  std::filesystem::path path;
  CalibrationFileKind kind = CalibrationFileKind::kText;
  std::string sha256;  // of the file's bytes
  std::vector<CalibrationDocument> documents;
};

// Reads and classifies a calibration file. Throws IoError when it cannot be read,
// InvalidArgument when it is empty or only whitespace, and FormatError "PATH:LINE: ..."
// for a traffic line that is not a JSON object with a string `prompt` or a `messages`
// array of {role, content} strings, or for content that is neither traffic JSONL nor
// UTF-8 text (a NUL byte or invalid UTF-8, with its byte offset).
CalibrationFile read_calibration_file(const std::filesystem::path& path);

// Encodes documents one by one, as described in the header comment. `chat_template` may
// be null when no document has messages; otherwise a document with messages throws
// InvalidArgument naming its line.
std::vector<std::vector<text::TokenId>> tokenize_documents(const CalibrationFile& file,
                                                           const text::Tokenizer& tokenizer,
                                                           const text::ChatTemplate* chat_template);

struct CalibrationOptions {
  int64_t samples = 128;  // N sequences
  int64_t seq_len = 512;  // L tokens each
  uint64_t seed = 0;
};

struct CalibrationStats {
  int64_t documents = 0;
  int64_t stream_tokens = 0;    // length of the concatenated stream windows are drawn from
  int64_t min_document_tokens = 0;
  int64_t median_document_tokens = 0;
  int64_t max_document_tokens = 0;
  int64_t distinct_tokens = 0;  // distinct ids in the drawn sequences
  // Fraction of stream tokens covered by at least one drawn sequence; well below 1 means
  // much of the file was never seen, above N * L / stream_tokens never happens.
  double coverage = 0.0;
  std::map<std::string, int64_t> strata;  // documents per `stratum`; "" for none
};

struct CalibrationData {
  CalibrationFileKind kind = CalibrationFileKind::kText;
  int64_t samples = 0;
  int64_t seq_len = 0;
  uint64_t seed = 0;
  std::vector<text::TokenId> tokens;  // (samples, seq_len), row-major
  std::string file_sha256;
  std::string tokens_sha256;          // of the ids as little-endian int32
  CalibrationStats stats;

  std::span<const text::TokenId> sequence(int64_t i) const {
    return {tokens.data() + i * seq_len, static_cast<size_t>(seq_len)};
  }
  // Fields for a manifest's "calibration" entry: kind, hashes, samples, seq_len, seed,
  // stats.
  nlohmann::json to_json() const;
};

// Draws options.samples windows of options.seq_len tokens from the documents' tokens.
// The same documents, tokenizer, options and seed give the same tokens on every platform
// (std::mt19937_64 with rejection sampling, not std::uniform_int_distribution). Throws
// InvalidArgument when samples or seq_len is not positive, and when the stream has fewer
// than seq_len tokens (saying how many it has and how many one sequence needs). Warns when
// the stream is shorter than samples * seq_len, because the windows then overlap.
CalibrationData sample_calibration(const CalibrationFile& file,
                                   const std::vector<std::vector<text::TokenId>>& documents,
                                   const text::Tokenizer& tokenizer, const CalibrationOptions& options);

// read_calibration_file, tokenize_documents and sample_calibration with the tokenizer
// and chat template of `model` (the template is looked up only when a document has
// messages).
CalibrationData load_calibration_data(const io::ModelFile& model, const std::filesystem::path& path,
                                      const CalibrationOptions& options);

}  // namespace stepdown::quant
