// Escaping of text for XML and HTML (the report's HTML is also well-formed XML, so one escape
// serves both) and for Markdown table cells.
#pragma once

#include <string>
#include <string_view>

namespace slidesparse::report {

// & < > " ' as entities; control characters other than tab / newline dropped (not allowed in XML).
std::string escape_xml(std::string_view text);
// A Markdown table cell: '|' escaped, newlines as spaces; `code` wraps it in a code span.
std::string escape_markdown_cell(std::string_view text, bool code);
// Markdown running text: the characters that would start emphasis, links or HTML, backslashed.
std::string escape_markdown_text(std::string_view text);

}  // namespace slidesparse::report
