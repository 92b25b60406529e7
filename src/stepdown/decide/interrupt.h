#pragma once
// Cleanup on SIGINT, SIGTERM and SIGHUP for work that writes whole folders: the output
// folder being staged and cache entries being filled. A signal handler cannot remove a
// folder tree safely, so the handler only writes the signal number to a pipe. A watcher
// thread reads it, removes the registered paths, then lets the signal end the process
// as it would have.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>

namespace stepdown::decide {

class InterruptGuard {
 public:
  // Installs the handlers (keeping an inherited SIG_IGN, as nohup sets) and starts the
  // watcher. The destructor restores the previous handlers.
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  std::atomic<bool> stop_{false};
  int pipe_[2] = {-1, -1};
  struct sigaction previous_[3] = {};
  std::thread watcher_;
};

// Adds or removes a path (file or folder) that an interrupt removes. Safe from any thread.
void register_interrupt_cleanup(const std::filesystem::path& path);
void unregister_interrupt_cleanup(const std::filesystem::path& path);

}  // namespace stepdown::decide
