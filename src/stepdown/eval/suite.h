#pragma once
// Evaluation suites: JSONL, one item per line. An item is a request (a `prompt` or
// OpenAI-style `messages`), the stratum it belongs to, the metrics that score its
// output, an optional reference answer, and the arguments those metrics read.
// docs/suite-format.md describes every field with an example.
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace stepdown::eval {

class Metric;
class MetricRegistry;

// One Metric per name, created on first use while a file is checked.
using MetricCache = std::unordered_map<std::string, std::unique_ptr<Metric>>;

struct ChatMessage {
  std::string role;  // system, user or assistant
  std::string content;
};

// Author of the reference: the baseline model's output (golden) or a person (human).
enum class ReferenceSource { kNone, kGolden, kHuman };

// Match mode of the `regex` metric: `pattern` matches the whole trimmed prediction, or
// anywhere in it.
enum class PatternMode { kFull, kSearch };

struct SuiteItem {
  std::string id;
  std::string stratum;
  std::string prompt;                // set when messages is empty
  std::vector<ChatMessage> messages; // set when prompt is empty
  std::optional<std::string> reference;
  ReferenceSource reference_source = ReferenceSource::kNone;
  std::vector<std::string> metrics;  // names in a MetricRegistry
  int max_tokens = 0;                // generation limit, > 0

  // Metric arguments.
  std::vector<std::string> tests;        // code: test programs run with the candidate's code
  std::optional<nlohmann::json> schema;  // json_schema: a JSON Schema (json_schema.h subset)
  std::optional<std::string> pattern;    // regex: a PCRE2 pattern
  PatternMode pattern_mode = PatternMode::kFull;
  std::optional<std::string> rubric;     // judge: what a good answer does

  nlohmann::json metadata;  // free-form object carried through unchanged, or null

  bool has_messages() const { return !messages.empty(); }
  // The text that suite rules and duplicate detection read: `prompt`, or the content of
  // every user message joined by newlines (a shared system prompt would make all
  // requests look alike).
  std::string prompt_text() const;
};

// Fields a line must have. A suite needs every required field and allows no other.
// A traffic log needs only the request; a scored pair (`stepdown score`) needs not even
// that. Both ignore fields outside the suite format.
enum class ItemSchema { kSuite, kTraffic, kScoredPair };

// Parses one item. Throws FormatError naming the field, what was expected and what was
// found, without a file location (read_suite adds it). Metric names are not checked here.
SuiteItem parse_suite_item(const nlohmann::json& value, ItemSchema schema = ItemSchema::kSuite);

// Reads a suite. Every line must parse, every metric must be in `registry` and accept
// the item's arguments, and ids must be unique; otherwise throws FormatError as
// "PATH:LINE: field 'NAME': ...". Blank lines are skipped.
std::vector<SuiteItem> read_suite(const std::filesystem::path& path, const MetricRegistry& registry);

// Checks that every metric of `item` is in `registry` and accepts the item's arguments.
// Throws FormatError prefixed with `where` ("PATH:LINE").
void check_item_metrics(const SuiteItem& item, const MetricRegistry& registry, MetricCache& metrics,
                        std::string_view where);

// Serialises an item with its fields in the documented order; absent fields are omitted.
nlohmann::ordered_json suite_item_to_json(const SuiteItem& item);

// Writes `items` as JSONL, atomically: the file is complete or not there. Bytes that are
// not valid UTF-8 (a model output cut inside a character) are written as U+FFFD.
void write_suite(const std::filesystem::path& path, std::span<const SuiteItem> items);

std::string_view to_string(ReferenceSource source);

}  // namespace stepdown::eval
