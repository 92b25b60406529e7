#pragma once
// Writes a file under a temporary name in the same folder and renames it into place on
// commit(), so a reader never sees a half-written file. Destroying the writer without
// commit() removes the temporary file, and so does SIGINT, SIGTERM or SIGHUP while it is
// open (for up to 16 writers open at once).
#include <cstdio>
#include <filesystem>
#include <span>
#include <string_view>

namespace stepdown {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path target);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  // Bytes written so far.
  uint64_t offset() const { return offset_; }
  // Flushes, syncs and renames the temporary file to the target.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::FILE* file_ = nullptr;
  uint64_t offset_ = 0;
  int temp_slot_ = -1;  // entry in the signal handler's list of temporary files
};

// Throws InvalidArgument when `target` is a folder, and IoError when its parent folder
// is missing or is a file. AtomicFileWriter checks this itself. A command that runs long
// before it writes calls it first, so a bad path fails before the work.
void check_output_path(const std::filesystem::path& target);

// Writes `text` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// Throws InvalidArgument when `output` names the same file as `input`, so a command never
// replaces the file it reads. `input_role` names the input in the message ("model", "suite").
void check_output_is_not_input(const std::filesystem::path& input, const std::filesystem::path& output,
                               std::string_view input_role);

}  // namespace stepdown
