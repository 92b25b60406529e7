#include "stepdown/decide/reasons.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace stepdown::decide {
namespace {

bool is_int8_family(const std::string& name) { return name == "int8" || name == "w8a8" || name == "int8-outlier"; }
bool is_int4_family(const std::string& name) { return name.starts_with("int4") || name == "mixed"; }

std::string where(const BudgetMiss& miss) {
  return fmt::format("on {} ({})", miss.device, miss.predicted ? "predicted" : "measured");
}

// Megabytes with enough digits to tell a tiny test model from its budget.
std::string format_mb(double mb) {
  if (mb >= 100) return fmt::format("{:.0f}", mb);
  if (mb >= 1) return fmt::format("{:.1f}", mb);
  return fmt::format("{:.2f}", mb);
}

std::string format_miss(const BudgetMiss& miss) {
  if (miss.limit == "device memory") {
    return fmt::format("needs {} MB and does not fit in memory {}", format_mb(miss.value), where(miss));
  }
  if (miss.limit == "memory") {
    return fmt::format("needs {} MB, above the {:g} MB memory budget {}", format_mb(miss.value), miss.budget,
                       where(miss));
  }
  return fmt::format("has {} {:.1f} ms, above the {:.1f} ms budget {}", miss.limit, miss.value, miss.budget,
                     where(miss));
}

// "the 48 ms TPOT p95 and 300 ms TTFT p95"
std::string budget_phrase(const Budget& budget, std::optional<double> memory_mb) {
  std::vector<std::string> parts;
  if (budget.tpot_p95_ms) parts.push_back(fmt::format("{:g} ms TPOT p95", *budget.tpot_p95_ms));
  if (budget.ttft_p95_ms) parts.push_back(fmt::format("{:g} ms TTFT p95", *budget.ttft_p95_ms));
  if (budget.e2e_p95_ms) {
    parts.push_back(fmt::format("{:g} ms end-to-end p95 ({} output tokens)", *budget.e2e_p95_ms, budget.output_tokens));
  }
  if (memory_mb) parts.push_back(fmt::format("{:g} MB memory", *memory_mb));
  std::string text = "the ";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) text += i + 1 == parts.size() ? " and " : ", ";
    text += parts[i];
  }
  return text + (parts.size() > 1 ? " budgets" : " budget");
}

std::string device_phrase(const std::vector<std::string>& devices, const RungRecord& rung) {
  std::string text;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (i > 0) text += i + 1 == devices.size() ? " and " : ", ";
    text += devices[i] + (devices[i] == "host" && rung.measured ? " (measured)" : " (predicted)");
  }
  return text;
}

std::string format_quality_miss(const QualityRow& row) {
  const double half_width = (row.ci_high - row.ci_low) / 2;
  return fmt::format("the `{}` stratum's {} drops {:.1f}% ± {:.1f}% (tolerance {:.1f}%, n={})", row.name, row.metric,
                     -100 * row.delta, 100 * half_width, 100 * row.tolerance, row.n);
}

std::vector<BudgetMiss> all_misses(const RungRecord& rung, const DecidePolicy& policy) {
  std::vector<BudgetMiss> misses;
  for (const std::string& device : policy.devices) {
    for (BudgetMiss& miss : budget_misses(rung, device, policy.budget, policy.memory_mb)) {
      misses.push_back(std::move(miss));
    }
  }
  return misses;
}

std::vector<const QualityRow*> failing_strata(const RungRecord& rung) {
  std::vector<const QualityRow*> rows;
  for (const QualityRow& row : rung.strata) {
    if (!row.pass) rows.push_back(&row);
  }
  if (rung.overall && rung.overall->gated && !rung.overall->pass) rows.push_back(&*rung.overall);
  return rows;
}

// The quality clause of a passing rung's summary. The gate fails a stratum only when its
// drop is proven beyond the tolerance, so a stratum whose interval straddles the tolerance
// passes as inconclusive. Such strata are named, because "within tolerance" would
// overstate them.
std::string quality_phrase(const RungRecord& rung) {
  std::string inconclusive;
  for (const QualityRow& row : rung.strata) {
    if (!row.gated || row.verdict != "inconclusive") continue;
    inconclusive += fmt::format("{}{} {:+.3f} (95% CI {:+.3f} to {:+.3f}, tolerance {:.3g}, {} items)",
                                inconclusive.empty() ? "" : "; ", row.name, row.delta, row.ci_low, row.ci_high,
                                row.tolerance, row.n);
  }
  if (inconclusive.empty()) return "stays within every stratum's tolerance";
  return "no stratum's drop is proven beyond its tolerance, but the gate is inconclusive for " + inconclusive +
         ", so more items are needed to confirm";
}

bool meets_all_budgets(const RungRecord& rung) {
  if (rung.meets_budget.empty()) return false;
  return std::all_of(rung.meets_budget.begin(), rung.meets_budget.end(), [](const auto& e) { return e.second; });
}

