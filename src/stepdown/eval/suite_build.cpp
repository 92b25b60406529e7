// Suite building: stratum assignment, near-duplicate removal (suite_build_dedup.cpp) and
// seeded stratified sampling.
#include "stepdown/eval/suite_build.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics_regex.h"

namespace stepdown::eval {
namespace {

// splitmix64: a small generator whose output is fixed by its definition, so a seed gives
// the same sample on every platform and standard library (std::uniform_int_distribution
// differs between implementations).
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound), without modulo bias.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (true) {
      const uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }

 private:
  uint64_t state_;
};

uint64_t hash_name(std::string_view name) {
  uint64_t hash = 0xCBF29CE484222325ull;
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

struct CompiledRule {
  std::string stratum;
  Regex regex;
};

struct TrafficRequest {
  SuiteItem item;
  size_t line = 0;
  bool assigned_by_default = false;
};

std::string stratum_from_field(const nlohmann::json& value, const std::string& field, const std::string& where,
                               bool* missing) {
  if (!value.contains(field) || value.at(field).is_null()) {
    *missing = true;
    return {};
  }
  const nlohmann::json& stratum = value.at(field);
  if (!stratum.is_string() || stratum.get<std::string>().empty()) {
    raise<FormatError>("{}: field '{}': expected a non-empty string to use as the stratum, found {}", where, field,
                       stratum.dump());
  }
  return stratum.get<std::string>();
}

std::vector<TrafficRequest> read_traffic(const std::filesystem::path& path, const SuiteBuildOptions& options,
                                         const MetricRegistry& registry) {
  std::vector<CompiledRule> rules;
  for (const StratumRule& rule : options.rules) rules.push_back({rule.stratum, Regex(rule.regex)});

  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("failed to open traffic file {}: {}", path.string(), std::strerror(errno));

  std::vector<TrafficRequest> requests;
  MetricCache metrics;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path.string(), line_number);

    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      raise<FormatError>("{}: invalid JSON ({}); each line must be one JSON object", where, e.what());
    }
    TrafficRequest request;
    request.line = line_number;
    try {
      request.item = parse_suite_item(value, ItemSchema::kTraffic);
    } catch (const FormatError& e) {
      raise<FormatError>("{}: {}", where, e.what());
    }
    SuiteItem& item = request.item;

    // The stratum: first matching rule, else the field, else the default.
    std::string stratum;
    if (!rules.empty()) {
      const std::string text = item.prompt_text();
      for (const CompiledRule& rule : rules) {
        if (rule.regex.search(text)) {
          stratum = rule.stratum;
          break;
        }
      }
    } else {
      bool missing = false;
      stratum = stratum_from_field(value, options.stratify_by, where, &missing);
    }
    if (stratum.empty()) {
      stratum = options.default_stratum;
      request.assigned_by_default = true;
    }
    item.stratum = stratum;

    if (item.metrics.empty()) {
      if (options.default_metrics.empty()) {
        raise<FormatError>("{}: field 'metric': missing, and no default metric was given (--metric)", where);
      }
      item.metrics = options.default_metrics;
    }
    if (item.max_tokens == 0) item.max_tokens = options.default_max_tokens;

    check_item_metrics(item, registry, metrics, where);
    requests.push_back(std::move(request));
  }
  if (in.bad()) raise<IoError>("reading traffic file {} failed at line {}", path.string(), line_number + 1);
  return requests;
}

}  // namespace

