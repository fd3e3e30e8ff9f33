// SVG rendering of the report's charts (see svg_chart.h). Fixed pixel geometry in a viewBox, so
// the chart scales to the page width; text in the system sans-serif font, no external resources.
#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "report/markup_escape.h"
#include "report/number_format.h"

namespace slidesparse::report {
namespace {

constexpr const char* kSeriesColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                         "#E69F00", "#56B4E9", "#8C564B", "#7F7F7F"};
constexpr const char* kBaselineColors[] = {"#222222", "#777777", "#AAAAAA"};

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Round tick steps (1, 2, 2.5, 5 × 10^k) giving about `target` intervals over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double f : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (f * mag >= raw) {
      step = f * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

// Width the bold 14 px title needs, estimated (no font metrics here): ~7.8 px per Latin character,
// 14 px per wider code point (CJK), plus a margin, so a narrow chart is widened, not clipped.
double title_width(const std::string& title) {
  double w = 0;
  for (size_t i = 0; i < title.size();) {
    const auto lead = static_cast<unsigned char>(title[i]);
    const size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    w += len >= 3 ? 14.0 : 7.8;
    i += len;
  }
  return w + 32;
}

std::string svg_open(const std::string& id, const std::string& kind, double w, double h,
                     const std::string& title) {
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"" << escape_xml(id)
     << "\" data-chart=\"" << kind << "\" viewBox=\"0 0 " << px(w) << " " << px(h) << "\" width=\""
     << px(w) << "\" height=\"" << px(h) << "\" role=\"img\" aria-label=\"" << escape_xml(title)
     << "\" font-family=\"'Segoe UI', 'Helvetica Neue', Arial, 'Noto Sans CJK SC', 'Microsoft "
        "YaHei', sans-serif\">\n"
     << "<title>" << escape_xml(title) << "</title>\n"
     << "<rect x=\"0\" y=\"0\" width=\"" << px(w) << "\" height=\"" << px(h)
     << "\" fill=\"#ffffff\"/>\n"
     << "<text x=\"" << px(w / 2)
     << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" "
        "font-weight=\"bold\" fill=\"#111111\">"
     << escape_xml(title) << "</text>\n";
  return os.str();
}

}  // namespace

std::string render_line_chart_svg(const LineChart& chart) {
  constexpr double kWidth = 760, kLeft = 78, kRight = 24, kTop = 44, kPlotH = 270;
  const double plot_w = kWidth - kLeft - kRight;
  // Legend below the x axis, three entries per row.
  const size_t legend_n = chart.series.size();
  size_t longest = 0;
  for (const auto& s : chart.series) longest = std::max(longest, s.name.size());
  const int per_row = longest <= 20 ? 4 : 3;
  const int legend_rows = static_cast<int>((legend_n + per_row - 1) / per_row);
  const double legend_top = kTop + kPlotH + 56;
  const double height = legend_top + legend_rows * 20 + 12;

  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& s : chart.series)
    for (const auto& p : s.points) {
      x_lo = std::min(x_lo, p.x);
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min(y_lo, p.y);
      y_hi = std::max(y_hi, p.y);
    }
  for (const auto& r : chart.references) {
    y_lo = std::min(y_lo, r.y);
    y_hi = std::max(y_hi, r.y);
  }
  const bool empty = !std::isfinite(x_lo);
  if (empty) {
    x_lo = 1;
    x_hi = 2;
    y_lo = 0;
    y_hi = 1;
  }
  double lx_lo = std::log2(std::max(x_lo, 1e-9)), lx_hi = std::log2(std::max(x_hi, 1e-9));
  if (lx_hi - lx_lo < 1) {
    lx_lo -= 0.5;
    lx_hi += 0.5;
  }
  const double x_pad = (lx_hi - lx_lo) * 0.05;
  lx_lo -= x_pad;
  lx_hi += x_pad;
  if (chart.y_from_zero) y_lo = std::min(0.0, y_lo);
  double span = y_hi - y_lo;
  if (!(span > 0)) span = std::fabs(y_hi) > 0 ? std::fabs(y_hi) : 1;
  if (!chart.y_from_zero) y_lo -= span * 0.08;
  y_hi += span * 0.08;
  const auto y_ticks = nice_ticks(y_lo, y_hi, 5);
  y_lo = std::min(y_lo, y_ticks.front());
  y_hi = std::max(y_hi, y_ticks.back());

