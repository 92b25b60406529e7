#include "stepdown/io/hf_model.h"

#include "stepdown/core/error.h"

namespace stepdown::io {

bool looks_like_hf_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_directory(dir, ec) && std::filesystem::is_regular_file(dir / "config.json", ec);
}

ModelFile open_hf_directory(const std::filesystem::path& dir) {
  raise<Unsupported>("{}: Hugging Face directories are not implemented yet", dir.string());
}

}  // namespace stepdown::io
