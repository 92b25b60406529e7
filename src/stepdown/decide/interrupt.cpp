#include "stepdown/decide/interrupt.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;

constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

// The write end of the pipe, which the handler writes to, or -1 when no guard is active.
std::atomic<int> signal_pipe{-1};

extern "C" void forward_signal(int signal_number) {
  const int fd = signal_pipe.load();
  if (fd < 0) return;
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  [[maybe_unused]] const ssize_t written = ::write(fd, &byte, 1);
}

std::mutex& paths_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::vector<fs::path>& cleanup_paths() {
  static std::vector<fs::path> paths;
  return paths;
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

// AtomicFileWriter installs its own handlers when the first writer opens, and they would
// replace ours. Opening one writer first, which removes its temporary file when destroyed,
// makes sure ours come last.
void let_atomic_writer_install_first() {
  const fs::path probe = fs::temp_directory_path() / fmt::format("stepdown-decide-{}.signal-setup", ::getpid());
  AtomicFileWriter writer(probe);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  let_atomic_writer_install_first();
  if (::pipe2(pipe_, O_CLOEXEC) != 0) raise<IoError>("cannot create the interrupt pipe: {}", std::strerror(errno));
  signal_pipe.store(pipe_[1]);
  for (int i = 0; i < 3; ++i) {
    ::sigaction(kSignals[i], nullptr, &previous_[i]);
    if (previous_[i].sa_handler == SIG_IGN) continue;  // keep nohup's choice
    struct sigaction action {};
    action.sa_handler = forward_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(kSignals[i], &action, nullptr);
  }

  watcher_ = std::thread([this] {
    pollfd entry{pipe_[0], POLLIN, 0};
    while (!stop_.load()) {
      // 100 ms, so the destructor need not wait long.
      if (::poll(&entry, 1, 100) <= 0) continue;
      unsigned char byte = 0;
      if (::read(pipe_[0], &byte, 1) != 1) continue;
      const int signal_number = byte;
      spdlog::warn("interrupted by signal {}; removing unfinished output", signal_number);
      remove_registered_paths();
      std::signal(signal_number, SIG_DFL);
      std::raise(signal_number);
    }
  });
}

InterruptGuard::~InterruptGuard() {
  stop_.store(true);
  watcher_.join();
  for (int i = 0; i < 3; ++i) {
    if (previous_[i].sa_handler != SIG_IGN) ::sigaction(kSignals[i], &previous_[i], nullptr);
  }
  signal_pipe.store(-1);
  ::close(pipe_[0]);
  ::close(pipe_[1]);
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
