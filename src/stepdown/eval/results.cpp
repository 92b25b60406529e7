#include "stepdown/eval/results.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"

namespace stepdown::eval {
namespace {

using nlohmann::json;

// Tracks the JSON path of the value being parsed, so a syntax error (such as a Python
// writer's bare NaN) can name the field it sits in.
class PathTracker {
 public:
  bool on_event(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        begin_element();
        frames_.push_back({false, {}, -1});
        break;
      case json::parse_event_t::array_start:
        begin_element();
        frames_.push_back({true, {}, -1});
        break;
      case json::parse_event_t::key:
        if (!frames_.empty()) frames_.back().key = parsed.get<std::string>();
        break;
      case json::parse_event_t::value:
        begin_element();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
    }
    return true;
  }

  // The path of the value being read when the parser stopped.
  std::string path_at_error() const {
    std::string path;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& frame = frames_[i];
      if (frame.array) {
        // The innermost array has not yet counted the element that failed to parse.
        const int64_t index = i + 1 == frames_.size() ? frame.index + 1 : frame.index;
        path += fmt::format("[{}]", index);
      } else if (!frame.key.empty()) {
        if (!path.empty()) path += '.';
        path += frame.key;
      }
    }
    return path.empty() ? "(top level)" : path;
  }

 private:
  struct Frame {
    bool array;
    std::string key;
    int64_t index;  // index of the current element of an array
  };

  void begin_element() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  std::vector<Frame> frames_;
};

const char* type_name(const json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  return "an object";
}

// Field access that names the source file and JSON path in every error.
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    raise<FormatError>("{}: field {}: {}", source_, path, what);
  }

  const json& field(const json& object, const std::string& path, const char* key) const {
    auto it = object.find(key);
    if (it == object.end()) fail(join(path, key), "missing required field");
    return *it;
  }

  const json& typed(const json& object, const std::string& path, const char* key,
                    json::value_t type, const char* expected) const {
    const json& value = field(object, path, key);
    const bool ok = type == json::value_t::number_float ? value.is_number() : value.type() == type;
    if (!ok) fail(join(path, key), fmt::format("expected {}, found {}", expected, type_name(value)));
    return value;
  }

  std::string string(const json& object, const std::string& path, const char* key) const {
    return typed(object, path, key, json::value_t::string, "a string").get<std::string>();
  }

  double number(const json& value, const std::string& path) const {
    if (!value.is_number()) fail(path, fmt::format("expected a number, found {}", type_name(value)));
    const double x = value.get<double>();
    if (!std::isfinite(x)) fail(path, fmt::format("expected a finite number, found {}", x));
    return x;
  }

  double number(const json& object, const std::string& path, const char* key) const {
    return number(field(object, path, key), join(path, key));
  }

  int64_t count(const json& object, const std::string& path, const char* key) const {
    const json& value = field(object, path, key);
    if (!value.is_number_integer() || value.get<int64_t>() < 0) {
      fail(join(path, key), fmt::format("expected a non-negative integer, found {}", value.dump()));
    }
    return value.get<int64_t>();
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  const std::string& source_;
};

ItemResult parse_item(const Reader& reader, const json& value, const std::string& path) {
  if (!value.is_object()) reader.fail(path, fmt::format("expected an object, found {}", type_name(value)));
  ItemResult item;
  item.id = reader.string(value, path, "id");
  if (item.id.empty()) reader.fail(Reader::join(path, "id"), "expected a non-empty string");
  item.stratum = reader.string(value, path, "stratum");
  if (item.stratum.empty()) reader.fail(Reader::join(path, "stratum"), "expected a non-empty string");
  item.output = reader.string(value, path, "output");
  const std::string scores_path = Reader::join(path, "scores");
  const json& scores = reader.typed(value, path, "scores", json::value_t::object, "an object");
  for (const auto& [metric, score] : scores.items()) {
    const std::string score_path = Reader::join(scores_path, metric);
    const double number = reader.number(score, score_path);
    // Every metric scores in [0, 1]; a value outside could move a stratum's mean past the
    // gate's tolerance.
    if (number < 0.0 || number > 1.0) reader.fail(score_path, fmt::format("expected a score in [0, 1], found {}", number));
    item.scores[metric] = number;
  }
  item.prompt_tokens = reader.count(value, path, "prompt_tokens");
  item.output_tokens = reader.count(value, path, "output_tokens");
  item.latency_ms = reader.number(value, path, "latency_ms");
  if (item.latency_ms < 0) {
    reader.fail(Reader::join(path, "latency_ms"), fmt::format("expected >= 0, found {}", item.latency_ms));
  }
  return item;
}

