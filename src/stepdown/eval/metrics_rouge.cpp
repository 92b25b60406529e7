// rouge1, rouge2, rougeL and rougeLsum as metrics: the F-measure of rouge.h's scores,
// with the item's reference as rouge-score's target.
#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/metrics_builtin.h"
#include "stepdown/eval/rouge.h"

namespace stepdown::eval {
namespace {

class RougeMetric final : public Metric {
 public:
  RougeMetric(std::string_view type, bool use_stemmer) : type_(type), use_stemmer_(use_stemmer) {}
  std::string_view name() const override { return type_; }
  bool needs_reference() const override { return true; }

  double score(std::string_view prediction, const SuiteItem& item) const override {
    const std::string& reference = require_reference(item, name());
    if (type_ == "rouge1") return rouge_n(reference, prediction, 1, use_stemmer_).fmeasure;
    if (type_ == "rouge2") return rouge_n(reference, prediction, 2, use_stemmer_).fmeasure;
    if (type_ == "rougeL") return rouge_l(reference, prediction, use_stemmer_).fmeasure;
    return rouge_lsum(reference, prediction, use_stemmer_).fmeasure;
  }

 private:
  std::string type_;
  bool use_stemmer_;
};

}  // namespace

std::unique_ptr<Metric> make_rouge_metric(std::string_view type, const MetricOptions& options) {
  if (type != "rouge1" && type != "rouge2" && type != "rougeL" && type != "rougeLsum") {
    raise<InvalidArgument>("unknown ROUGE type '{}'; expected rouge1, rouge2, rougeL or rougeLsum", type);
  }
  return std::make_unique<RougeMetric>(type, options.use_stemmer);
}

}  // namespace stepdown::eval