std::vector<StratumRule> read_stratum_rules(const std::filesystem::path& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    raise<IoError>("failed to open rules file {}", path.string());
  } catch (const YAML::ParserException& e) {
    raise<FormatError>("{}:{}: invalid YAML: {}", path.string(), e.mark.line + 1, e.msg);
  }
  if (!root.IsSequence() || root.size() == 0) {
    raise<FormatError>("{}: expected a non-empty YAML list of {{stratum, regex}} entries", path.string());
  }

  std::vector<StratumRule> rules;
  for (size_t i = 0; i < root.size(); ++i) {
    const YAML::Node entry = root[i];
    const std::string where = fmt::format("{}:{}: rule {}", path.string(), entry.Mark().line + 1, i + 1);
    if (!entry.IsMap()) raise<FormatError>("{}: expected a mapping with keys stratum and regex", where);
    for (const auto& key : entry) {
      const std::string name = key.first.as<std::string>();
      if (name != "stratum" && name != "regex") {
        raise<FormatError>("{}: unknown key '{}'; expected stratum and regex", where, name);
      }
    }
    for (const char* key : {"stratum", "regex"}) {
      if (!entry[key]) raise<FormatError>("{}: key '{}': missing", where, key);
      if (!entry[key].IsScalar()) raise<FormatError>("{}: key '{}': expected a string", where, key);
    }
    StratumRule rule{entry["stratum"].as<std::string>(), entry["regex"].as<std::string>()};
    if (rule.stratum.empty()) raise<FormatError>("{}: key 'stratum': expected a non-empty string", where);
    try {
      Regex{rule.regex};
    } catch (const InvalidArgument& e) {
      raise<FormatError>("{}: key 'regex': {}", where, e.what());
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

SuiteBuildResult build_suite(const std::filesystem::path& traffic, const SuiteBuildOptions& options,
                             const MetricRegistry& registry) {
  if (options.per_stratum == 0) raise<InvalidArgument>("per-stratum sample size must be at least 1");
  // Unknown default metrics fail here, not later as if a traffic line had named them.
  for (const std::string& name : options.default_metrics) registry.create(name);
  std::vector<TrafficRequest> requests = read_traffic(traffic, options, registry);
  if (requests.empty()) raise<FormatError>("{}: no requests; expected one JSON object per line", traffic.string());

  SuiteBuildResult result;
  result.requests = requests.size();
  std::map<std::string, StratumSummary> summaries;
  for (const TrafficRequest& request : requests) {
    StratumSummary& summary = summaries[request.item.stratum];
    summary.stratum = request.item.stratum;
    ++summary.requests;
    if (request.assigned_by_default) ++result.default_stratum_requests;
  }

  std::vector<bool> removed(requests.size(), false);
  if (options.deduplicate) {
    std::vector<std::string> texts;
    texts.reserve(requests.size());
    for (const TrafficRequest& request : requests) texts.push_back(request.item.prompt_text());
    for (size_t index : find_near_duplicates(texts, options.duplicate_threshold)) {
      removed[index] = true;
      ++summaries[requests[index].item.stratum].duplicates;
      ++result.duplicates;
      spdlog::debug("{}:{}: near-duplicate of an earlier request, removed", traffic.string(), requests[index].line);
    }
  }

  // Ids: the traffic's own, else STRATUM-LINE; the suite format needs them unique.
  std::unordered_map<std::string, size_t> id_lines;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (removed[i]) continue;
    SuiteItem& item = requests[i].item;
    if (item.id.empty()) item.id = fmt::format("{}-{}", item.stratum, requests[i].line);
    auto [it, inserted] = id_lines.try_emplace(item.id, requests[i].line);
    if (!inserted) {
      raise<FormatError>("{}:{}: field 'id': duplicate id '{}', first used on line {}", traffic.string(),
                         requests[i].line, item.id, it->second);
    }
  }

  for (auto& [stratum, summary] : summaries) {
    std::vector<size_t> members;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!removed[i] && requests[i].item.stratum == stratum) members.push_back(i);
    }
    if (members.size() <= options.per_stratum) {
      summary.kept_whole = members.size() < options.per_stratum;
    } else {
      // Partial Fisher-Yates shuffle; the generator is seeded per stratum, so adding or
      // removing another stratum does not change this one's sample.
      SeededRandom random(options.seed ^ hash_name(stratum));
      for (size_t i = 0; i < options.per_stratum; ++i) {
        const size_t j = i + static_cast<size_t>(random.below(members.size() - i));
        std::swap(members[i], members[j]);
      }
      members.resize(options.per_stratum);
      std::sort(members.begin(), members.end());
    }
    summary.selected = members.size();
    if (summary.kept_whole) {
      spdlog::warn("stratum '{}' has {} unique requests, fewer than the {} requested; all {} are kept", stratum,
                   members.size(), options.per_stratum, members.size());
    }
    for (size_t index : members) result.items.push_back(std::move(requests[index].item));
    result.strata.push_back(summary);
  }
  return result;
}

}  // namespace stepdown::eval
