// Progress bar with ETA (see progress.h).
#include "io/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <utility>

namespace slidesparse {

ProgressBar::ProgressBar(int jobs, double total_weight, std::string name, std::string unit)
    : jobs_(jobs),
      total_weight_(total_weight),
      name_(std::move(name)),
      unit_(std::move(unit)),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_line_(start_) {}

std::string ProgressBar::format_seconds(double seconds) {
  const long s = std::max(0L, static_cast<long>(seconds + 0.5));
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buffer, sizeof(buffer), "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lds", s);
  }
  return buffer;
}

void ProgressBar::begin(const std::string& label) {
  label_ = label;
  draw(false);
}

void ProgressBar::finish(double weight) {
  ++finished_;
  done_weight_ += weight;
  draw(finished_ == jobs_);
}

void ProgressBar::clear() {
  if (tty_) std::fprintf(stderr, "\r\033[K");
}

void ProgressBar::done() {
  clear();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "[%s] %d/%d %s in %s\n", name_.c_str(), finished_, jobs_, unit_.c_str(),
               format_seconds(elapsed).c_str());
}

void ProgressBar::draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction = total_weight_ > 0 ? std::min(1.0, done_weight_ / total_weight_) : 1.0;
  std::string eta = "?";
  if (done_weight_ > 0)
    eta = format_seconds(elapsed * (total_weight_ - done_weight_) / done_weight_);
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    std::string label = label_.size() > 48 ? label_.substr(0, 48) : label_;
    std::fprintf(stderr, "\r\033[K[%s] %3d%% %d/%d ETA %s  %s", bar.c_str(),
                 static_cast<int>(fraction * 100), finished_, jobs_, eta.c_str(), label.c_str());
    std::fflush(stderr);
    return;
  }
  if (!force && std::chrono::duration<double>(now - last_line_).count() < 20.0) return;
  last_line_ = now;
  std::fprintf(stderr, "[%s] %3d%% %d/%d %s, %s elapsed, ETA %s, now: %s\n", name_.c_str(),
               static_cast<int>(fraction * 100), finished_, jobs_, unit_.c_str(),
               format_seconds(elapsed).c_str(), eta.c_str(), label_.c_str());
}

}  // namespace slidesparse
