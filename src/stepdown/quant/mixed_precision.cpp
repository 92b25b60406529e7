#include "stepdown/quant/mixed_precision.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <span>
#include <sstream>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/quant/calibration_data.h"
#include "stepdown/quant/quantize_model.h"
#include "stepdown/quant/sensitivity.h"

namespace stepdown::quant {
namespace {

constexpr uint64_t kMaxTableCells = uint64_t{1} << 28;

// The parsed --method-param values of "mixed".
struct MixedParams {
  std::string base_method = "rtn";
  std::map<std::string, std::string> base_params;  // base.KEY=VALUE, without "base."
  std::optional<double> target_bpw;
  std::optional<double> budget_mb;
  std::vector<std::string> levels;  // format names, as given
  UnitGranularity granularity = UnitGranularity::BLOCK;
};

double parse_positive(const std::string& key, const std::string& text) {
  size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(value > 0.0) || !std::isfinite(value)) {
    raise<InvalidArgument>("--method-param {}={}: expected a positive number", key, text);
  }
  return value;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

MixedParams parse_params(const std::map<std::string, std::string>& params, const std::string& scheme_format) {
  MixedParams out;
  std::optional<std::string> low;
  std::optional<std::string> high;
  for (const auto& [key, value] : params) {
    if (key == "target_bpw") {
      out.target_bpw = parse_positive(key, value);
    } else if (key == "budget_mb") {
      out.budget_mb = parse_positive(key, value);
    } else if (key == "low") {
      low = value;
    } else if (key == "high") {
      high = value;
    } else if (key == "levels") {
      out.levels = split_commas(value);
    } else if (key == "unit") {
      out.granularity = parse_unit_granularity(value);
    } else if (key == "base_method") {
      out.base_method = value;
    } else if (key.starts_with("base.")) {
      out.base_params[key.substr(5)] = value;
    } else {
      raise<InvalidArgument>("--method-param {}: unknown key for method mixed (known: target_bpw, budget_mb, low, "
                             "high, levels, unit, base_method, base.KEY)",
                             key);
    }
  }

  if (out.base_method == "mixed") raise<InvalidArgument>("method mixed cannot be its own base_method");
  if (out.base_method != "rtn" && find_quant_method(out.base_method) == nullptr) {
    std::string known;
    for (const std::string& n : quant_method_names()) known += (known.empty() ? "" : ", ") + n;
    raise<InvalidArgument>("method mixed: base_method '{}' is unknown (known: {})", out.base_method, known);
  }
  if (out.base_method == "rtn" && !out.base_params.empty()) {
    raise<InvalidArgument>("method mixed: base.KEY parameters are given but base_method is rtn, which takes none");
  }
  if (out.target_bpw.has_value() == out.budget_mb.has_value()) {
    raise<InvalidArgument>("method mixed needs exactly one of --method-param target_bpw=F or budget_mb=F");
  }
  if (!out.levels.empty() && (low || high)) {
    raise<InvalidArgument>("method mixed takes either levels=A,B,... or low=/high=, not both");
  }

  if (out.levels.empty()) out.levels = {low.value_or(scheme_format), high.value_or("q8_0")};
  if (out.levels.size() < 2) {
    raise<InvalidArgument>("method mixed needs at least two levels; got '{}'", out.levels.front());
  }
  for (size_t i = 0; i < out.levels.size(); ++i) {
    if (find_quant_format(out.levels[i]) == nullptr) {
      std::string known;
      for (const std::string& n : quant_format_names()) known += (known.empty() ? "" : ", ") + n;
      raise<InvalidArgument>("method mixed: level '{}' is not a known format (known: {})", out.levels[i], known);
    }
    for (size_t k = 0; k < i; ++k) {
      if (find_quant_format(out.levels[k]) == find_quant_format(out.levels[i])) {
        raise<InvalidArgument>("method mixed: level '{}' is given twice; low and high must differ", out.levels[i]);
      }
    }
  }
  return out;
}

// The byte budget for the whole file, as the manifest counts tensor_bytes.
uint64_t byte_budget(const MixedParams& params, int64_t params_total) {
  if (params.budget_mb) return static_cast<uint64_t>(std::floor(*params.budget_mb * 1e6));

  const double total = static_cast<double>(params_total);
  uint64_t budget = static_cast<uint64_t>(std::floor(*params.target_bpw * total / 8.0));
  // Floating rounding must never let the manifest's bits_per_weight exceed the target.
  while (budget > 0 && 8.0 * static_cast<double>(budget) / total > *params.target_bpw) --budget;
  return budget;
}

// plan_tensors with `format` as the scheme's, so each level gets the output's fallbacks
// and the user's overrides.
std::vector<TensorPlan> plan_level(const MethodContext& ctx, const std::string& format) {
  std::vector<TensorOverride> overrides;
  for (const std::string& text : ctx.options.overrides) overrides.push_back(parse_override(text));
  const Scheme level{"mixed:" + format, format, 0, "one level of method mixed"};
  return plan_tensors(ctx.model.tensors, level, overrides);
}

// Runs the base method on the chosen formats (or nothing for rtn) and marks every tensor
// whose chosen format differs from the scheme's plan. Its manifest is the base method's.
MethodOutput fill_with_base_method(const MethodContext& ctx, const MixedParams& params,
                                   const std::vector<TensorPlan>& chosen_plans) {
  MethodOutput out;
  if (params.base_method != "rtn") {
    QuantizeOptions base_options = ctx.options;
    base_options.method = params.base_method;
    base_options.method_params = params.base_params;
    spdlog::info("mixed: filling the chosen formats with method {}", params.base_method);
    out = find_quant_method(params.base_method)->run(MethodContext{ctx.model, chosen_plans, base_options, ctx.pool});
  }
  for (size_t i = 0; i < chosen_plans.size(); ++i) {
    const auto it = out.tensors.find(chosen_plans[i].name);
    // The base method may change a tensor's format itself (an outlier split), and that wins.
    if (it != out.tensors.end() && it->second.format != nullptr) continue;
    if (chosen_plans[i].format != ctx.plans[i].format) out.tensors[chosen_plans[i].name].format = chosen_plans[i].format;
  }
  return out;
}

MethodOutput run_mixed(const MethodContext& ctx) {
  const Scheme* scheme = find_scheme(ctx.options.scheme);
  const MixedParams params = parse_params(ctx.options.method_params, scheme ? scheme->weight_format : "q4_0");
  if (!ctx.options.calibration) {
    raise<InvalidArgument>("method mixed measures sensitivity on calibration text; give --calib FILE");
  }
  const io::ModelFile& model = ctx.model;
  const std::vector<SensitivityUnit> units = sensitivity_units(model, params.granularity);
  if (units.empty()) raise<InvalidArgument>("{}: no weight matrices to allocate formats to", model.path.string());

  // Which tensors the allocation decides, and the bytes of the rest as planned.
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < model.tensors.size(); ++i) index_of[model.tensors[i].name] = i;
  std::vector<bool> in_unit(model.tensors.size(), false);
  for (const SensitivityUnit& unit : units) {
    for (const std::string& name : unit.tensors) in_unit[index_of.at(name)] = true;
  }
  int64_t params_total = 0;
  uint64_t fixed_bytes = 0;
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    params_total += model.tensors[i].numel();
    if (!in_unit[i]) fixed_bytes += dtype_bytes(ctx.plans[i].format->dtype, model.tensors[i].numel());
  }

