#pragma once
// A model file opened for use: its metadata in GGUF's key names and its tensors in GGUF's
// tensor names ("token_embd.weight", "blk.3.attn_q.weight", "output_norm.weight", ...),
// with the bytes memory-mapped in place. One entry, open_model_file(), detects the format.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stepdown/core/mapped_file.h"
#include "stepdown/core/tensor.h"
#include "stepdown/io/metadata.h"

namespace stepdown::io {

enum class ModelFormat { GGUF, SAFETENSORS_HF, LLAMA2C };
std::string_view model_format_name(ModelFormat format);

// Metadata key naming how the q and k projections lay out RoPE pairs, since the formats
// disagree: "interleaved" pairs (2i, 2i+1) as in Meta's checkpoints, llama2.c and GGUF
// llama files; or "neox" halves (i, i + d/2) as in Hugging Face checkpoints and GGUF
// qwen2, qwen3 and gemma3 files.
inline constexpr std::string_view kRopeLayoutKey = "stepdown.rope.layout";

// Metadata key holding the path of a tokenizer file that goes with the model
// (tokenizer.json in a Hugging Face directory, or the file given in OpenOptions).
inline constexpr std::string_view kTokenizerPathKey = "stepdown.tokenizer.path";

// RoPE scaling beyond GGUF's standard keys, set by the Hugging Face loader for
// rope_scaling {"rope_type": "llama3", ...}: "{arch}.rope.scaling.type" = "llama3" with
// "{arch}.rope.scaling.factor", "{arch}.rope.scaling.original_context_length" and these:
inline constexpr std::string_view kRopeLowFreqFactorSuffix = ".rope.scaling.low_freq_factor";
inline constexpr std::string_view kRopeHighFreqFactorSuffix = ".rope.scaling.high_freq_factor";

struct ModelFile {
  ModelFormat format = ModelFormat::GGUF;
  std::filesystem::path path;
  Metadata metadata;
  std::vector<TensorView> tensors;
  // Keeps the mapped bytes that `tensors` point into alive.
  std::vector<std::shared_ptr<MappedFile>> mappings;
  // Tensors whose bytes had to be converted on load (none for GGUF and safetensors).
  std::vector<std::shared_ptr<std::vector<std::byte>>> owned_buffers;

  // The tensor named `name`, or nullptr.
  const TensorView* find_tensor(std::string_view name) const;
  // The tensor named `name`; throws FormatError naming the file and tensor when absent.
  const TensorView& tensor(std::string_view name) const;
};

struct OpenOptions {
  // A tokenizer for formats that carry none (llama2.c tokenizer.bin, or tokenizer.json).
  std::optional<std::filesystem::path> tokenizer_path;
};

// Opens a GGUF file, a Hugging Face model directory (config.json + *.safetensors), or a
// llama2.c checkpoint, detected from the path and the file's first bytes.
ModelFile open_model_file(const std::filesystem::path& path, const OpenOptions& options = {});

}  // namespace stepdown::io
