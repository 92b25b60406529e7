#pragma once
// ROUGE-N, ROUGE-L and ROUGE-Lsum, computed as Google's rouge-score 0.1.2 computes them
// with its default tokenizer, so scores match that package to the last bit:
// - tokens: the text lowercased, every character outside [a-z0-9] a separator (so all
//   non-ASCII letters separate tokens), and, with the stemmer, tokens longer than 3
//   characters replaced by their Porter stem (porter_stemmer.h);
// - ROUGE-N: clipped n-gram overlap; precision over the prediction's n-grams, recall over
//   the target's, each denominator at least 1;
// - ROUGE-L: longest common subsequence of the two token sequences;
// - ROUGE-Lsum: sentences split on '\n' only, and the union LCS of each target sentence
//   against every prediction sentence, each token counted at most as often as it occurs
//   in both texts (ROUGE-1.5.5's summary-level LCS);
// - F-measure 2PR / (P + R), and 0 when P + R is 0.
#include <string>
#include <string_view>
#include <vector>

namespace stepdown::eval {

struct RougeScore {
  double precision = 0.0;
  double recall = 0.0;
  double fmeasure = 0.0;
};

// Splits `text` into rouge-score's tokens; see the file comment.
std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer);

// ROUGE-N for n >= 1 (rouge1 is n = 1). Throws InvalidArgument for n < 1.
RougeScore rouge_n(std::string_view target, std::string_view prediction, int n, bool use_stemmer);

// ROUGE-L over whole texts (newlines are ordinary separators).
RougeScore rouge_l(std::string_view target, std::string_view prediction, bool use_stemmer);

// ROUGE-Lsum with sentences separated by '\n'.
RougeScore rouge_lsum(std::string_view target, std::string_view prediction, bool use_stemmer);

}  // namespace stepdown::eval
