// Suite JSONL: parsing with errors that name the line and field, and atomic writing.
#include "stepdown/eval/suite.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <unordered_map>

#include <fmt/ranges.h>

#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"

namespace stepdown::eval {

using nlohmann::json;

namespace {

constexpr std::array<std::string_view, 14> kKnownFields = {
    "id",     "stratum", "prompt",  "messages",     "reference", "reference_source", "metric",
    "max_tokens", "tests", "schema", "pattern", "pattern_mode", "rubric",    "metadata"};

std::string_view json_type_name(const json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

[[noreturn]] void field_error(std::string_view field, std::string_view expected, const json& found) {
  std::string shown = found.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  raise<FormatError>("field '{}': expected {}, found {} {}", field, expected, json_type_name(found), shown);
}

std::string read_string(const json& object, std::string_view field) {
  const json& value = object.at(field);
  if (!value.is_string()) field_error(field, "a string", value);
  return value.get<std::string>();
}

std::string read_non_empty_string(const json& object, std::string_view field) {
  std::string text = read_string(object, field);
  if (text.empty()) raise<FormatError>("field '{}': expected a non-empty string, found \"\"", field);
  return text;
}

std::vector<ChatMessage> read_messages(const json& value) {
  if (!value.is_array() || value.empty()) field_error("messages", "a non-empty array of {role, content}", value);
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& message = value[i];
    const std::string field = fmt::format("messages[{}]", i);
    if (!message.is_object()) field_error(field, "an object with role and content", message);
    if (!message.contains("role")) raise<FormatError>("field '{}.role': missing", field);
    if (!message.contains("content")) raise<FormatError>("field '{}.content': missing", field);
    ChatMessage parsed{read_string(message, "role"), read_string(message, "content")};
    if (parsed.role != "system" && parsed.role != "user" && parsed.role != "assistant") {
      raise<FormatError>("field '{}.role': expected system, user or assistant, found \"{}\"", field, parsed.role);
    }
    messages.push_back(std::move(parsed));
  }
  return messages;
}

std::vector<std::string> read_metrics(const json& value) {
  std::vector<std::string> metrics;
  if (value.is_string()) {
    metrics.push_back(value.get<std::string>());
  } else if (value.is_array() && !value.empty()) {
    for (const json& name : value) {
      if (!name.is_string()) field_error("metric", "a metric name or a non-empty array of names", value);
      const std::string text = name.get<std::string>();
      if (std::find(metrics.begin(), metrics.end(), text) != metrics.end()) {
        raise<FormatError>("field 'metric': metric '{}' is listed twice", text);
      }
      metrics.push_back(text);
    }
  } else {
    field_error("metric", "a metric name or a non-empty array of names", value);
  }
  return metrics;
}

std::vector<std::string> read_tests(const json& value) {
  if (value.is_string()) return {value.get<std::string>()};
  std::vector<std::string> tests;
  if (value.is_array() && !value.empty()) {
    for (const json& test : value) {
      if (!test.is_string()) field_error("tests", "a string or a non-empty array of strings", value);
      tests.push_back(test.get<std::string>());
    }
    return tests;
  }
  field_error("tests", "a string or a non-empty array of strings", value);
}

}  // namespace

std::string SuiteItem::prompt_text() const {
  if (!has_messages()) return prompt;
  std::string text;
  for (const ChatMessage& message : messages) {
    if (message.role != "user") continue;
    if (!text.empty()) text.push_back('\n');
    text += message.content;
  }
  return text;
}

std::string_view to_string(ReferenceSource source) {
  switch (source) {
    case ReferenceSource::kGolden: return "golden";
    case ReferenceSource::kHuman: return "human";
    case ReferenceSource::kNone: break;
  }
  return "none";
}

SuiteItem parse_suite_item(const json& value, ItemSchema schema) {
  if (!value.is_object()) raise<FormatError>("expected a JSON object, found {}", json_type_name(value));
  const bool suite = schema == ItemSchema::kSuite;
  SuiteItem item;

  if (suite) {
    for (const auto& [key, field_value] : value.items()) {
      if (std::find(kKnownFields.begin(), kKnownFields.end(), key) == kKnownFields.end()) {
        raise<FormatError>("field '{}': unknown field; known fields: {} (put free-form data under metadata)", key,
                           fmt::join(kKnownFields, ", "));
      }
    }
  }

  if (value.contains("id")) {
    item.id = read_non_empty_string(value, "id");
  } else if (suite) {
    raise<FormatError>("field 'id': missing");
  }
  if (value.contains("stratum")) {
    item.stratum = read_non_empty_string(value, "stratum");
  } else if (suite) {
    raise<FormatError>("field 'stratum': missing");
  }

  const bool has_prompt = value.contains("prompt");
  const bool has_messages = value.contains("messages");
  if (has_prompt && has_messages) raise<FormatError>("fields 'prompt' and 'messages': expected one of them, found both");
  if (!has_prompt && !has_messages && schema != ItemSchema::kScoredPair) raise<FormatError>("field 'prompt': missing (give 'prompt' or 'messages')");
  if (has_prompt) item.prompt = read_non_empty_string(value, "prompt");
  if (has_messages) item.messages = read_messages(value.at("messages"));

  if (value.contains("reference")) item.reference = read_string(value, "reference");
  if (value.contains("reference_source")) {
    const std::string source = read_string(value, "reference_source");
    if (source == "golden") {
      item.reference_source = ReferenceSource::kGolden;
    } else if (source == "human") {
      item.reference_source = ReferenceSource::kHuman;
    } else {
      raise<FormatError>("field 'reference_source': expected \"golden\" or \"human\", found \"{}\"", source);
    }
    if (!item.reference) raise<FormatError>("field 'reference_source': set, but field 'reference' is missing");
  } else if (item.reference) {
    // A reference that no tool marked as golden was written by a person.
    item.reference_source = ReferenceSource::kHuman;
  }

  if (value.contains("metric")) {
    item.metrics = read_metrics(value.at("metric"));
  } else if (suite) {
    raise<FormatError>("field 'metric': missing");
  }

  if (value.contains("max_tokens")) {
    const json& max_tokens = value.at("max_tokens");
    if (!max_tokens.is_number_integer() || max_tokens.get<int64_t>() < 1 || max_tokens.get<int64_t>() > 1'000'000) {
      field_error("max_tokens", "an integer from 1 to 1000000", max_tokens);
    }
    item.max_tokens = max_tokens.get<int>();
  } else if (suite) {
    raise<FormatError>("field 'max_tokens': missing");
  }

  if (value.contains("tests")) item.tests = read_tests(value.at("tests"));
  if (value.contains("schema")) {
    const json& schema_value = value.at("schema");
    if (!schema_value.is_object() && !schema_value.is_boolean()) {
      field_error("schema", "a JSON Schema (an object or a boolean)", schema_value);
    }
    item.schema = schema_value;
  }
  if (value.contains("pattern")) item.pattern = read_string(value, "pattern");
  if (value.contains("pattern_mode")) {
    const std::string mode = read_string(value, "pattern_mode");
    if (mode == "full") {
      item.pattern_mode = PatternMode::kFull;
    } else if (mode == "search") {
      item.pattern_mode = PatternMode::kSearch;
    } else {
      raise<FormatError>("field 'pattern_mode': expected \"full\" or \"search\", found \"{}\"", mode);
    }
  }
  if (value.contains("rubric")) item.rubric = read_non_empty_string(value, "rubric");
  if (value.contains("metadata")) {
    const json& metadata = value.at("metadata");
    if (!metadata.is_object()) field_error("metadata", "an object", metadata);
    item.metadata = metadata;
  }
  return item;
}

std::vector<SuiteItem> read_suite(const std::filesystem::path& path, const MetricRegistry& registry) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("failed to open suite {}: {}", path.string(), std::strerror(errno));

