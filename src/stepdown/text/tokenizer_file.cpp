// Picking a tokenizer loader from a file, and the tokenizer of an opened model.
#include <cstring>
#include <fstream>

#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/text/model_tokenizer.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::text {

std::unique_ptr<Tokenizer> load_tokenizer_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("cannot open tokenizer file {}: {}", path.string(), std::strerror(errno));
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) {
    return load_gguf_tokenizer(io::open_model_file(path).metadata);
  }
  if (path.extension() == ".json") return load_tokenizer_json(path);
  if (path.extension() == ".bin") return load_llama2c_tokenizer(path);
  raise<InvalidArgument>("{}: unknown tokenizer file type; expected tokenizer.json, a llama2.c tokenizer.bin or a GGUF file",
                         path.string());
}

std::unique_ptr<Tokenizer> load_model_tokenizer(const io::ModelFile& model) {
  if (const auto path = model.metadata.get_string(io::kTokenizerPathKey)) return load_tokenizer_file(*path);
  if (model.metadata.contains("tokenizer.ggml.model")) return load_gguf_tokenizer(model.metadata);
  raise<InvalidArgument>("{} carries no tokenizer; pass one with --tokenizer (tokenizer.json or tokenizer.bin)",
                         model.path.string());
}

}  // namespace stepdown::text
