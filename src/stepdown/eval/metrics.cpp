#include "stepdown/eval/metrics.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics_builtin.h"

namespace stepdown::eval {

MetricRegistry MetricRegistry::with_text_metrics() {
  MetricRegistry registry;
  registry.add("exact_match", make_exact_match_metric);
  registry.add("f1", make_f1_metric);
  registry.add("regex", make_regex_metric);
  registry.add("json_valid", make_json_valid_metric);
  registry.add("json_schema", make_json_schema_metric);
  for (std::string_view type : {"rouge1", "rouge2", "rougeL", "rougeLsum"}) {
    registry.add(std::string(type), [type](const MetricOptions& options) { return make_rouge_metric(type, options); });
  }
  return registry;
}

void MetricRegistry::add(std::string name, MetricFactory factory) {
  if (factories_.contains(name)) raise<InvalidArgument>("metric '{}' is already registered", name);
  factories_.emplace(std::move(name), std::move(factory));
}

bool MetricRegistry::contains(std::string_view name) const { return factories_.find(name) != factories_.end(); }

std::vector<std::string> MetricRegistry::names() const {
  std::vector<std::string> names;
  for (const auto& entry : factories_) names.push_back(entry.first);
  return names;
}

std::unique_ptr<Metric> MetricRegistry::create(std::string_view name, const MetricOptions& options) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    raise<InvalidArgument>("unknown metric '{}'; known metrics: {}", name, fmt::join(names(), ", "));
  }
  return it->second(options);
}

const std::string& require_reference(const SuiteItem& item, std::string_view metric_name) {
  if (!item.reference) {
    raise<InvalidArgument>("item '{}': field 'reference': missing; metric {} compares against a reference "
                           "(run `stepdown suite golden` or write one)",
                           item.id, metric_name);
  }
  return *item.reference;
}

}  // namespace stepdown::eval
