// Porter stemmer, NLTK_EXTENSIONS mode. Each step mirrors one step of the published
// algorithm; the comments name NLTK's deviations where they apply. A rule list is tried
// in order and the first rule whose suffix matches decides the outcome: when its
// condition fails the word is returned unchanged and later rules are not tried.
#include "stepdown/eval/porter_stemmer.h"

#include <algorithm>
#include <array>
#include <functional>
#include <utility>
#include <vector>

namespace stepdown::eval {
namespace {

bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// consonant[i] for every i: a letter other than a, e, i, o, u, and other than a 'y'
// preceded by a consonant. A 'y' that starts the word is a consonant. Digits count as
// consonants, as in NLTK.
std::vector<bool> consonant_flags(std::string_view word) {
  std::vector<bool> flags(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    if (is_vowel_letter(word[i])) {
      flags[i] = false;
    } else if (word[i] == 'y') {
      flags[i] = i == 0 ? true : !flags[i - 1];
    } else {
      flags[i] = true;
    }
  }
  return flags;
}

bool is_consonant(std::string_view word, size_t i) { return consonant_flags(word.substr(0, i + 1))[i]; }

// m in [C](VC){m}[V]: the number of vowel-to-consonant transitions.
int measure(std::string_view stem) {
  const std::vector<bool> flags = consonant_flags(stem);
  int m = 0;
  for (size_t i = 1; i < flags.size(); ++i) {
    if (!flags[i - 1] && flags[i]) ++m;
  }
  return m;
}

bool has_positive_measure(std::string_view stem) { return measure(stem) > 0; }

bool contains_vowel(std::string_view stem) {
  const std::vector<bool> flags = consonant_flags(stem);
  return std::find(flags.begin(), flags.end(), false) != flags.end();
}

// Condition *d: the word ends with a double consonant.
bool ends_double_consonant(std::string_view word) {
  const size_t n = word.size();
  return n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1);
}

// Condition *o: the word ends consonant-vowel-consonant and the last consonant is not
// w, x or y. NLTK also accepts a 2-letter vowel-consonant word.
bool ends_cvc(std::string_view word) {
  const size_t n = word.size();
  if (n >= 3) {
    const char last = word[n - 1];
    return is_consonant(word, n - 3) && !is_consonant(word, n - 2) && is_consonant(word, n - 1) &&
           last != 'w' && last != 'x' && last != 'y';
  }
  return n == 2 && !is_consonant(word, 0) && is_consonant(word, 1);
}

bool ends_with(std::string_view word, std::string_view suffix) { return word.ends_with(suffix); }

std::string strip_suffix(std::string_view word, std::string_view suffix) {
  return std::string(word.substr(0, word.size() - suffix.size()));
}

struct SuffixRule {
  std::string_view suffix;
  std::string_view replacement;
  std::function<bool(std::string_view stem)> condition;  // empty: unconditional
};

std::string apply_rules(std::string_view word, const std::vector<SuffixRule>& rules) {
  for (const SuffixRule& rule : rules) {
    if (!ends_with(word, rule.suffix)) continue;
    const std::string stem = strip_suffix(word, rule.suffix);
    if (!rule.condition || rule.condition(stem)) return stem + std::string(rule.replacement);
    return std::string(word);
  }
  return std::string(word);
}

std::string step1a(std::string_view word) {
  // NLTK: a 4-letter -ies word keeps its e, so dies -> die but flies -> fli.
  if (word.size() == 4 && ends_with(word, "ies")) return strip_suffix(word, "ies") + "ie";
  return apply_rules(word, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

std::string step1b(std::string_view word) {
  // NLTK: -ied becomes -ie in a 4-letter word and -i otherwise (died -> die, spied -> spi).
  if (ends_with(word, "ied")) return strip_suffix(word, "ied") + (word.size() == 4 ? "ie" : "i");

  if (ends_with(word, "eed")) {
    const std::string stem = strip_suffix(word, "eed");
    return measure(stem) > 0 ? stem + "ee" : std::string(word);
  }

  std::string stem;
  bool removed = false;
  for (std::string_view suffix : {std::string_view("ed"), std::string_view("ing")}) {
    if (ends_with(word, suffix)) {
      stem = strip_suffix(word, suffix);
      if (contains_vowel(stem)) {
        removed = true;
        break;
      }
    }
  }
  if (!removed) return std::string(word);

  // Tidy the stem left by -ed or -ing: restore the e of -ate, -ble and -ize, undouble a
  // final consonant other than l, s or z, or add an e to a short cvc stem.
  if (ends_with(stem, "at") || ends_with(stem, "bl") || ends_with(stem, "iz")) return stem + "e";
  if (ends_double_consonant(stem)) {
    const char last = stem.back();
    if (last != 'l' && last != 's' && last != 'z') stem.pop_back();
    return stem;
  }
  if (measure(stem) == 1 && ends_cvc(stem)) return stem + "e";
  return stem;
}

std::string step1c(std::string_view word) {
  // NLTK: y -> i only after a consonant that is not the whole stem (happy -> happi,
  // enjoy and by unchanged).
  return apply_rules(word, {{"y", "i", [](std::string_view stem) {
                               return stem.size() > 1 && is_consonant(stem, stem.size() - 1);
                             }}});
}

std::string step2(std::string_view word) {
  // NLTK applies alli -> al first and runs step 2 again on the result.
  if (ends_with(word, "alli") && has_positive_measure(strip_suffix(word, "alli"))) {
    return step2(strip_suffix(word, "alli") + "al");
  }
  const auto m_positive = [](std::string_view stem) { return has_positive_measure(stem); };
  const std::string whole(word);
  return apply_rules(word, {
                               {"ational", "ate", m_positive},
                               {"tional", "tion", m_positive},
                               {"enci", "ence", m_positive},
                               {"anci", "ance", m_positive},
                               {"izer", "ize", m_positive},
                               {"bli", "ble", m_positive},  // the published rule is abli -> able
                               {"alli", "al", m_positive},
                               {"entli", "ent", m_positive},
                               {"eli", "e", m_positive},
                               {"ousli", "ous", m_positive},
                               {"ization", "ize", m_positive},
                               {"ation", "ate", m_positive},
                               {"ator", "ate", m_positive},
                               {"alism", "al", m_positive},
                               {"iveness", "ive", m_positive},
                               {"fulness", "ful", m_positive},
                               {"ousness", "ous", m_positive},
                               {"aliti", "al", m_positive},
                               {"iviti", "ive", m_positive},
                               {"biliti", "ble", m_positive},
                               {"fulli", "ful", m_positive},
                               // The l of -logi stays with the stem for the measure, so
                               // geologi -> geolog like archaeologi -> archaeolog.
                               {"logi", "log",
                                [&whole](std::string_view) {
                                  return has_positive_measure(std::string_view(whole).substr(0, whole.size() - 3));
                                }},
                           });
}

std::string step3(std::string_view word) {
  const auto m_positive = [](std::string_view stem) { return has_positive_measure(stem); };
  return apply_rules(word, {{"icate", "ic", m_positive},
                            {"ative", "", m_positive},
                            {"alize", "al", m_positive},
                            {"iciti", "ic", m_positive},
                            {"ical", "ic", m_positive},
                            {"ful", "", m_positive},
                            {"ness", "", m_positive}});
}

std::string step4(std::string_view word) {
  const auto m_above_1 = [](std::string_view stem) { return measure(stem) > 1; };
  return apply_rules(word, {{"al", "", m_above_1},
                            {"ance", "", m_above_1},
                            {"ence", "", m_above_1},
                            {"er", "", m_above_1},
                            {"ic", "", m_above_1},
                            {"able", "", m_above_1},
                            {"ible", "", m_above_1},
                            {"ant", "", m_above_1},
                            {"ement", "", m_above_1},
                            {"ment", "", m_above_1},
                            {"ent", "", m_above_1},
                            {"ion", "",
                             [](std::string_view stem) {
                               return measure(stem) > 1 && (stem.back() == 's' || stem.back() == 't');
                             }},
                            {"ou", "", m_above_1},
                            {"ism", "", m_above_1},
                            {"ate", "", m_above_1},
                            {"iti", "", m_above_1},
                            {"ous", "", m_above_1},
                            {"ive", "", m_above_1},
                            {"ize", "", m_above_1}});
}

std::string step5a(std::string_view word) {
  // Both rules for a final e are tried, unlike a rule list.
  if (!ends_with(word, "e")) return std::string(word);
  const std::string stem = strip_suffix(word, "e");
  const int m = measure(stem);
  if (m > 1) return stem;
  if (m == 1 && !ends_cvc(stem)) return stem;
  return std::string(word);
}

std::string step5b(std::string_view word) {
  // -ll -> -l when the word without its last l has m > 1.
  if (ends_with(word, "ll") && measure(word.substr(0, word.size() - 1)) > 1) {
    return std::string(word.substr(0, word.size() - 1));
  }
  return std::string(word);
}

// Irregular forms that NLTK maps directly, before any step.
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> kIrregularForms = {{
    {"sky", "sky"},
    {"skies", "sky"},
    {"dying", "die"},
    {"lying", "lie"},
    {"tying", "tie"},
    {"news", "news"},
    {"innings", "inning"},
    {"inning", "inning"},
    {"outings", "outing"},
    {"outing", "outing"},
    {"cannings", "canning"},
    {"canning", "canning"},
    {"howe", "howe"},
    {"proceed", "proceed"},
    {"exceed", "exceed"},
    {"succeed", "succeed"},
}};

}  // namespace

std::string porter_stem(std::string_view word) {
  for (const auto& [form, stem] : kIrregularForms) {
    if (form == word) return std::string(stem);
  }
  if (word.size() <= 2) return std::string(word);

  std::string stem = step1a(word);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  stem = step5b(stem);
  return stem;
}

}  // namespace stepdown::eval
