#pragma once
// UTF-8 helpers and the GPT-2 byte-to-unicode table that byte-level BPE vocabularies use.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stepdown::text {

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for an invalid lead).
int utf8_sequence_length(unsigned char lead);
// Appends the UTF-8 encoding of `code_point` to `out`.
void append_utf8(std::string& out, char32_t code_point);
// Decodes the character at `text[pos]` and advances `pos`; nullopt (advancing one byte)
// when the bytes there are not a valid UTF-8 sequence.
std::optional<char32_t> next_code_point(std::string_view text, size_t& pos);
// Offset of the first byte that is not part of valid UTF-8, or npos when all of it is.
size_t find_invalid_utf8(std::string_view text);
// Number of leading bytes of `text` that form whole characters: a trailing incomplete
// but so far valid sequence is left out.
size_t complete_utf8_prefix(std::string_view text);
// `text` with every byte that is not part of a valid sequence replaced by U+FFFD, as
// Rust's String::from_utf8_lossy does (one U+FFFD per maximal invalid subpart).
std::string sanitize_utf8(std::string_view text);

// Unicode White_Space, as Rust's char::is_whitespace (which tokenizers uses).
bool is_white_space(char32_t code_point);

// GPT-2's reversible map from bytes to printable code points: printable Latin-1 bytes map
// to themselves, the other 68 to U+0100 onwards in byte order.
const std::array<char32_t, 256>& byte_to_unicode();
// The inverse map; nullopt for a code point that no byte maps to.
std::optional<uint8_t> unicode_to_byte(char32_t code_point);

}  // namespace stepdown::text
