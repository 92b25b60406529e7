#pragma once
// A read-only memory map of a whole file. Weights are used in place from the map, so a
// model file is never read into a second buffer.
#include <cstddef>
#include <filesystem>
#include <span>

namespace stepdown {

class MappedFile {
 public:
  // Maps `path` read-only; throws IoError naming the path and the OS error. An empty file
  // maps to an empty span.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace stepdown
