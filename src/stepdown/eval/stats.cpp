#include "stepdown/eval/stats.h"

#include <map>

#include "stepdown/core/error.h"

namespace stepdown::eval {
namespace {

constexpr size_t kMaxListedIds = 20;

std::string list_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size() && i < kMaxListedIds; ++i) out += (i ? ", " : "") + ids[i];
  if (ids.size() > kMaxListedIds) out += fmt::format(" and {} more", ids.size() - kMaxListedIds);
  return out;
}

double score_of(const ItemResult& item, const std::string& metric, const std::string& source, size_t index) {
  auto it = item.scores.find(metric);
  if (it == item.scores.end()) {
    raise<FormatError>("{}: field items[{}].scores.{}: missing score for primary metric {} of stratum \"{}\" (item \"{}\")",
                       source, index, metric, metric, item.stratum, item.id);
  }
  return it->second;
}

struct Pairs {
  std::string metric;
  std::vector<double> baseline;
  std::vector<double> candidate;
  std::vector<double> differences;
};

StratumDelta summarise(const std::string& stratum, const Pairs& pairs, const BootstrapOptions& options) {
  StratumDelta out;
  out.stratum = stratum;
  out.metric = pairs.metric;
  out.n = static_cast<int64_t>(pairs.differences.size());
  double baseline_sum = 0.0;
  double candidate_sum = 0.0;
  for (size_t i = 0; i < pairs.baseline.size(); ++i) {
    baseline_sum += pairs.baseline[i];
    candidate_sum += pairs.candidate[i];
  }
  out.baseline_mean = baseline_sum / static_cast<double>(out.n);
  out.candidate_mean = candidate_sum / static_cast<double>(out.n);
  BootstrapOptions seeded = options;
  seeded.seed = derive_seed(options.seed, stratum);
  out.delta = paired_bootstrap(pairs.differences, seeded);
  return out;
}

}  // namespace

DeltaReport compute_deltas(const Results& baseline, const std::string& baseline_source, const Results& candidate,
                           const std::string& candidate_source, const PrimaryMetricFn& primary_metric,
                           const BootstrapOptions& options) {
  std::map<std::string, size_t> candidate_index;
  for (size_t i = 0; i < candidate.items.size(); ++i) candidate_index[candidate.items[i].id] = i;

  std::vector<std::string> only_baseline;
  std::vector<std::string> only_candidate;
  for (const ItemResult& item : baseline.items) {
    if (!candidate_index.contains(item.id)) only_baseline.push_back(item.id);
  }
  std::map<std::string, bool> baseline_ids;
  for (const ItemResult& item : baseline.items) baseline_ids[item.id] = true;
  for (const ItemResult& item : candidate.items) {
    if (!baseline_ids.contains(item.id)) only_candidate.push_back(item.id);
  }
  if (!only_baseline.empty() || !only_candidate.empty()) {
    std::string message = fmt::format("item ids of {} and {} do not match", baseline_source, candidate_source);
    if (!only_baseline.empty()) {
      message += fmt::format("; {} only in {}: {}", only_baseline.size(), baseline_source, list_ids(only_baseline));
    }
    if (!only_candidate.empty()) {
      message += fmt::format("; {} only in {}: {}", only_candidate.size(), candidate_source, list_ids(only_candidate));
    }
    raise<FormatError>("{}; evaluate both models on the same suite", message);
  }
  if (baseline.items.empty()) raise<FormatError>("{}: field items: no items to compare", baseline_source);

  std::map<std::string, Pairs> strata;
  Pairs overall;
  for (size_t b = 0; b < baseline.items.size(); ++b) {
    const ItemResult& base = baseline.items[b];
    const size_t c = candidate_index.at(base.id);
    const ItemResult& cand = candidate.items[c];
    if (base.stratum != cand.stratum) {
      raise<FormatError>("{}: field items[{}].stratum: item \"{}\" is in stratum \"{}\" but in \"{}\" in {}",
                         candidate_source, c, base.id, cand.stratum, base.stratum, baseline_source);
    }
    Pairs& pairs = strata[base.stratum];
    if (pairs.metric.empty()) pairs.metric = primary_metric(base.stratum);
    const double x = score_of(base, pairs.metric, baseline_source, b);
    const double y = score_of(cand, pairs.metric, candidate_source, c);
    for (Pairs* target : {&pairs, &overall}) {
      target->baseline.push_back(x);
      target->candidate.push_back(y);
      target->differences.push_back(y - x);
    }
    if (overall.metric.empty()) {
      overall.metric = pairs.metric;
    } else if (overall.metric != pairs.metric) {
      overall.metric = "mixed";
    }
  }

  DeltaReport report;
  for (const auto& [name, pairs] : strata) report.strata.push_back(summarise(name, pairs, options));
  report.overall = summarise("overall", overall, options);
  return report;
}

}  // namespace stepdown::eval
