#include "stepdown/core/atomic_file.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <random>

#include "stepdown/core/error.h"

namespace stepdown {

namespace {

// Temporary files still being written, so that SIGINT, SIGTERM or SIGHUP can remove them,
// because destructors do not run when a signal kills the process. This is process-wide state
// because a signal handler has no other way to reach it. The handler only reads the slots
// and calls unlink(), both async-signal-safe.
struct TempSlot {
  std::atomic<bool> taken{false};
  std::atomic<bool> ready{false};
  char path[4096] = {};
};
std::array<TempSlot, 16> g_temp_slots;

extern "C" void remove_temp_files_and_reraise(int signal_number) {
  for (TempSlot& slot : g_temp_slots) {
    if (slot.ready.load(std::memory_order_acquire)) ::unlink(slot.path);
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

void install_signal_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction action {};
      struct sigaction previous {};
      ::sigaction(signal_number, nullptr, &previous);
      if (previous.sa_handler == SIG_IGN) continue;  // keep nohup's choice
      action.sa_handler = remove_temp_files_and_reraise;
      sigemptyset(&action.sa_mask);
      ::sigaction(signal_number, &action, nullptr);
    }
  });
}

// Returns the slot index holding `path`, or -1 when every slot is in use (the file is then
// only removed by the destructor).
int register_temp_file(const std::filesystem::path& path) {
  const std::string text = path.string();
  if (text.size() >= sizeof(TempSlot::path)) return -1;
  for (size_t i = 0; i < g_temp_slots.size(); ++i) {
    bool expected = false;
    if (g_temp_slots[i].taken.compare_exchange_strong(expected, true)) {
      std::memcpy(g_temp_slots[i].path, text.c_str(), text.size() + 1);
      g_temp_slots[i].ready.store(true, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregister_temp_file(int slot) {
  if (slot < 0) return;
  g_temp_slots[static_cast<size_t>(slot)].ready.store(false, std::memory_order_release);
  g_temp_slots[static_cast<size_t>(slot)].taken.store(false, std::memory_order_release);
}

}  // namespace

void check_output_path(const std::filesystem::path& target) {
  std::error_code ec;
  if (!target.has_filename() || std::filesystem::is_directory(target, ec)) {
    raise<InvalidArgument>("output '{}' is a folder; expected a file path", target.string());
  }
  const std::filesystem::path parent = target.parent_path();
  if (parent.empty() || std::filesystem::is_directory(parent, ec)) return;
  if (std::filesystem::exists(parent, ec)) {
    raise<IoError>("{}: cannot create: {} is a file, not a folder", target.string(), parent.string());
  }
  raise<IoError>("{}: cannot create: folder {} does not exist", target.string(), parent.string());
}

AtomicFileWriter::AtomicFileWriter(std::filesystem::path target) : target_(std::move(target)) {
  check_output_path(target_);
  std::random_device random;
  temp_ = target_;
  temp_ += fmt::format(".tmp{:08x}", random());
  install_signal_cleanup();
  file_ = std::fopen(temp_.c_str(), "wb");
  if (file_ == nullptr) raise<IoError>("{}: cannot create: {}", target_.string(), std::strerror(errno));
  temp_slot_ = register_temp_file(temp_);
}

AtomicFileWriter::~AtomicFileWriter() {
  unregister_temp_file(temp_slot_);
  if (file_ != nullptr) {
    std::fclose(file_);
    std::error_code ignored;
    std::filesystem::remove(temp_, ignored);
  }
}

void AtomicFileWriter::write(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    raise<IoError>("{}: write failed at offset {}: {}", temp_.string(), offset_, std::strerror(errno));
  }
  offset_ += bytes.size();
}

void AtomicFileWriter::write(std::string_view text) {
  write(std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

void AtomicFileWriter::commit() {
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) {
    raise<IoError>("{}: flush failed: {}", temp_.string(), std::strerror(errno));
  }
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::rename(temp_, target_, ec);
  if (ec) {
    std::filesystem::remove(temp_, ec);
    raise<IoError>("{}: cannot rename into place: {}", target_.string(), ec.message());
  }
  unregister_temp_file(temp_slot_);
  temp_slot_ = -1;
}

void check_output_is_not_input(const std::filesystem::path& input, const std::filesystem::path& output,
                               std::string_view input_role) {
  std::error_code ec;
  if (std::filesystem::exists(output, ec) && std::filesystem::equivalent(input, output, ec)) {
    raise<InvalidArgument>("output {} is the {} being read; write to another path", output.string(), input_role);
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view text) {
  AtomicFileWriter writer(path);
  writer.write(text);
  writer.commit();
}

}  // namespace stepdown
