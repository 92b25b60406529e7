// exact_match and f1 over normalised answers (text_normalize.h).
#include <algorithm>
#include <unordered_map>

#include "stepdown/eval/metrics.h"
#include "stepdown/eval/metrics_builtin.h"

namespace stepdown::eval {
namespace {

// 1 when the normalised prediction equals the normalised reference.
class ExactMatchMetric final : public Metric {
 public:
  explicit ExactMatchMetric(const TextNormalization& normalization) : normalization_(normalization) {}
  std::string_view name() const override { return "exact_match"; }
  bool needs_reference() const override { return true; }

  double score(std::string_view prediction, const SuiteItem& item) const override {
    const std::string& reference = require_reference(item, name());
    return normalize_text(prediction, normalization_) == normalize_text(reference, normalization_) ? 1.0 : 0.0;
  }

 private:
  TextNormalization normalization_;
};

// SQuAD token F1: the harmonic mean of precision and recall of the bag of normalised
// whitespace-separated tokens. When either side has no tokens the score is 1 if both
// have none and 0 otherwise, as in SQuAD 2.0's script (SQuAD 1.1's returns 0 for both
// empty).
class TokenF1Metric final : public Metric {
 public:
  explicit TokenF1Metric(const TextNormalization& normalization) : normalization_(normalization) {}
  std::string_view name() const override { return "f1"; }
  bool needs_reference() const override { return true; }

  double score(std::string_view prediction, const SuiteItem& item) const override {
    const std::string& reference = require_reference(item, name());
    const std::vector<std::string> predicted = split_whitespace(normalize_text(prediction, normalization_));
    const std::vector<std::string> expected = split_whitespace(normalize_text(reference, normalization_));
    if (predicted.empty() || expected.empty()) return predicted.empty() && expected.empty() ? 1.0 : 0.0;

    std::unordered_map<std::string_view, int64_t> expected_counts;
    for (const std::string& token : expected) ++expected_counts[token];
    int64_t common = 0;
    for (const std::string& token : predicted) {
      auto it = expected_counts.find(token);
      if (it != expected_counts.end() && it->second > 0) {
        --it->second;
        ++common;
      }
    }
    if (common == 0) return 0.0;
    const double precision = static_cast<double>(common) / static_cast<double>(predicted.size());
    const double recall = static_cast<double>(common) / static_cast<double>(expected.size());
    return 2 * precision * recall / (precision + recall);
  }

 private:
  TextNormalization normalization_;
};

}  // namespace

std::unique_ptr<Metric> make_exact_match_metric(const MetricOptions& options) {
  return std::make_unique<ExactMatchMetric>(options.normalization);
}

std::unique_ptr<Metric> make_f1_metric(const MetricOptions& options) {
  return std::make_unique<TokenF1Metric>(options.normalization);
}

}  // namespace stepdown::eval
