// How every number of the report is written, so a value reads the same in each table, chart label
// and language: rates grouped by thousands, speed-ups with two decimals and "×", times in s / min /
// h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace slidesparse::report {

std::string format_count(int64_t v);            // 12,345
std::string format_rate(double per_s);          // tok/s: 12,345 (>= 100), else 3 significant digits
std::string format_ratio(double v);             // 1.33×
std::string format_seconds(double s);           // 12.3 s | 4 min 05 s | 2 h 05 min
std::string format_bytes(uint64_t bytes);       // 512 B | 66.3 KiB | 1.2 MiB
std::string format_millijoules(double joules);  // joules as mJ, 3 significant digits: 13.2
std::string format_percent_change(double fraction);  // -0.081 -> −8.1%, 0.02 -> +2.0%
std::string format_axis(double v);                   // chart tick: 120k, 1.5M, 1.25, 0.5
std::string format_data(double v);                   // data attributes: full precision (%.10g)
// A version as recorded (cuBLASLt 130100 -> "13.1.0 (130100)", cuSPARSELt 800 -> "0.8.0 (800)").
std::string format_library_version(const std::string& library, const std::string& raw);
// "—" where there is no value.
std::string or_dash(const std::optional<std::string>& v);
inline constexpr const char* kDash = "—";

}  // namespace slidesparse::report