// How many times fewer bytes per token the lightest measured rung would need to meet every
// latency limit on every device: decode time scales with bytes read, and prefill time with
// parameters, so one factor covers both. Returns nullopt when no rung was measured.
std::optional<std::string> smaller_architecture_step(const std::vector<RungRecord>& rungs, const DecidePolicy& policy) {
  const RungRecord* lightest = nullptr;
  for (const RungRecord& rung : rungs) {
    if (!rung.measured || rung.weight_bytes_per_token <= 0) continue;
    if (lightest == nullptr || rung.weight_bytes_per_token < lightest->weight_bytes_per_token) lightest = &rung;
  }
  if (lightest == nullptr) return std::nullopt;

  double factor = 1.0;
  std::string binding;
  for (const std::string& device : policy.devices) {
    const std::optional<DeviceLatency> latency = latency_on(*lightest, device, policy.budget);
    if (!latency) continue;
    const auto consider = [&](const std::optional<double>& limit, double value, const char* name) {
      if (!limit || value <= 0) return;
      const double f = *limit / value;
      if (f < factor) {
        factor = f;
        binding = fmt::format("{} p95 <= {:g} ms on {}", name, *limit, device);
      }
    };
    consider(policy.budget.tpot_p95_ms, latency->tpot_ms, "TPOT");
    consider(policy.budget.ttft_p95_ms, latency->ttft_ms, "TTFT");
    consider(policy.budget.e2e_p95_ms, latency->e2e_ms, "end-to-end");
  }
  if (binding.empty()) return std::nullopt;

  const double bytes = lightest->weight_bytes_per_token * factor;
  // q4_0 stores 4.5 bits per weight (a 16-bit scale per 32 weights).
  const double parameters = bytes * 8 / 4.5;
  return fmt::format("a smaller architecture: prune, then distill, then quantize, needing {} — about {:.2f}x the "
                     "lightest rung ({}), so at most {:.1f} MB of weights read per token, about {:.1f}M parameters at "
                     "4 bits (q4_0); this suits narrow, stable tasks",
                     binding, factor, lightest->name, bytes / 1e6, parameters / 1e6);
}

}  // namespace

std::optional<DeviceLatency> latency_on(const RungRecord& rung, const std::string& device, const Budget& budget) {
  DeviceLatency latency;
  if (device == "host" && rung.measured) {
    latency.ttft_ms = rung.measured->ttft_p95_ms;
    latency.tpot_ms = rung.measured->tpot_p95_ms;
    // NOTE: the sum of two p95s overstates the p95 of the sum a little; the budget errs safe.
    latency.e2e_ms = latency.ttft_ms + static_cast<double>(std::max<int64_t>(budget.output_tokens - 1, 0)) *
                                           latency.tpot_ms;
    return latency;
  }
  const auto it = rung.predicted.find(device);
  if (it == rung.predicted.end()) return std::nullopt;
  latency.ttft_ms = it->second.ttft_ms;
  latency.tpot_ms = it->second.tpot_ms;
  latency.e2e_ms = it->second.e2e_ms;
  latency.fits_memory = it->second.fits_memory;
  latency.predicted = true;
  return latency;
}

double memory_mb_needed(const RungRecord& rung) {
  if (rung.resident_bytes > 0) return rung.resident_bytes / 1e6;
  return (static_cast<double>(rung.file_bytes) + rung.kv_bytes_per_token) / 1e6;
}

std::vector<BudgetMiss> budget_misses(const RungRecord& rung, const std::string& device, const Budget& budget,
                                      std::optional<double> memory_mb) {
  std::vector<BudgetMiss> misses;
  const std::optional<DeviceLatency> latency = latency_on(rung, device, budget);
  if (!latency) return misses;
  const auto check = [&](const std::optional<double>& limit, double value, const char* name) {
    if (limit && !(value <= *limit)) misses.push_back({device, name, value, *limit, latency->predicted});
  };
  check(budget.tpot_p95_ms, latency->tpot_ms, "TPOT p95");
  check(budget.ttft_p95_ms, latency->ttft_ms, "TTFT p95");
  check(budget.e2e_p95_ms, latency->e2e_ms, "E2E p95");
  const double needed = memory_mb_needed(rung);
  if (memory_mb && needed > *memory_mb) misses.push_back({device, "memory", needed, *memory_mb, latency->predicted});
  if (!latency->fits_memory) {
    misses.push_back({device, "device memory", needed, 0, true});
  }
  return misses;
}

