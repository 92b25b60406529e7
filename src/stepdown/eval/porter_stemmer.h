#pragma once
// The Porter stemmer as NLTK 3.x runs it in its default NLTK_EXTENSIONS mode, which is
// the stemmer rouge-score 0.1.2 uses for `use_stemmer=True`. That mode adds to Porter's
// 1980 algorithm: a table of irregular forms (skies -> sky, dying -> die, ...), the
// 4-letter -ies/-ied rules (dies -> die), y -> i only after a consonant, the -alli, -fulli
// and -logi rules of step 2, and the 2-letter *o condition.
#include <string>
#include <string_view>

namespace stepdown::eval {

// Returns the stem of `word`, which must be lowercase ASCII (rouge-score only passes
// tokens of [a-z0-9]). Words of 1 or 2 characters are returned unchanged.
std::string porter_stem(std::string_view word);

}  // namespace stepdown::eval
