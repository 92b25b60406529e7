#include "stepdown/decide/interrupt.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;

std::mutex& paths_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::vector<fs::path>& cleanup_paths() {
  static std::vector<fs::path> paths;
  return paths;
}

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

void remove_registered_paths() {
  std::lock_guard lock(paths_mutex());
  for (const fs::path& path : cleanup_paths()) {
    // Worker threads may still create files in the folder while it is removed, so retry.
    std::error_code error;
    for (int attempt = 0; attempt < 5; ++attempt) {
      fs::remove_all(path, error);
      if (!error && !fs::exists(path, error)) break;
    }
  }
}

}  // namespace

InterruptGuard::InterruptGuard() {
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  watcher_ = std::thread([this] {
    const sigset_t signals = handled_signals();
    const timespec timeout{0, 100'000'000};  // 100 ms, so the destructor need not wait long
    while (!stop_.load()) {
      const int signal_number = sigtimedwait(&signals, nullptr, &timeout);
      if (signal_number <= 0) continue;
      spdlog::warn("interrupted by signal {}; removing unfinished output", signal_number);
      remove_registered_paths();
      std::signal(signal_number, SIG_DFL);
      pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
      std::raise(signal_number);
    }
  });
}

InterruptGuard::~InterruptGuard() {
  stop_.store(true);
  watcher_.join();
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void register_interrupt_cleanup(const fs::path& path) {
  std::lock_guard lock(paths_mutex());
  cleanup_paths().push_back(path);
}

void unregister_interrupt_cleanup(const fs::path& path) {
  std::lock_guard lock(paths_mutex());
  std::vector<fs::path>& paths = cleanup_paths();
  paths.erase(std::remove(paths.begin(), paths.end(), path), paths.end());
}

}  // namespace stepdown::decide
