#pragma once
// SHA-256 (FIPS 180-4) of files, for the source hash in manifests.
#include <filesystem>
#include <string>

namespace stepdown::quant {

// Lower-case hex SHA-256 of a file's bytes. For a directory (a Hugging Face model), the
// SHA-256 of the lines "<sha256>  <relative path>\n" of its regular files, sorted by path.
std::string sha256_path(const std::filesystem::path& path);

}  // namespace stepdown::quant
