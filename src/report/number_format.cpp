// Number formatting of the report (see number_format.h). Locale-independent (snprintf "C").
#include "report/number_format.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace slidesparse::report {
namespace {

std::string printf_string(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string significant(double v, int digits) {
  if (v == 0) return "0";
  const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  const int decimals = std::max(0, digits - 1 - magnitude);
  char format[16];
  std::snprintf(format, sizeof format, "%%.%df", decimals);
  return printf_string(format, v);
}

}  // namespace

std::string format_count(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string format_rate(double per_s) {
  if (!std::isfinite(per_s)) return kDash;
  if (std::fabs(per_s) >= 100) return format_count(std::llround(per_s));
  return significant(per_s, 3);
}

std::string format_ratio(double v) {
  if (!std::isfinite(v)) return kDash;
  return printf_string("%.2f", v) + "×";
}

std::string format_seconds(double s) {
  if (!std::isfinite(s) || s < 0) return kDash;
  if (s < 60) return printf_string(s < 10 ? "%.2f" : "%.1f", s) + " s";
  const long total = std::lround(s);
  char buf[64];
  if (total < 3600)
    std::snprintf(buf, sizeof buf, "%ld min %02ld s", total / 60, total % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld h %02ld min", total / 3600, (total % 3600) / 60);
  return buf;
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  return printf_string(v < 10 ? "%.2f" : "%.1f", v) + " " + units[u];
}

std::string format_millijoules(double joules) {
  if (!std::isfinite(joules)) return kDash;
  return significant(joules * 1000.0, 3);
}

std::string format_percent_change(double fraction) {
  if (!std::isfinite(fraction)) return kDash;
  const std::string body = printf_string("%.1f", std::fabs(fraction) * 100.0) + "%";
  if (body == "0.0%") return "±0.0%";
  return (fraction < 0 ? "−" : "+") + body;
}

std::string format_axis(double v) {
  const double a = std::fabs(v);
  auto trim = [](std::string s) {
    if (s.find('.') != std::string::npos) {
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s;
  };
  if (a >= 1e6) return trim(printf_string("%.2f", v / 1e6)) + "M";
  if (a >= 1e3) return trim(printf_string("%.1f", v / 1e3)) + "k";
  return trim(printf_string("%.3f", v));
}

std::string format_data(double v) { return printf_string("%.10g", v); }

std::string format_library_version(const std::string& library, const std::string& raw) {
  char* end = nullptr;
  const long v = std::strtol(raw.c_str(), &end, 10);
  if (raw.empty() || end == nullptr || *end != '\0' || v <= 0) return raw.empty() ? kDash : raw;
  char buf[64];
  if (library == "cublaslt" || library == "cublas")
    std::snprintf(buf, sizeof buf, "%ld.%ld.%ld (%ld)", v / 10000, (v / 100) % 100, v % 100, v);
  else if (library == "cusparselt")
    std::snprintf(buf, sizeof buf, "%ld.%ld.%ld (%ld)", v / 1000, (v / 100) % 10, v % 100, v);
  else if (library == "cuda" || library == "cuda_runtime" || library == "cuda_driver" ||
           library == "cuda_driver_api")
    std::snprintf(buf, sizeof buf, "%ld.%ld (%ld)", v / 1000, (v % 1000) / 10, v);
  else
    return raw;
  return buf;
}

std::string or_dash(const std::optional<std::string>& v) { return v ? *v : kDash; }

}  // namespace slidesparse::report
