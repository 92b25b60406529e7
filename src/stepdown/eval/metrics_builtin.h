#pragma once
// Factories of the text metrics, each defined beside the code it wraps; metrics.cpp
// registers them in MetricRegistry::with_text_metrics().
#include <memory>

#include "stepdown/eval/metrics.h"

namespace stepdown::eval {

std::unique_ptr<Metric> make_exact_match_metric(const MetricOptions& options);
std::unique_ptr<Metric> make_f1_metric(const MetricOptions& options);
std::unique_ptr<Metric> make_regex_metric(const MetricOptions& options);
std::unique_ptr<Metric> make_json_valid_metric(const MetricOptions& options);
std::unique_ptr<Metric> make_json_schema_metric(const MetricOptions& options);
// ROUGE F-measure; `type` is rouge1, rouge2, rougeL or rougeLsum.
std::unique_ptr<Metric> make_rouge_metric(std::string_view type, const MetricOptions& options);

}  // namespace stepdown::eval
