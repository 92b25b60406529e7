#pragma once
// SHA-256 (FIPS 180-4), for the model, suite and source digests in manifests and results.
#include <filesystem>
#include <string>
#include <string_view>

namespace stepdown {

// Lower-case hex SHA-256 of a file's bytes. For a directory (a Hugging Face model), the
// SHA-256 of the lines "<sha256>  <relative path>\n" of its regular files, sorted by path.
std::string sha256_path(const std::filesystem::path& path);

// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace stepdown
