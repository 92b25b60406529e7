#pragma once
// Calibration token sequences for the activation-aware methods (AWQ, SmoothQuant, outlier
// split, calibrated FP8), read from traffic JSONL or plain text.
// NOTE: this is a small reader of its own until the shared calibration loader lands; it
// takes each JSONL line's "prompt", or the "content" strings of its "messages", and
// ignores every other field.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "stepdown/text/tokenizer.h"

namespace stepdown::quant {

// Up to `samples` windows of `seq_len` tokens, at offsets drawn with `seed` from the
// concatenated tokens of every document (each encoded with the tokenizer's special
// tokens). A file with fewer than seq_len tokens gives one shorter sequence. Throws
// IoError when the file cannot be read and InvalidArgument when it holds no tokens or a
// JSONL line has neither "prompt" nor "messages" (naming the line).
std::vector<std::vector<text::TokenId>> read_calibration_sequences(const std::filesystem::path& path,
                                                                   const text::Tokenizer& tokenizer,
                                                                   int64_t samples, int64_t seq_len, uint64_t seed);

// Hex SHA-256 over the token ids of every sequence, in order, for the manifest.
std::string hash_calibration_sequences(const std::vector<std::vector<text::TokenId>>& sequences);

}  // namespace stepdown::quant