  auto sx = [&](double x) { return kLeft + (std::log2(x) - lx_lo) / (lx_hi - lx_lo) * plot_w; };
  auto sy = [&](double y) { return kTop + kPlotH - (y - y_lo) / (y_hi - y_lo) * kPlotH; };

  std::ostringstream os;
  os << svg_open(chart.id, "line", kWidth, height, chart.title);
  // Grid and y ticks.
  os << "<g class=\"y-axis\" font-size=\"11\" fill=\"#333333\">\n";
  for (double t : y_ticks) {
    if (t < y_lo - 1e-12 || t > y_hi + 1e-12) continue;
    const double y = sy(t);
    os << "<line x1=\"" << px(kLeft) << "\" y1=\"" << px(y) << "\" x2=\"" << px(kLeft + plot_w)
       << "\" y2=\"" << px(y) << "\" stroke=\"#e3e3e3\" stroke-width=\"1\"/>\n"
       << "<text x=\"" << px(kLeft - 6) << "\" y=\"" << px(y + 4) << "\" text-anchor=\"end\">"
       << escape_xml(format_axis(t)) << "</text>\n";
  }
  os << "</g>\n";
  // x ticks at the powers of two in range (every other one when crowded).
  std::vector<double> x_ticks;
  for (int e = static_cast<int>(std::ceil(lx_lo)); e <= static_cast<int>(std::floor(lx_hi)); ++e)
    x_ticks.push_back(std::ldexp(1.0, e));
  const size_t stride = x_ticks.size() > 12 ? 2 : 1;
  os << "<g class=\"x-axis\" font-size=\"11\" fill=\"#333333\">\n";
  for (size_t i = 0; i < x_ticks.size(); i += stride) {
    const double x = sx(x_ticks[i]);
    char label[32];
    std::snprintf(label, sizeof label, "%.0f", x_ticks[i]);
    os << "<line x1=\"" << px(x) << "\" y1=\"" << px(kTop) << "\" x2=\"" << px(x) << "\" y2=\""
       << px(kTop + kPlotH) << "\" stroke=\"#f0f0f0\" stroke-width=\"1\"/>\n"
       << "<line x1=\"" << px(x) << "\" y1=\"" << px(kTop + kPlotH) << "\" x2=\"" << px(x)
       << "\" y2=\"" << px(kTop + kPlotH + 5) << "\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
       << "<text x=\"" << px(x) << "\" y=\"" << px(kTop + kPlotH + 18)
       << "\" text-anchor=\"middle\">" << label << "</text>\n";
  }
  os << "</g>\n";
  // Axes and their labels.
  os << "<line x1=\"" << px(kLeft) << "\" y1=\"" << px(kTop) << "\" x2=\"" << px(kLeft)
     << "\" y2=\"" << px(kTop + kPlotH) << "\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
     << "<line x1=\"" << px(kLeft) << "\" y1=\"" << px(kTop + kPlotH) << "\" x2=\""
     << px(kLeft + plot_w) << "\" y2=\"" << px(kTop + kPlotH)
     << "\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
     << "<text class=\"x-label\" x=\"" << px(kLeft + plot_w / 2) << "\" y=\""
     << px(kTop + kPlotH + 38) << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#111111\">"
     << escape_xml(chart.x_label) << "</text>\n"
     << "<text class=\"y-label\" x=\"16\" y=\"" << px(kTop + kPlotH / 2)
     << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#111111\" transform=\"rotate(-90 16 "
     << px(kTop + kPlotH / 2) << ")\">" << escape_xml(chart.y_label) << "</text>\n";
  // Reference lines (the bound, dense = 1).
  for (size_t i = 0; i < chart.references.size(); ++i) {
    const ReferenceLine& r = chart.references[i];
    const double y = sy(r.y);
    const char* color = i == 0 ? "#C00000" : "#666666";
    os << "<g class=\"reference\" data-y=\"" << format_data(r.y) << "\">"
       << "<line x1=\"" << px(kLeft) << "\" y1=\"" << px(y) << "\" x2=\"" << px(kLeft + plot_w)
       << "\" y2=\"" << px(y) << "\" stroke=\"" << color
       << "\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
       << "<text x=\"" << px(kLeft + plot_w - 4) << "\" y=\"" << px(y - 5)
       << "\" text-anchor=\"end\" font-size=\"11\" fill=\"" << color << "\">" << escape_xml(r.label)
       << "</text></g>\n";
  }
  // Series: a polyline and a marker with its values per point.
  size_t colour = 0, grey = 0;
  std::vector<std::string> colours;
  for (const auto& s : chart.series)
    colours.push_back(s.baseline ? kBaselineColors[grey++ % 3] : kSeriesColors[colour++ % 8]);
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    os << "<g class=\"series\" data-series=\"" << escape_xml(s.name) << "\">\n";
    if (s.points.size() > 1) {
      os << "<polyline fill=\"none\" stroke=\"" << colours[i] << "\" stroke-width=\"2\""
         << (s.baseline ? " stroke-dasharray=\"5 3\"" : "") << " points=\"";
      for (const auto& p : s.points) os << px(sx(p.x)) << "," << px(sy(p.y)) << " ";
      os << "\"/>\n";
    }
    for (const auto& p : s.points) {
      char x_text[32];
      std::snprintf(x_text, sizeof x_text, "%.0f", p.x);
      os << "<circle class=\"pt\" cx=\"" << px(sx(p.x)) << "\" cy=\"" << px(sy(p.y))
         << "\" r=\"3.5\" fill=\"" << colours[i] << "\" data-series=\"" << escape_xml(s.name)
         << "\" data-x=\"" << format_data(p.x) << "\" data-y=\"" << format_data(p.y) << "\"><title>"
         << escape_xml(s.name) << ", M = " << x_text << ": " << escape_xml(format_axis(p.y))
         << "</title></circle>\n";
    }
    os << "</g>\n";
  }
  if (empty)
    os << "<text x=\"" << px(kLeft + plot_w / 2) << "\" y=\"" << px(kTop + kPlotH / 2)
       << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#666666\">—</text>\n";
  // Legend.
  os << "<g class=\"legend\" font-size=\"12\" fill=\"#111111\">\n";
  const double col_w = (kWidth - kLeft) / per_row;
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const double x = kLeft + (i % per_row) * col_w;
    const double y = legend_top + (i / per_row) * 20;
    os << "<line x1=\"" << px(x) << "\" y1=\"" << px(y) << "\" x2=\"" << px(x + 22) << "\" y2=\""
       << px(y) << "\" stroke=\"" << colours[i] << "\" stroke-width=\"2\""
       << (chart.series[i].baseline ? " stroke-dasharray=\"5 3\"" : "") << "/>"
       << "<circle cx=\"" << px(x + 11) << "\" cy=\"" << px(y) << "\" r=\"3.5\" fill=\""
       << colours[i] << "\"/>"
       << "<text x=\"" << px(x + 28) << "\" y=\"" << px(y + 4) << "\">"
       << escape_xml(chart.series[i].name) << "</text>\n";
  }
  os << "</g>\n</svg>\n";
  return os.str();
}