// Checks a stored aggregate against the one recomputed from the items, so a hand-edited
// or truncated file is caught instead of gating on numbers the items do not support.
void check_aggregate(const Reader& reader, const json& stored, const std::string& path,
                     const Aggregate& expected) {
  if (!stored.is_object()) reader.fail(path, fmt::format("expected an object, found {}", type_name(stored)));
  const int64_t n = reader.count(stored, path, "n");
  if (n != expected.n) {
    reader.fail(Reader::join(path, "n"), fmt::format("expected {} (the items), found {}", expected.n, n));
  }
  const std::string metrics_path = Reader::join(path, "metrics");
  const json& metrics = reader.typed(stored, path, "metrics", json::value_t::object, "an object");
  for (const auto& [name, metric] : expected.metrics) {
    const std::string metric_path = Reader::join(metrics_path, name);
    auto it = metrics.find(name);
    if (it == metrics.end()) reader.fail(metric_path, "missing aggregate for a metric the items carry");
    if (!it->is_object()) reader.fail(metric_path, fmt::format("expected an object, found {}", type_name(*it)));
    const int64_t metric_n = reader.count(*it, metric_path, "n");
    const double mean = reader.number(*it, metric_path, "mean");
    if (metric_n != metric.n) {
      reader.fail(Reader::join(metric_path, "n"), fmt::format("expected {} (the items), found {}", metric.n, metric_n));
    }
    // Means are recomputed in the same order as the writer, so only text round-off differs.
    if (std::fabs(mean - metric.mean) > 1e-9 * std::max(1.0, std::fabs(metric.mean))) {
      reader.fail(Reader::join(metric_path, "mean"),
                  fmt::format("expected {} (the mean of the items), found {}", metric.mean, mean));
    }
  }
  for (const auto& [name, unused] : metrics.items()) {
    if (!expected.metrics.contains(name)) {
      reader.fail(Reader::join(metrics_path, name), "aggregate for a metric that no item carries");
    }
  }
}

json aggregate_json(const Aggregate& aggregate) {
  json metrics = json::object();
  for (const auto& [name, metric] : aggregate.metrics) metrics[name] = {{"n", metric.n}, {"mean", metric.mean}};
  return {{"n", aggregate.n}, {"metrics", metrics}};
}

Aggregate aggregate_of(const std::vector<const ItemResult*>& items) {
  Aggregate out;
  out.n = static_cast<int64_t>(items.size());
  std::map<std::string, double> sums;
  for (const ItemResult* item : items) {
    for (const auto& [name, score] : item->scores) {
      sums[name] += score;
      out.metrics[name].n += 1;
    }
  }
  for (auto& [name, metric] : out.metrics) metric.mean = sums[name] / static_cast<double>(metric.n);
  return out;
}

}  // namespace

void aggregate(Results& results) {
  std::map<std::string, std::vector<const ItemResult*>> by_stratum;
  std::vector<const ItemResult*> all;
  for (const ItemResult& item : results.items) {
    by_stratum[item.stratum].push_back(&item);
    all.push_back(&item);
  }
  results.strata.clear();
  for (const auto& [stratum, items] : by_stratum) results.strata[stratum] = aggregate_of(items);
  results.overall = aggregate_of(all);
}

