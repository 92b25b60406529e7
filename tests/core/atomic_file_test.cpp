#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"

namespace stepdown {
namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / (name + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

size_t count_files(const std::filesystem::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFileWriter, CommitRenamesIntoPlace) {
  const std::filesystem::path dir = fresh_dir("stepdown_atomic_commit");
  {
    AtomicFileWriter writer(dir / "out.txt");
    writer.write("hello");
    EXPECT_FALSE(std::filesystem::exists(dir / "out.txt"));
    writer.commit();
  }
  std::ifstream in(dir / "out.txt");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "hello");
  EXPECT_EQ(count_files(dir), 1u);
  std::filesystem::remove_all(dir);
}

TEST(AtomicFileWriter, AbandonedWriteLeavesNothing) {
  const std::filesystem::path dir = fresh_dir("stepdown_atomic_abandon");
  {
    AtomicFileWriter writer(dir / "out.txt");
    writer.write("partial");
  }
  EXPECT_EQ(count_files(dir), 0u);
  std::filesystem::remove_all(dir);
}

TEST(AtomicFileWriter, SigtermRemovesTemporaryFile) {
  const std::filesystem::path dir = fresh_dir("stepdown_atomic_signal");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicFileWriter writer(dir / "out.bin");
    writer.write("partial");
    std::raise(SIGTERM);
    ::_exit(0);  // not reached: the handler re-raises with the default action
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_EQ(count_files(dir), 0u);
  std::filesystem::remove_all(dir);
}

TEST(AtomicFileWriter, MissingFolderNamesTarget) {
  const std::filesystem::path target = std::filesystem::temp_directory_path() / "stepdown_no_such_folder" / "x.gguf";
  try {
    AtomicFileWriter writer(target);
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(target.string() + ": cannot create"), std::string::npos) << message;
    EXPECT_EQ(message.find(".tmp"), std::string::npos) << message;
  }
}

TEST(AtomicFileWriter, FolderAsTargetIsRejected) {
  EXPECT_THROW(AtomicFileWriter{std::filesystem::temp_directory_path()}, InvalidArgument);
}

TEST(CheckOutputPath, FileAsParentFolderIsNamed) {
  const std::filesystem::path dir = fresh_dir("stepdown_parent_file");
  std::ofstream(dir / "calib.txt") << "text";
  try {
    check_output_path(dir / "calib.txt" / "x.gguf");
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("calib.txt is a file, not a folder"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_output_path(dir / "missing" / "x.gguf"), IoError);
  EXPECT_THROW(check_output_path(dir), InvalidArgument);
  EXPECT_NO_THROW(check_output_path(dir / "x.gguf"));
  EXPECT_NO_THROW(check_output_path("x.gguf"));
  std::filesystem::remove_all(dir);
}

TEST(CheckOutputIsNotInput, RejectsSameFile) {
  const std::filesystem::path dir = fresh_dir("stepdown_same_file");
  std::ofstream(dir / "model.bin") << "weights";
  EXPECT_THROW(check_output_is_not_input(dir / "model.bin", dir / "." / "model.bin", "model"), InvalidArgument);
  EXPECT_NO_THROW(check_output_is_not_input(dir / "model.bin", dir / "other.bin", "model"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stepdown
