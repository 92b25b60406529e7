#include "stepdown/eval/eval_runner.h"

#include <map>
#include <memory>

#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"

namespace stepdown::eval {

engine::GenerationRequest request_for(const SuiteItem& item) {
  engine::GenerationRequest request;
  request.id = item.id;
  request.prompt = item.prompt;
  for (const ChatMessage& message : item.messages) request.messages.push_back({message.role, message.content});
  request.max_tokens = item.max_tokens;
  request.temperature = 0.0f;
  return request;
}

std::vector<engine::GenerationResult> generate_items(std::span<const SuiteItem> items, engine::Engine& engine,
                                                     const std::string& label) {
  std::vector<engine::GenerationRequest> requests;
  requests.reserve(items.size());
  for (const SuiteItem& item : items) requests.push_back(request_for(item));
  // Both engines name the failing request's id (the item id) in their errors.
  Progress progress(label, static_cast<int64_t>(items.size()));
  std::vector<engine::GenerationResult> outputs =
      engine.generate_all(requests, [&](size_t done, size_t) { progress.update(static_cast<int64_t>(done)); });
  progress.finish();
  if (outputs.size() != items.size()) {
    raise<Error>("{} returned {} results for {} requests", engine.describe(), outputs.size(), items.size());
  }
  return outputs;
}

namespace {

using MetricMap = std::map<std::string, std::unique_ptr<Metric>, std::less<>>;

// The metric called `name` from `metrics`, created on first use; an unknown name raises
// InvalidArgument naming the item.
Metric& metric_for(MetricMap& metrics, const std::string& name, const SuiteItem& item, const MetricRegistry& registry,
                   const MetricOptions& options) {
  auto metric = metrics.find(name);
  if (metric == metrics.end()) {
    try {
      metric = metrics.emplace(name, registry.create(name, options)).first;
    } catch (const InvalidArgument& e) {
      raise<InvalidArgument>("item '{}': field 'metric': {}", item.id, e.what());
    }
  }
  return *metric->second;
}

}  // namespace

std::vector<ItemResult> score_items(std::span<const SuiteItem> items,
                                    std::span<const engine::GenerationResult> outputs,
                                    const MetricRegistry& registry, const MetricOptions& options) {
  MetricMap metrics;
  std::vector<ItemResult> results;
  results.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const SuiteItem& item = items[i];
    const engine::GenerationResult& output = outputs[i];
    ItemResult result;
    result.id = item.id;
    result.stratum = item.stratum;
    result.output = output.text;
    result.prompt_tokens = output.prompt_tokens;
    result.output_tokens = output.completion_tokens;
    result.latency_ms = output.total_ms;
    for (const std::string& name : item.metrics) {
      Metric& metric = metric_for(metrics, name, item, registry, options);
      try {
        result.scores[name] = metric.score(output.text, item);
      } catch (const InvalidArgument& e) {
        raise<InvalidArgument>("item '{}': metric {}: {}", item.id, name, e.what());
      } catch (const Error& e) {
        raise<Error>("item '{}': metric {}: {}", item.id, name, e.what());
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

namespace {

// Fails before any generation when an item's metric compares against a reference the
// item lacks, so a long eval never ends in an error at scoring time.
void check_references_present(std::span<const SuiteItem> items, const MetricRegistry& registry,
                              const MetricOptions& options) {
  MetricMap metrics;
  for (const SuiteItem& item : items) {
    if (item.reference) continue;
    for (const std::string& name : item.metrics) {
      if (metric_for(metrics, name, item, registry, options).needs_reference()) {
        raise<InvalidArgument>(
            "item '{}': metric {} needs a reference, but the item has none; add goldens from the baseline "
            "with `stepdown suite golden` first",
            item.id, name);
      }
    }
  }
}

}  // namespace

Results run_eval(std::span<const SuiteItem> items, engine::Engine& engine, const MetricRegistry& registry,
                 const MetricOptions& options) {
  check_references_present(items, registry, options);
  const std::vector<engine::GenerationResult> outputs = generate_items(items, engine, "eval");
  Results results;
  results.tool_version = STEPDOWN_VERSION;
  results.items = score_items(items, outputs, registry, options);
  aggregate(results);
  return results;
}

std::vector<SuiteItem> make_goldens(std::span<const SuiteItem> items, engine::Engine& engine,
                                    size_t* count_generated) {
  std::vector<SuiteItem> out(items.begin(), items.end());
  std::vector<SuiteItem> to_generate;
  std::vector<size_t> positions;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].reference_source == ReferenceSource::kHuman) continue;
    to_generate.push_back(out[i]);
    positions.push_back(i);
  }
  const std::vector<engine::GenerationResult> outputs = generate_items(to_generate, engine, "golden");
  for (size_t j = 0; j < positions.size(); ++j) {
    out[positions[j]].reference = outputs[j].text;
    out[positions[j]].reference_source = ReferenceSource::kGolden;
  }
  if (count_generated) *count_generated = positions.size();
  return out;
}

}  // namespace stepdown::eval
