#pragma once
// Names and values read from a model file go into error messages, which must stay one
// line even for hostile input: control bytes are escaped and long text is cut.
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace stepdown::io {

// `text` with bytes below 0x20 and 0x7f written as \xNN, cut to `max_bytes` with "..."
// appended when longer.
inline std::string printable(std::string_view text, size_t max_bytes = 120) {
  std::string out;
  const size_t n = text.size() < max_bytes ? text.size() : max_bytes;
  out.reserve(n + 4);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

}  // namespace stepdown::io