Results parse_results(const std::string& text, const std::string& source) {
  PathTracker tracker;
  json root;
  try {
    root = json::parse(text, [&](int depth, json::parse_event_t event, json& parsed) {
      return tracker.on_event(depth, event, parsed);
    });
  } catch (const json::parse_error& e) {
    raise<FormatError>("{}: invalid JSON at byte {} in field {} (NaN and Infinity are not JSON numbers): {}",
                       source, e.byte, tracker.path_at_error(), e.what());
  }

  const Reader reader(source);
  if (!root.is_object()) reader.fail("(top level)", fmt::format("expected an object, found {}", type_name(root)));
  const std::string format = reader.string(root, "", "format");
  if (format != "stepdown.results") {
    reader.fail("format", fmt::format("expected \"stepdown.results\", found \"{}\"", format));
  }
  const int64_t version = reader.count(root, "", "format_version");
  if (version != kResultsFormatVersion) {
    reader.fail("format_version", fmt::format("expected {}, found {}; rerun `stepdown eval` with this version",
                                              kResultsFormatVersion, version));
  }

  Results results;
  results.tool_version = reader.string(root, "", "tool_version");
  const json& model = reader.typed(root, "", "model", json::value_t::object, "an object");
  results.model_id = reader.string(model, "model", "id");
  results.model_sha256 = reader.string(model, "model", "sha256");
  const json& suite = reader.typed(root, "", "suite", json::value_t::object, "an object");
  results.suite_path = reader.string(suite, "suite", "path");
  results.suite_sha256 = reader.string(suite, "suite", "sha256");
  if (root.contains("judge")) {
    const json& judge = reader.typed(root, "", "judge", json::value_t::object, "an object");
    results.judge_engine = reader.string(judge, "judge", "engine");
    results.judge_prompt_version = reader.string(judge, "judge", "prompt_version");
  }

  const json& items = reader.typed(root, "", "items", json::value_t::array, "an array");
  std::set<std::string> ids;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string path = fmt::format("items[{}]", i);
    ItemResult item = parse_item(reader, items[i], path);
    if (!ids.insert(item.id).second) {
      reader.fail(path + ".id", fmt::format("duplicate item id \"{}\"", item.id));
    }
    results.items.push_back(std::move(item));
  }

  aggregate(results);
  const json& strata = reader.typed(root, "", "strata", json::value_t::object, "an object");
  for (const auto& [name, expected] : results.strata) {
    const std::string path = "strata." + name;
    auto it = strata.find(name);
    if (it == strata.end()) reader.fail(path, "missing aggregate for a stratum the items use");
    check_aggregate(reader, *it, path, expected);
  }
  for (const auto& [name, unused] : strata.items()) {
    if (!results.strata.contains(name)) reader.fail("strata." + name, "aggregate for a stratum that no item uses");
  }
  check_aggregate(reader, reader.typed(root, "", "overall", json::value_t::object, "an object"), "overall",
                  results.overall);
  return results;
}

Results read_results(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot open results file: {}", path.string(), std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) raise<IoError>("{}: read failed", path.string());
  return parse_results(text.str(), path.string());
}

std::string format_results(const Results& input) {
  Results results = input;
  aggregate(results);
  json items = json::array();
  for (const ItemResult& item : results.items) {
    items.push_back({{"id", item.id},
                     {"stratum", item.stratum},
                     {"output", item.output},
                     {"scores", item.scores},
                     {"prompt_tokens", item.prompt_tokens},
                     {"output_tokens", item.output_tokens},
                     {"latency_ms", item.latency_ms}});
  }
  json strata = json::object();
  for (const auto& [name, aggregate] : results.strata) strata[name] = aggregate_json(aggregate);
  json root = {{"format", "stepdown.results"},
               {"format_version", kResultsFormatVersion},
               {"tool_version", results.tool_version},
               {"model", {{"id", results.model_id}, {"sha256", results.model_sha256}}},
               {"suite", {{"path", results.suite_path}, {"sha256", results.suite_sha256}}},
               {"items", items},
               {"strata", strata},
               {"overall", aggregate_json(results.overall)}};
  if (!results.judge_prompt_version.empty()) {
    root["judge"] = {{"engine", results.judge_engine}, {"prompt_version", results.judge_prompt_version}};
  }
  // Invalid UTF-8 in generated text is replaced rather than aborting the whole write.
  return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

void write_results(const std::filesystem::path& path, const Results& results) {
  for (const ItemResult& item : results.items) {
    for (const auto& [metric, score] : item.scores) {
      if (!std::isfinite(score)) {
        raise<InvalidArgument>("{}: item \"{}\" metric {} has non-finite score {}; a metric must return a finite number",
                               path.string(), item.id, metric, score);
      }
    }
  }
  write_file_atomic(path, format_results(results));
}

}  // namespace stepdown::eval
