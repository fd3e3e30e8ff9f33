// Builds the report's document from parsed results in one language. The Markdown and HTML writers
// render the same Document, so both carry the same sections, tables and chart data.
#pragma once

#include "report/i18n.h"
#include "report/report_document.h"
#include "report/results_model.h"

namespace slidesparse::report {

Document build_report(const ResultsModel& results, Lang lang);

}  // namespace slidesparse::report
