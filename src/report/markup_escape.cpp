// Escaping for the report's writers (see markup_escape.h).
#include "report/markup_escape.h"

#include <algorithm>

namespace slidesparse::report {

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') break;
        out += c;
    }
  }
  return out;
}

std::string escape_markdown_cell(std::string_view text, bool code) {
  std::string body;
  for (char c : text) {
    if (c == '\n' || c == '\r') {
      body += ' ';
    } else if (c == '|') {
      body += "\\|";
    } else if (!code && (c == '*' || c == '_' || c == '`' || c == '<' || c == '[' || c == '\\')) {
      body += '\\';
      body += c;
    } else {
      body += c;
    }
  }
  if (!code || body.empty()) return body;
  // A code span needs a fence longer than any run of backticks inside it.
  size_t longest = 0, run = 0;
  for (char c : body) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(longest + 1, '`');
  const bool pad = body.front() == '`' || body.back() == '`';
  return fence + (pad ? " " : "") + body + (pad ? " " : "") + fence;
}

std::string escape_markdown_text(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '_' || c == '`' || c == '<' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace slidesparse::report
