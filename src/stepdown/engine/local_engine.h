#pragma once
// An Engine over a model file on this machine (GGUF, Hugging Face directory or llama2.c
// checkpoint). Chat requests are rendered with the model's chat template; completion
// requests are tokenized as they are, with BOS as the tokenizer's configuration says.
// generate_all decodes up to `batch` sequences per step, each with its own KV cache, so
// every weight matrix is read once per step for all of them. Greedy outputs are the same
// as one request at a time unless two logits tie to within float rounding.
// NOTE: batched and single-token products differ in summation order (kernels::matmul's
// token tile against matvec's four accumulators), about 1e-6 relative.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "stepdown/core/thread_pool.h"
#include "stepdown/engine/engine.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/transformer.h"
#include "stepdown/model/weights.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::engine {

struct LocalEngineOptions {
  std::filesystem::path model_path;
  // For formats that carry no tokenizer (llama2.c tokenizer.bin, tokenizer.json).
  std::optional<std::filesystem::path> tokenizer_path;
  int threads = 0;                    // 0 uses every core
  std::string weights = "native";     // native, f32 or bf16 (converted at load)
  int64_t context = 4096;             // KV cache limit per sequence, capped at the model's
  int batch = 8;                      // sequences decoded together by generate_all
};

// "native" -> NONE, "f32" -> F32, "bf16" -> BF16; InvalidArgument otherwise.
model::WeightConversion parse_weight_conversion(const std::string& name);

class LocalEngine final : public Engine {
 public:
  // Loads the model and its tokenizer. Throws the loaders' errors, which name the file.
  explicit LocalEngine(LocalEngineOptions options);
  ~LocalEngine() override;

  std::string describe() const override;
  GenerationResult generate(const GenerationRequest& request) override;
  std::vector<GenerationResult> generate_all(const std::vector<GenerationRequest>& requests,
                                             const ProgressCallback& progress = {}) override;

  // The prompt tokens of `request`: the chat template applied to its messages, or its
  // prompt, encoded with the tokenizer's special tokens.
  std::vector<text::TokenId> prompt_tokens(const GenerationRequest& request) const;

  const text::Tokenizer& tokenizer() const { return *tokenizer_; }
  model::Transformer& transformer() { return *transformer_; }
  const io::ModelFile& model_file() const { return file_; }
  int64_t context() const;

 private:
  struct Sequence;
  // Runs requests [begin, end) of `requests` as one batch into `results`.
  void run_batch(const std::vector<GenerationRequest>& requests, size_t begin, size_t end,
                 std::vector<GenerationResult>& results);

  LocalEngineOptions options_;
  io::ModelFile file_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  model::ModelWeights weights_;
  ThreadPool pool_;
  std::unique_ptr<model::Transformer> transformer_;
};

}  // namespace stepdown::engine