  // Each level's format per tensor, and each unit's bytes per level.
  std::vector<FormatLevel> levels;
  for (const std::string& name : params.levels) {
    const std::vector<TensorPlan> plans = plan_level(ctx, name);
    FormatLevel level{name, {}};
    for (size_t i = 0; i < plans.size(); ++i) {
      if (in_unit[i]) level.formats[plans[i].name] = plans[i].format;
    }
    levels.push_back(std::move(level));
  }
  std::vector<UnitChoices> choices(units.size());
  std::vector<uint64_t> level_totals(levels.size(), 0);
  for (size_t u = 0; u < units.size(); ++u) {
    for (size_t j = 0; j < levels.size(); ++j) {
      uint64_t bytes = 0;
      for (const std::string& name : units[u].tensors) {
        bytes += dtype_bytes(levels[j].formats.at(name)->dtype, model.tensors[index_of.at(name)].numel());
      }
      choices[u].bytes.push_back(bytes);
      level_totals[j] += bytes;
    }
  }
  const size_t reference = static_cast<size_t>(
      std::max_element(level_totals.begin(), level_totals.end()) - level_totals.begin());

  const uint64_t budget = byte_budget(params, params_total);
  uint64_t least_bytes = fixed_bytes;
  for (const UnitChoices& c : choices) least_bytes += *std::min_element(c.bytes.begin(), c.bytes.end());
  if (budget < least_bytes) {
    raise<InvalidArgument>("method mixed: the budget of {} bytes ({:.4f} bits per weight) is below the smallest "
                           "reachable size, {} bytes ({:.4f} bits per weight) with every unit at its cheapest "
                           "level; raise target_bpw or budget_mb, or give a cheaper low level",
                           budget, 8.0 * static_cast<double>(budget) / static_cast<double>(params_total),
                           least_bytes, 8.0 * static_cast<double>(least_bytes) / static_cast<double>(params_total));
  }

