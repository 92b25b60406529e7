#pragma once
// A small XML well-formedness check for the report tests: balanced and properly nested
// elements under one root, quoted attributes without '<', and only the five predefined
// or numeric character references. Comments, processing instructions, CDATA and one
// DOCTYPE are skipped. Returns an empty string when `text` is well-formed, or the first
// problem with its byte offset.
#include <cctype>
#include <string>
#include <vector>

namespace stepdown::test {

inline std::string xml_problem(const std::string& text) {
  std::vector<std::string> open;
  bool seen_root = false;
  size_t i = 0;
  const auto fail = [&](const std::string& what) { return what + " at byte " + std::to_string(i); };
  const auto is_name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':';
  };
  const auto check_reference = [&](size_t at) -> std::string {
    const size_t end = text.find(';', at);
    if (end == std::string::npos || end - at > 10) return fail("unterminated character reference");
    const std::string name = text.substr(at + 1, end - at - 1);
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") return {};
    if (name.size() > 1 && name[0] == '#') return {};
    return fail("unknown entity &" + name + ";");
  };

  while (i < text.size()) {
    if (text[i] == '&') {
      const std::string problem = check_reference(i);
      if (!problem.empty()) return problem;
      ++i;
      continue;
    }
    if (text[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(text[i]))) return fail("text outside the root element");
      ++i;
      continue;
    }
    if (text.compare(i, 4, "<!--") == 0) {
      const size_t end = text.find("-->", i + 4);
      if (end == std::string::npos) return fail("unterminated comment");
      i = end + 3;
    } else if (text.compare(i, 9, "<![CDATA[") == 0) {
      const size_t end = text.find("]]>", i);
      if (end == std::string::npos) return fail("unterminated CDATA");
      i = end + 3;
    } else if (text.compare(i, 2, "<?") == 0 || text.compare(i, 2, "<!") == 0) {
      const size_t end = text.find('>', i);
      if (end == std::string::npos) return fail("unterminated declaration");
      i = end + 1;
    } else if (text.compare(i, 2, "</") == 0) {
      size_t j = i + 2;
      while (j < text.size() && is_name_char(text[j])) ++j;
      const std::string name = text.substr(i + 2, j - i - 2);
      while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
      if (j >= text.size() || text[j] != '>') return fail("malformed end tag </" + name);
      if (open.empty() || open.back() != name) return fail("end tag </" + name + "> does not match the open element");
      open.pop_back();
      i = j + 1;
    } else {
      size_t j = i + 1;
      while (j < text.size() && is_name_char(text[j])) ++j;
      const std::string name = text.substr(i + 1, j - i - 1);
      if (name.empty()) return fail("'<' that starts no tag");
      if (open.empty() && seen_root) return fail("second root element <" + name + ">");
      // Attributes: name = "value" or name = 'value'.
      while (true) {
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        if (j >= text.size()) return fail("unterminated tag <" + name);
        if (text[j] == '>' || text.compare(j, 2, "/>") == 0) break;
        const size_t attribute = j;
        while (j < text.size() && is_name_char(text[j])) ++j;
        if (j == attribute) return fail("bad attribute in <" + name + ">");
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        if (j >= text.size() || text[j] != '=') return fail("attribute without a value in <" + name + ">");
        ++j;
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        if (j >= text.size() || (text[j] != '"' && text[j] != '\'')) return fail("unquoted attribute in <" + name + ">");
        const char quote = text[j];
        const size_t end = text.find(quote, j + 1);
        if (end == std::string::npos) return fail("unterminated attribute in <" + name + ">");
        for (size_t k = j + 1; k < end; ++k) {
          if (text[k] == '<') return fail("'<' inside an attribute of <" + name + ">");
          if (text[k] == '&') {
            const std::string problem = check_reference(k);
            if (!problem.empty()) return problem;
          }
        }
        j = end + 1;
      }
      seen_root = true;
      if (text[j] == '/') {
        i = j + 2;
      } else {
        open.push_back(name);
        i = j + 1;
      }
    }
  }
  if (!open.empty()) return "element <" + open.back() + "> is never closed";
  if (!seen_root) return "no root element";
  return {};
}

}  // namespace stepdown::test
