#pragma once
// The tokenizer that belongs to an opened model file: the GGUF vocabulary in its metadata,
// or the tokenizer file recorded under kTokenizerPathKey (tokenizer.json beside a Hugging
// Face model, or the --tokenizer file given for a llama2.c checkpoint).
#include <memory>

#include "stepdown/io/model_file.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::text {

// Throws InvalidArgument naming the model file when it carries no tokenizer and none was
// given with --tokenizer.
std::unique_ptr<Tokenizer> load_model_tokenizer(const io::ModelFile& model);

}  // namespace stepdown::text
