// A progress bar with an ETA on stderr for long searches. Jobs carry a weight (their expected
// cost); the ETA is elapsed time x remaining weight / finished weight. On a terminal the bar is
// redrawn in place; in a log it prints one line at most every 20 seconds. Lines carry the name of
// the tool ("[tune]", "[prepare-bench]") and count in its unit ("jobs", "cases").
#pragma once

#include <chrono>
#include <string>

namespace slidesparse {

class ProgressBar {
 public:
  ProgressBar(int jobs, double total_weight, std::string name = "tune", std::string unit = "jobs");
  // Shows that `label` is running now.
  void begin(const std::string& label);
  // Marks one job (of `weight`) finished.
  void finish(double weight);
  // Clears the bar (before printing other lines on a terminal) and ends it.
  void clear();
  void done();

  static std::string format_seconds(double seconds);  // "1h02m", "3m20s", "12s"

 private:
  void draw(bool force);
  int jobs_ = 0;
  int finished_ = 0;
  double total_weight_ = 0;
  double done_weight_ = 0;
  std::string label_;
  std::string name_;
  std::string unit_;
  bool tty_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_line_;
};

}  // namespace slidesparse
