#include "stepdown/io/gguf.h"

#include "stepdown/core/error.h"

namespace stepdown::io {

bool looks_like_gguf(std::span<const std::byte> head) {
  return head.size() >= 4 && head[0] == std::byte{'G'} && head[1] == std::byte{'G'} && head[2] == std::byte{'U'} &&
         head[3] == std::byte{'F'};
}

ModelFile open_gguf(const std::filesystem::path& path) {
  raise<Unsupported>("{}: GGUF reading is not implemented yet", path.string());
}

}  // namespace stepdown::io
