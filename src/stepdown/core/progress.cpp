#include "stepdown/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace stepdown {

Progress::Progress(std::string label, int64_t total, double interval_s)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 0)),
      terminal_(::isatty(STDERR_FILENO) == 1),
      interval_(interval_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::update(int64_t done, const std::string& detail) {
  done_ = std::clamp<int64_t>(done, 0, total_ > 0 ? total_ : done);
  detail_ = detail;
  const auto now = std::chrono::steady_clock::now();
  // A terminal redraws at most 10 times a second, and a log gets one line per interval.
  const std::chrono::duration<double> min_gap = terminal_ ? std::chrono::duration<double>(0.1) : interval_;
  if (now - last_draw_ >= min_gap) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  std::string line;
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    line = fmt::format("\r{} [{}{}] {}/{} {:.0f}s {}", label_, std::string(filled, '#'),
                       std::string(kWidth - filled, '.'), done_, total_, elapsed, detail_);
    line += "\033[K";  // clear the rest of a longer previous line
    if (final_line) line += "\n";
  } else {
    line = fmt::format("{}: {}/{} ({:.0f}%) after {:.0f}s{}{}\n", label_, done_, total_, 100.0 * fraction, elapsed,
                       detail_.empty() ? "" : ", ", detail_);
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace stepdown
