#pragma once
// Progress of long work (loading, quantizing, evaluating, benchmarking) on stderr: a bar
// redrawn in place when stderr is a terminal, otherwise a plain line at most every
// `interval_s` seconds so CI logs stay short.
#include <chrono>
#include <cstdint>
#include <string>

namespace stepdown {

class Progress {
 public:
  Progress(std::string label, int64_t total, double interval_s = 5.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Sets the amount done so far; `detail` (e.g. the current item) is shown after the count.
  void update(int64_t done, const std::string& detail = {});
  // Prints the final state once; called by the destructor when not called before.
  void finish();

 private:
  void draw(bool final_line);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string detail_;
  bool terminal_;
  bool finished_ = false;
  std::chrono::duration<double> interval_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace stepdown
