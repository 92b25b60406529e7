#pragma once
// Cleanup on SIGINT, SIGTERM and SIGHUP for work that writes whole folders: the output
// folder being staged and cache entries being filled. Signal handlers cannot remove a
// folder tree safely. So the guard blocks the signals in every thread, and a watcher
// thread waits for them with sigtimedwait. It removes the registered paths, then lets the
// signal end the process as it would have.
#include <atomic>
#include <filesystem>
#include <thread>

namespace stepdown::decide {

class InterruptGuard {
 public:
  // Blocks the signals in the calling thread, so construct it before any worker thread
  // starts: threads inherit the mask of the thread that creates them.
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

// Adds or removes a path (file or folder) that an interrupt removes. Safe from any thread.
void register_interrupt_cleanup(const std::filesystem::path& path);
void unregister_interrupt_cleanup(const std::filesystem::path& path);

}  // namespace stepdown::decide
