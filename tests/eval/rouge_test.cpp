// ROUGE and the Porter stemmer against fixtures from rouge-score 0.1.2 and NLTK's
// PorterStemmer (scripts/golden/make_rouge_fixtures.py). Every value must be within
// 1e-9 of rouge-score's; the implementation is meant to be bit-identical.
#include <cmath>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/eval/porter_stemmer.h"
#include "stepdown/eval/rouge.h"
#include "test_paths.h"

namespace stepdown::eval {
namespace {

constexpr double kTolerance = 1e-9;

std::filesystem::path fixture_dir() { return test::source_dir() / "tests" / "golden" / "rouge"; }

RougeScore score_by_name(const std::string& type, const std::string& target, const std::string& prediction,
                         bool use_stemmer) {
  if (type == "rouge1") return rouge_n(target, prediction, 1, use_stemmer);
  if (type == "rouge2") return rouge_n(target, prediction, 2, use_stemmer);
  if (type == "rougeL") return rouge_l(target, prediction, use_stemmer);
  return rouge_lsum(target, prediction, use_stemmer);
}

TEST(Rouge, MatchesRougeScoreFixtures) {
  std::ifstream in(fixture_dir() / "pairs.jsonl");
  ASSERT_TRUE(in) << "missing " << fixture_dir() / "pairs.jsonl";
  std::string line;
  int pairs = 0;
  int values = 0;
  int bit_identical = 0;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const std::string target = record.at("target");
    const std::string prediction = record.at("prediction");
    for (const auto& [mode, use_stemmer] : {std::pair{"plain", false}, std::pair{"stemmed", true}}) {
      for (const auto& [type, expected] : record.at(mode).items()) {
        const RougeScore got = score_by_name(type, target, prediction, use_stemmer);
        const double actual[3] = {got.precision, got.recall, got.fmeasure};
        for (int k = 0; k < 3; ++k) {
          const double want = expected.at(k).get<double>();
          EXPECT_NEAR(actual[k], want, kTolerance)
              << type << " " << mode << " value " << k << " (precision, recall, fmeasure) on line " << pairs + 1
              << "\ntarget: " << nlohmann::json(target) << "\nprediction: " << nlohmann::json(prediction);
          ++values;
          if (actual[k] == want) ++bit_identical;
        }
      }
    }
    ++pairs;
  }
  EXPECT_GE(pairs, 1000);
  EXPECT_EQ(values, pairs * 2 * 4 * 3);
  std::printf("%d pairs, %d values, %d bit-identical\n", pairs, values, bit_identical);
}

TEST(PorterStemmer, MatchesNltkWordList) {
  std::ifstream in(fixture_dir() / "stems.tsv");
  ASSERT_TRUE(in) << "missing " << fixture_dir() / "stems.tsv";
  std::string line;
  int words = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string word = line.substr(0, tab);
    EXPECT_EQ(porter_stem(word), line.substr(tab + 1)) << "word: " << word;
    ++words;
  }
  EXPECT_GE(words, 1000);
}

TEST(PorterStemmer, PaperExamples) {
  EXPECT_EQ(porter_stem("caresses"), "caress");
  EXPECT_EQ(porter_stem("ponies"), "poni");
  EXPECT_EQ(porter_stem("agreed"), "agre");
  EXPECT_EQ(porter_stem("hopping"), "hop");
  EXPECT_EQ(porter_stem("relational"), "relat");
  EXPECT_EQ(porter_stem("dies"), "die");
  EXPECT_EQ(porter_stem("skies"), "sky");
  EXPECT_EQ(porter_stem("generalizations"), "gener");
}

TEST(RougeTokenize, LowercasesAndSplitsOnNonAlphanumeric) {
  EXPECT_EQ(rouge_tokenize("Hello, World! x86_64", false), (std::vector<std::string>{"hello", "world", "x86", "64"}));
  EXPECT_EQ(rouge_tokenize("café", false), (std::vector<std::string>{"caf"}));
  EXPECT_EQ(rouge_tokenize("\xC4\xB0stanbul \xE2\x84\xAA", false), (std::vector<std::string>{"i", "stanbul", "k"}));
  EXPECT_TRUE(rouge_tokenize("  \n\t ", false).empty());
}

TEST(RougeTokenize, StemsOnlyTokensLongerThanThree) {
  EXPECT_EQ(porter_stem("its"), "it");
  EXPECT_EQ(rouge_tokenize("its cats", true), (std::vector<std::string>{"its", "cat"}));
}

TEST(Rouge, RejectsNonPositiveN) { EXPECT_THROW(rouge_n("a", "a", 0, false), InvalidArgument); }

}  // namespace
}  // namespace stepdown::eval
