#include "stepdown/core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "stepdown/core/error.h"

namespace stepdown {

AtomicFileWriter::AtomicFileWriter(std::filesystem::path target) : target_(std::move(target)) {
  std::error_code ec;
  if (!target_.has_filename() || std::filesystem::is_directory(target_, ec)) {
    raise<InvalidArgument>("output '{}' is a folder; expected a file path", target_.string());
  }
  const std::filesystem::path parent = target_.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    raise<IoError>("{}: cannot create: folder {} does not exist", target_.string(), parent.string());
  }
  std::random_device random;
  temp_ = target_;
  temp_ += fmt::format(".tmp{:08x}", random());
  file_ = std::fopen(temp_.c_str(), "wb");
  if (file_ == nullptr) raise<IoError>("{}: cannot create: {}", target_.string(), std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
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
