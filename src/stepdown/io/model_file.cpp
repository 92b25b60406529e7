#include "stepdown/io/model_file.h"

#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"
#include "stepdown/io/hf_model.h"
#include "stepdown/io/llama2c.h"

namespace stepdown::io {

namespace {

std::string hex_prefix(std::span<const std::byte> head) {
  std::string out;
  for (size_t i = 0; i < head.size() && i < 8; ++i) out += fmt::format("{:02x}", static_cast<unsigned>(head[i]));
  return out.empty() ? "nothing (empty file)" : out;
}

ModelFile open_detected(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (!looks_like_hf_directory(path)) {
      raise<FormatError>("{}: a directory with no config.json; expected a Hugging Face model directory", path.string());
    }
    return open_hf_directory(path);
  }
  if (!std::filesystem::exists(path, ec)) raise<IoError>("{}: no such file or directory", path.string());

  // A .safetensors file given directly opens as the directory it belongs to.
  if (path.extension() == ".safetensors" && looks_like_hf_directory(path.parent_path())) {
    return open_hf_directory(path.parent_path());
  }
  // The file is mapped once: detection looks at the mapped bytes and the loader keeps
  // the same mapping.
  auto file = std::make_shared<MappedFile>(path);
  const std::span<const std::byte> head = file->bytes();
  if (looks_like_gguf(head)) return open_gguf(std::move(file));
  if (looks_like_llama2c(head)) return open_llama2c(std::move(file));
  raise<FormatError>(
      "{}: unknown model format: first bytes are {}; expected the GGUF magic \"GGUF\", a llama2.c header, or a "
      "Hugging Face directory with config.json",
      path.string(), hex_prefix(head));
}

}  // namespace

std::string_view model_format_name(ModelFormat format) {
  switch (format) {
    case ModelFormat::GGUF: return "gguf";
    case ModelFormat::SAFETENSORS_HF: return "safetensors (Hugging Face)";
    case ModelFormat::LLAMA2C: return "llama2.c";
  }
  return "unknown";
}

const TensorView* ModelFile::find_tensor(std::string_view name) const {
  for (const TensorView& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorView& ModelFile::tensor(std::string_view name) const {
  const TensorView* t = find_tensor(name);
  if (t == nullptr) {
    raise<FormatError>("{}: tensor '{}' not found among the file's {} tensors", path.string(), name, tensors.size());
  }
  return *t;
}

ModelFile open_model_file(const std::filesystem::path& path, const OpenOptions& options) {
  ModelFile model = open_detected(path);
  if (options.tokenizer_path) {
    model.metadata.set_string(std::string(kTokenizerPathKey), options.tokenizer_path->string());
  }
  return model;
}

}  // namespace stepdown::io