  std::vector<SuiteItem> items;
  std::unordered_map<std::string, size_t> id_lines;
  MetricCache metrics;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path.string(), line_number);

    json value;
    try {
      value = json::parse(line);
    } catch (const json::parse_error& e) {
      raise<FormatError>("{}: invalid JSON ({}); each line must be one JSON object", where, e.what());
    }
    SuiteItem item;
    try {
      item = parse_suite_item(value, ItemSchema::kSuite);
    } catch (const FormatError& e) {
      raise<FormatError>("{}: {}", where, e.what());
    }

    auto [it, inserted] = id_lines.try_emplace(item.id, line_number);
    if (!inserted) raise<FormatError>("{}: field 'id': duplicate id '{}', first used on line {}", where, item.id, it->second);

    check_item_metrics(item, registry, metrics, where);
    items.push_back(std::move(item));
  }
  if (in.bad()) raise<IoError>("reading suite {} failed at line {}", path.string(), line_number + 1);
  return items;
}

void check_item_metrics(const SuiteItem& item, const MetricRegistry& registry, MetricCache& metrics,
                        std::string_view where) {
  for (const std::string& name : item.metrics) {
    try {
      auto metric = metrics.find(name);
      if (metric == metrics.end()) metric = metrics.emplace(name, registry.create(name)).first;
      metric->second->check_item(item);
    } catch (const InvalidArgument& e) {
      if (!registry.contains(name)) raise<FormatError>("{}: field 'metric': {}", where, e.what());
      raise<FormatError>("{}: metric {}: {}", where, name, e.what());
    }
  }
}

nlohmann::ordered_json suite_item_to_json(const SuiteItem& item) {
  nlohmann::ordered_json out;
  out["id"] = item.id;
  out["stratum"] = item.stratum;
  if (item.has_messages()) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    for (const ChatMessage& message : item.messages) {
      messages.push_back({{"role", message.role}, {"content", message.content}});
    }
    out["messages"] = std::move(messages);
  } else {
    out["prompt"] = item.prompt;
  }
  if (item.reference) {
    out["reference"] = *item.reference;
    out["reference_source"] = to_string(item.reference_source);
  }
  if (item.metrics.size() == 1) {
    out["metric"] = item.metrics.front();
  } else {
    out["metric"] = item.metrics;
  }
  out["max_tokens"] = item.max_tokens;
  if (!item.tests.empty()) {
    if (item.tests.size() == 1) {
      out["tests"] = item.tests.front();
    } else {
      out["tests"] = item.tests;
    }
  }
  if (item.schema) out["schema"] = nlohmann::ordered_json::parse(item.schema->dump());
  if (item.pattern) {
    out["pattern"] = *item.pattern;
    if (item.pattern_mode == PatternMode::kSearch) out["pattern_mode"] = "search";
  }
  if (item.rubric) out["rubric"] = *item.rubric;
  if (item.metadata.is_object()) out["metadata"] = nlohmann::ordered_json::parse(item.metadata.dump());
  return out;
}

void write_suite(const std::filesystem::path& path, std::span<const SuiteItem> items) {
  AtomicFileWriter writer(path);
  for (const SuiteItem& item : items) {
    writer.write(suite_item_to_json(item).dump(-1, ' ', false, json::error_handler_t::replace));
    writer.write("\n");
  }
  writer.commit();
}

}  // namespace stepdown::eval
