#pragma once
// Metrics score one model output against one suite item, as a value in [0, 1]. Each has
// a name from rouge-score and HF evaluate (exact_match, f1, rouge1, ...). A
// MetricRegistry maps names to factories, so a suite names its metrics as strings and
// metrics that need more than text (code execution, an LLM judge) are added by the
// layers that provide them.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/eval/suite.h"
#include "stepdown/eval/text_normalize.h"

namespace stepdown::eval {

// Run-wide settings that some metrics read.
struct MetricOptions {
  bool use_stemmer = false;          // rouge*: Porter-stem tokens longer than 3 characters
  TextNormalization normalization;   // exact_match and f1; SQuAD's by default
};

class Metric {
 public:
  virtual ~Metric() = default;

  virtual std::string_view name() const = 0;
  // True when score() reads item.reference, so the item needs a golden or human answer.
  virtual bool needs_reference() const = 0;
  // Throws InvalidArgument naming the field when `item` lacks an argument this metric
  // reads or has one it cannot use (an invalid pattern, an unsupported schema keyword).
  virtual void check_item(const SuiteItem& item) const {}
  // Score of `prediction` for `item`, in [0, 1]. Throws InvalidArgument when the item
  // fails check_item() or needs a reference it does not have.
  virtual double score(std::string_view prediction, const SuiteItem& item) const = 0;
};

using MetricFactory = std::function<std::unique_ptr<Metric>(const MetricOptions& options)>;

class MetricRegistry {
 public:
  // A registry with every metric that needs only text: exact_match, f1, regex,
  // json_valid, json_schema, rouge1, rouge2, rougeL, rougeLsum.
  static MetricRegistry with_text_metrics();

  // Adds a metric. Throws InvalidArgument when `name` is already registered.
  void add(std::string name, MetricFactory factory);
  bool contains(std::string_view name) const;
  // Registered names in sorted order.
  std::vector<std::string> names() const;
  // Creates the metric `name`. Throws InvalidArgument listing the known names when
  // `name` is not registered.
  std::unique_ptr<Metric> create(std::string_view name, const MetricOptions& options = {}) const;

 private:
  std::map<std::string, MetricFactory, std::less<>> factories_;
};

// The item's reference, or InvalidArgument naming the item and metric when it has none.
const std::string& require_reference(const SuiteItem& item, std::string_view metric_name);

}  // namespace stepdown::eval
