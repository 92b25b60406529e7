#include "stepdown/decide/output_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "stepdown/core/error.h"
#include "stepdown/decide/interrupt.h"

namespace stepdown::decide {

namespace fs = std::filesystem;

StagedDir::StagedDir(fs::path target) : target_(fs::weakly_canonical(fs::absolute(std::move(target)))) {
  if (target_.filename().empty()) target_ = target_.parent_path();
  if (fs::exists(target_) && !fs::is_directory(target_)) {
    raise<InvalidArgument>("output {} exists and is not a folder; give another --out", target_.string());
  }
  // The commit replaces the whole folder, so only an earlier output or an empty folder may
  // be replaced, never a folder that happens to have the same name.
  if (fs::is_directory(target_) && !fs::is_empty(target_) && !fs::exists(target_ / kOutputMarker)) {
    raise<InvalidArgument>("output {} is a folder without {}, so it is not an earlier output of stepdown decide; "
                           "give a new or empty folder with --out",
                           target_.string(), kOutputMarker);
  }
  const fs::path parent = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) raise<IoError>("{}: cannot create the output's parent folder: {}", parent.string(), error.message());
  staging_ = parent / fmt::format("{}.tmp-{}", target_.filename().string(), ::getpid());
  fs::remove_all(staging_, error);
  fs::create_directories(staging_, error);
  if (error) raise<IoError>("{}: cannot create the staging folder: {}", staging_.string(), error.message());
  register_interrupt_cleanup(staging_);
}

StagedDir::~StagedDir() {
  std::error_code error;
  fs::remove_all(staging_, error);
  unregister_interrupt_cleanup(staging_);
}

void StagedDir::commit() {
  if (fs::exists(target_)) {
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0) {
      raise<IoError>("{}: cannot replace the previous output: {}", target_.string(), std::strerror(errno));
    }
    // The staging name now contains the previous output, which the destructor removes.
  } else {
    std::error_code error;
    fs::rename(staging_, target_, error);
    if (error) raise<IoError>("{}: cannot move the output into place: {}", target_.string(), error.message());
  }
}

void link_or_copy(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::create_hard_link(from, to, error);
  if (!error) return;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
  if (error) raise<IoError>("cannot copy {} to {}: {}", from.string(), to.string(), error.message());
}

}  // namespace stepdown::decide