std::string render_grid_chart_svg(const GridChart& chart) {
  size_t columns = 0;
  for (const auto& ms : chart.column_ms) columns += ms.size();
  const double cell = std::clamp(560.0 / std::max<size_t>(columns, 1), 12.0, 28.0);
  constexpr double kGap = 8, kLeft = 150, kTop = 92;
  const double grid_w =
      columns * cell + kGap * (chart.column_ms.empty() ? 0 : chart.column_ms.size() - 1);
  const double width = std::max({kLeft + grid_w + 20, 480.0, title_width(chart.title)});
  const double grid_h = chart.row_labels.size() * cell;
  const double legend_y = kTop + grid_h + 44;
  const double height = legend_y + 20;

  std::ostringstream os;
  os << svg_open(chart.id, "grid", width, height, chart.title);
  // Column headers: model names over their groups, Ms rotated.
  double x = kLeft;
  std::vector<double> column_x;
  for (size_t g = 0; g < chart.column_ms.size(); ++g) {
    const double group_w = chart.column_ms[g].size() * cell;
    os << "<text x=\"" << px(x + group_w / 2)
       << "\" y=\"44\" text-anchor=\"middle\" font-size=\"12\" "
          "font-weight=\"bold\" fill=\"#111111\">"
       << escape_xml(g < chart.column_groups.size() ? chart.column_groups[g] : "") << "</text>\n";
    for (long long m : chart.column_ms[g]) {
      const double cx = x + cell / 2;
      os << "<text x=\"" << px(cx + 3) << "\" y=\"" << px(kTop - 6)
         << "\" font-size=\"10\" fill=\"#333333\" transform=\"rotate(-90 " << px(cx + 3) << " "
         << px(kTop - 6) << ")\">" << m << "</text>\n";
      column_x.push_back(x);
      x += cell;
    }
    x += kGap;
  }
  // Rows.
  const auto fill_of = [](const std::string& state) {
    if (state == "ok") return "#2E9D4F";
    if (state == "failed") return "#D62728";
    if (state == "skipped") return "#B5B5B5";
    return "#FFFFFF";
  };
  for (size_t r = 0; r < chart.row_labels.size(); ++r) {
    const double y = kTop + r * cell;
    os << "<text x=\"" << px(kLeft - 8) << "\" y=\"" << px(y + cell / 2 + 4)
       << "\" text-anchor=\"end\" font-size=\"11\" fill=\"#111111\">"
       << escape_xml(chart.row_labels[r]) << "</text>\n";
    size_t col = 0;
    for (size_t g = 0; g < chart.column_ms.size(); ++g)
      for (long long m : chart.column_ms[g]) {
        const std::string& state = chart.states[r][col];
        const double cx = column_x[col];
        os << "<rect class=\"cell\" x=\"" << px(cx + 1) << "\" y=\"" << px(y + 1) << "\" width=\""
           << px(cell - 2) << "\" height=\"" << px(cell - 2) << "\" fill=\"" << fill_of(state)
           << "\" stroke=\"" << (state == "missing" ? "#888888" : "none") << "\""
           << (state == "missing" ? " stroke-dasharray=\"2 2\"" : "") << " data-row=\""
           << escape_xml(r < chart.row_keys.size() ? chart.row_keys[r] : "") << "\" data-model=\""
           << escape_xml(g < chart.column_groups.size() ? chart.column_groups[g] : "")
           << "\" data-m=\"" << m << "\" data-state=\"" << state << "\"><title>"
           << escape_xml(chart.row_labels[r]) << ", "
           << escape_xml(g < chart.column_groups.size() ? chart.column_groups[g] : "")
           << ", M = " << m << ": " << escape_xml(state) << "</title></rect>\n";
        if (state == "failed")
          os << "<text x=\"" << px(cx + cell / 2) << "\" y=\"" << px(y + cell / 2 + 4)
             << "\" text-anchor=\"middle\" font-size=\"" << px(cell * 0.7)
             << "\" fill=\"#FFFFFF\">×</text>\n";
        ++col;
      }
  }
  os << "<text class=\"x-label\" x=\"" << px(kLeft + grid_w / 2) << "\" y=\""
     << px(kTop + grid_h + 20) << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#111111\">"
     << escape_xml(chart.x_label) << "</text>\n";
  // Legend.
  os << "<g class=\"legend\" font-size=\"12\" fill=\"#111111\">\n";
  double lx = 20;
  for (size_t i = 0; i < chart.legend_states.size(); ++i) {
    const std::string& state = chart.legend_states[i];
    os << "<rect x=\"" << px(lx) << "\" y=\"" << px(legend_y - 10)
       << "\" width=\"12\" height=\"12\" fill=\"" << fill_of(state) << "\" stroke=\""
       << (state == "missing" ? "#888888" : "none") << "\""
       << (state == "missing" ? " stroke-dasharray=\"2 2\"" : "") << "/>"
       << "<text x=\"" << px(lx + 18) << "\" y=\"" << px(legend_y) << "\">"
       << escape_xml(i < chart.legend_labels.size() ? chart.legend_labels[i] : state)
       << "</text>\n";
    lx += 100;
  }
  os << "</g>\n</svg>\n";
  return os.str();
}

}  // namespace slidesparse::report