std::vector<std::string> explain_rung(const RungRecord& rung, const DecidePolicy& policy) {
  std::vector<std::string> reasons;
  const std::vector<BudgetMiss> misses = all_misses(rung, policy);
  for (const BudgetMiss& miss : misses) reasons.push_back(fmt::format("{} {}", rung.label, format_miss(miss)));
  for (const QualityRow* row : failing_strata(rung)) {
    reasons.push_back(fmt::format("{}: {}", rung.label, format_quality_miss(*row)));
  }
  if (reasons.empty() && rung.overall) {
    reasons.push_back(fmt::format("{} meets {} on {} and {}", rung.label,
                                  budget_phrase(policy.budget, policy.memory_mb),
                                  device_phrase(policy.devices, rung), quality_phrase(rung)));
  }
  return reasons;
}

Recommendation recommend(const std::vector<RungRecord>& rungs, const DecidePolicy& policy) {
  Recommendation recommendation;
  recommendation.device = policy.devices.front();
  for (const std::string& device : policy.devices) {
    if (device != "host") {
      recommendation.device = device;
      break;
    }
  }
  size_t items = 0;
  size_t strata = 0;
  for (const RungRecord& rung : rungs) {
    if (rung.overall) {
      items = static_cast<size_t>(rung.overall->n);
      strata = rung.strata.size();
      break;
    }
  }
  const std::string traffic_sentence = fmt::format(
      "Quality was measured on the team's own traffic ({} items in {} strata) against the baseline's outputs, not on "
      "a public leaderboard",
      items, strata);

  const auto chosen = std::find_if(rungs.begin(), rungs.end(), [](const RungRecord& r) { return r.status == "pass"; });
  if (chosen != rungs.end()) {
    recommendation.rung = chosen->name;
    recommendation.label = chosen->label;
    recommendation.model_file = "model.gguf";
    recommendation.summary = fmt::format("{} meets {} on {} and {}.", chosen->label,
                                         budget_phrase(policy.budget, policy.memory_mb),
                                         device_phrase(policy.devices, *chosen), quality_phrase(*chosen));

    // What the rungs below it missed, cheapest first.
    for (auto it = rungs.begin(); it != chosen; ++it) {
      if (it->status == "skipped" || it->status == "error") continue;
      for (const std::string& reason : explain_rung(*it, policy)) recommendation.reasons.push_back(reason);
    }
    if (chosen->name == "baseline") {
      recommendation.reasons.push_back("The baseline already meets the budget, so no compression is needed");
    } else if (is_int8_family(chosen->name)) {
      recommendation.reasons.push_back("INT4 is not needed: INT8 is the default and meets the budget");
    } else if (is_int4_family(chosen->name)) {
      const bool int8_missed = std::any_of(rungs.begin(), chosen, [](const RungRecord& r) {
        return is_int8_family(r.name) && r.status == "fail" && !meets_all_budgets(r);
      });
      recommendation.reasons.push_back(
          int8_missed ? "INT4 is used because INT8 misses the latency budget and every stratum tolerates INT4"
                      : "INT4 is used because every INT8 rung before it failed or was skipped, and every stratum "
                        "tolerates INT4");
    }
    recommendation.reasons.push_back(traffic_sentence);
    return recommendation;
  }

  recommendation.summary = "No rung meets every constraint.";
  bool some_rung_fast_enough = false;
  for (const RungRecord& rung : rungs) {
    if (rung.status == "fail") {
      for (const std::string& reason : explain_rung(rung, policy)) recommendation.reasons.push_back(reason);
      if (meets_all_budgets(rung)) some_rung_fast_enough = true;
    } else if (rung.status == "error") {
      recommendation.reasons.push_back(fmt::format("{} failed to run: {}", rung.label,
                                                   rung.reasons.empty() ? "no message" : rung.reasons.front()));
    }
  }
  if (some_rung_fast_enough) {
    recommendation.next_step =
        "quantization meets the latency budget but loses too much quality where it does: try a calibrated method "
        "(AWQ, GPTQ) or mixed precision, or review the tolerances; otherwise a smaller architecture (prune, then "
        "distill, then quantize) suits narrow, stable tasks";
  } else {
    recommendation.next_step = smaller_architecture_step(rungs, policy);
  }
  recommendation.summary += recommendation.next_step ? " Next step: " + *recommendation.next_step + "." : "";
  recommendation.reasons.push_back(traffic_sentence);
  return recommendation;
}

nlohmann::json to_json(const Recommendation& recommendation) {
  nlohmann::json json;
  json["rung"] = recommendation.rung ? nlohmann::json(*recommendation.rung) : nlohmann::json(nullptr);
  json["label"] = recommendation.label;
  json["device"] = recommendation.device;
  json["model_file"] = recommendation.rung ? nlohmann::json(recommendation.model_file) : nlohmann::json(nullptr);
  json["summary"] = recommendation.summary;
  json["reasons"] = recommendation.reasons;
  json["next_step"] = recommendation.next_step ? nlohmann::json(*recommendation.next_step) : nlohmann::json(nullptr);
  return json;
}

}  // namespace stepdown::decide
