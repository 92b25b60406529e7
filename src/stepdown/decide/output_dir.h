#pragma once
// The output folder of `stepdown decide`, written as a whole: every file goes into a
// sibling staging folder, which replaces the previous output in one rename at the end. An
// interrupt or an error removes the staging folder and leaves the previous output intact.
#include <filesystem>

namespace stepdown::decide {

// The file whose presence marks a folder as an earlier output that may be replaced.
inline constexpr const char* kOutputMarker = "decision.json";

class StagedDir {
 public:
  // Creates `target`.tmp-<pid> beside `target` and registers it for interrupt cleanup.
  // Raises InvalidArgument when `target` is a file, or a folder that is neither empty nor
  // an earlier output (it has no kOutputMarker).
  explicit StagedDir(std::filesystem::path target);
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  const std::filesystem::path& dir() const { return staging_; }
  const std::filesystem::path& target() const { return target_; }

  // Swaps the staging folder into place (renameat2 RENAME_EXCHANGE when a previous output
  // exists, so no reader sees the target missing), then removes the previous output.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
};

// Hard-links `from` to `to`, or copies it when they are on different file systems.
void link_or_copy(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace stepdown::decide
