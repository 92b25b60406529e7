#include "stepdown/text/utf8.h"

namespace stepdown::text {

int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Number of bytes of a valid sequence starting at text[pos] that are present, and whether
// the sequence is complete. Follows the well-formed byte table of Unicode 15, table 3-7.
namespace {
struct SequenceCheck {
  size_t valid = 0;  // bytes that form a valid (possibly incomplete) prefix
  size_t needed = 0;  // total length of the sequence when valid
};

SequenceCheck check_sequence(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return {1, 1};
  size_t needed = 0;
  unsigned char low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return {0, 0};
  }
  size_t valid = 1;
  for (size_t i = 1; i < needed && pos + i < text.size(); ++i) {
    const unsigned char b = byte(pos + i);
    const unsigned char lo = i == 1 ? low : 0x80;
    const unsigned char hi = i == 1 ? high : 0xBF;
    if (b < lo || b > hi) break;
    ++valid;
  }
  return {valid, needed};
}
}  // namespace

std::optional<char32_t> next_code_point(std::string_view text, size_t& pos) {
  const SequenceCheck check = check_sequence(text, pos);
  if (check.needed == 0 || check.valid != check.needed) {
    ++pos;
    return std::nullopt;
  }
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  char32_t cp = 0;
  switch (check.needed) {
    case 1: cp = byte(0); break;
    case 2: cp = ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F); break;
    case 3: cp = ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F); break;
    default:
      cp = ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
  }
  pos += check.needed;
  return cp;
}

size_t find_invalid_utf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (!next_code_point(text, pos)) return start;
  }
  return std::string_view::npos;
}

size_t complete_utf8_prefix(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const SequenceCheck check = check_sequence(text, pos);
    if (check.needed != 0 && check.valid == check.needed) {
      pos += check.needed;
      continue;
    }
    // A valid but unfinished sequence at the very end waits for more bytes.
    if (check.needed != 0 && pos + check.valid == text.size()) return pos;
    ++pos;  // an invalid byte is complete: it will never become valid
  }
  return pos;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const SequenceCheck check = check_sequence(text, pos);
    if (check.needed != 0 && check.valid == check.needed) {
      out.append(text.substr(pos, check.needed));
      pos += check.needed;
    } else {
      out += "\xEF\xBF\xBD";
      pos += check.valid == 0 ? 1 : check.valid;
    }
  }
  return out;
}

bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> map{};
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      map[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return map;
  }();
  return table;
}

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  static const std::array<int16_t, 0x144> inverse = [] {
    std::array<int16_t, 0x144> map;
    map.fill(-1);
    const auto& forward = byte_to_unicode();
    for (int b = 0; b < 256; ++b) map[forward[b]] = static_cast<int16_t>(b);
    return map;
  }();
  if (cp >= inverse.size() || inverse[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(inverse[cp]);
}

}  // namespace stepdown::text