  // Sensitivity of every unit at every level on the calibration windows.
  const CalibrationData calibration = load_calibration_data(
      model, *ctx.options.calibration, {ctx.options.calib_samples, ctx.options.calib_seq_len, ctx.options.seed});
  std::vector<std::vector<text::TokenId>> sequences;
  for (int64_t i = 0; i < calibration.samples; ++i) {
    const std::span<const text::TokenId> window = calibration.sequence(i);
    sequences.emplace_back(window.begin(), window.end());
  }
  SensitivityOptions sensitivity_options;
  sensitivity_options.reference_level = reference;
  const SensitivityResult measured =
      measure_sensitivity(model, units, levels, sequences, sensitivity_options, ctx.pool);
  for (size_t u = 0; u < units.size(); ++u) choices[u].cost = measured.sensitivity[u];

  const Allocation allocation = allocate_levels(choices, budget - fixed_bytes);
  const uint64_t total_bytes = fixed_bytes + allocation.bytes;

  // The chosen format of each tensor, the manifest record and the printed map.
  std::vector<TensorPlan> chosen_plans = ctx.plans;
  for (size_t u = 0; u < units.size(); ++u) {
    const FormatLevel& level = levels[allocation.level[u]];
    for (const std::string& name : units[u].tensors) chosen_plans[index_of.at(name)].format = level.formats.at(name);
  }
  MethodOutput out = fill_with_base_method(ctx, params, chosen_plans);
  nlohmann::json sensitivity = nlohmann::json::object();
  nlohmann::json chosen = nlohmann::json::object();
  for (size_t u = 0; u < units.size(); ++u) {
    const FormatLevel& level = levels[allocation.level[u]];
    nlohmann::json per_level = nlohmann::json::object();
    for (size_t j = 0; j < levels.size(); ++j) {
      if (j != reference) per_level[levels[j].name] = measured.sensitivity[u][j];
    }
    sensitivity[units[u].name] = per_level;
    chosen[units[u].name] = level.name;
    spdlog::info("mixed: {:<20} {:<8} sensitivity {}", units[u].name, level.name, per_level.dump());
  }
  const double bpw = 8.0 * static_cast<double>(total_bytes) / static_cast<double>(params_total);
  spdlog::info("mixed: {} bytes, {:.4f} bits per weight, predicted KLD {:.6f} (reference {:.6f} + {:.6f})",
               total_bytes, bpw, measured.base_to_reference_kld + allocation.cost, measured.base_to_reference_kld,
               allocation.cost);

  const nlohmann::json base_details = out.manifest;
  std::vector<std::string> level_names;
  for (const FormatLevel& level : levels) level_names.push_back(level.name);
  out.manifest = {
      {"method", "mixed"},
      {"unit", params.granularity == UnitGranularity::BLOCK ? "block" : "matrix"},
      {"levels", level_names},
      {"reference_level", levels[reference].name},
      {"budget_bytes", budget},
      {"tensor_bytes", total_bytes},
      {"bits_per_weight", bpw},
      {"calibration", calibration.to_json()},
      {"sensitivity_sequences", measured.sequences},
      {"sensitivity_tokens", measured.tokens},
      {"kld_reference", measured.base_to_reference_kld},
      {"predicted_kld_increase", allocation.cost},
      {"sensitivity", sensitivity},
      {"choice", chosen},
  };
  out.manifest["base_method"] = params.base_method;
  if (!base_details.empty()) out.manifest["base_method_details"] = base_details;
  if (params.target_bpw) out.manifest["target_bpw"] = *params.target_bpw;
  if (params.budget_mb) out.manifest["budget_mb"] = *params.budget_mb;
  return out;
}

}  // namespace

