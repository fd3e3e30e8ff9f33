// The report as one self-contained HTML page: inline CSS, charts as inline SVG, no scripts, fonts
// or other resources. The page is also well-formed XML (every element closed, only XML entities),
// so an XML parser can check it.
#pragma once

#include <string>

#include "report/report_document.h"

namespace slidesparse::report {

std::string render_html(const Document& doc);

}  // namespace slidesparse::report