Allocation allocate_levels(const std::vector<UnitChoices>& units, uint64_t budget) {
  const size_t U = units.size();
  uint64_t min_total = 0;
  uint64_t step = 0;
  std::vector<uint64_t> min_bytes(U);
  for (size_t u = 0; u < U; ++u) {
    const UnitChoices& c = units[u];
    if (c.bytes.empty() || c.bytes.size() != c.cost.size()) {
      raise<InvalidArgument>("unit {} has {} byte counts and {} costs; expected the same nonzero number", u,
                             c.bytes.size(), c.cost.size());
    }
    if (c.bytes.size() > 255) raise<InvalidArgument>("unit {} has {} levels; at most 255 are supported", u, c.bytes.size());
    for (double cost : c.cost) {
      if (!std::isfinite(cost)) raise<InvalidArgument>("unit {} has a non-finite cost {}", u, cost);
    }
    min_bytes[u] = *std::min_element(c.bytes.begin(), c.bytes.end());
    min_total += min_bytes[u];
    for (uint64_t b : c.bytes) step = std::gcd(step, b - min_bytes[u]);
  }
  if (min_total > budget) {
    raise<InvalidArgument>("the cheapest level of every unit needs {} bytes, above the budget of {}; raise the "
                           "target or give a cheaper low level",
                           min_total, budget);
  }

  // Scaled extra bytes per unit and level, and the capacity C.
  if (step == 0) step = 1;
  uint64_t max_extra = 0;
  std::vector<std::vector<uint64_t>> extra(U);
  for (size_t u = 0; u < U; ++u) {
    uint64_t unit_max = 0;
    for (uint64_t b : units[u].bytes) {
      extra[u].push_back((b - min_bytes[u]) / step);
      unit_max = std::max(unit_max, extra[u].back());
    }
    max_extra += unit_max;
  }
  const uint64_t capacity = std::min((budget - min_total) / step, max_extra);
  if (static_cast<double>(U) * static_cast<double>(capacity + 1) > static_cast<double>(kMaxTableCells)) {
    raise<Unsupported>("allocation table of {} units by {} byte steps of {} exceeds {} cells; use unit=block", U,
                       capacity + 1, step, kMaxTableCells);
  }
  const size_t C = static_cast<size_t>(capacity);

  // best[c]: least cost of the units so far with scaled extra total at most c.
  constexpr double kUnreachable = std::numeric_limits<double>::infinity();
  std::vector<double> best(C + 1, 0.0);
  std::vector<std::vector<uint8_t>> pick(U, std::vector<uint8_t>(C + 1, 0));
  for (size_t u = 0; u < U; ++u) {
    std::vector<double> next(C + 1, kUnreachable);
    for (size_t c = 0; c <= C; ++c) {
      for (size_t j = 0; j < extra[u].size(); ++j) {
        if (extra[u][j] > c) continue;
        const double candidate = best[c - extra[u][j]] + units[u].cost[j];
        if (candidate < next[c]) {
          next[c] = candidate;
          pick[u][c] = static_cast<uint8_t>(j);
        }
      }
    }
    best = std::move(next);
  }

  // Walk the picks back from the full capacity.
  Allocation out;
  out.level.assign(U, 0);
  size_t c = C;
  for (size_t u = U; u-- > 0;) {
    const size_t j = pick[u][c];
    out.level[u] = j;
    out.bytes += units[u].bytes[j];
    out.cost += units[u].cost[j];
    c -= static_cast<size_t>(extra[u][j]);
  }
  return out;
}

QuantMethod mixed_method() {
  return {"mixed",
          "per-layer formats chosen by measured KLD sensitivity to meet target_bpw or budget_mb (knapsack DP)",
          run_mixed};
}

}  // namespace stepdown::quant
