// json_valid and json_schema. The prediction must be exactly one JSON value; whitespace
// around it is allowed, anything else (prose, a Markdown code fence) makes it invalid.
#include <optional>

#include "stepdown/core/error.h"
#include "stepdown/eval/json_schema.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/metrics_builtin.h"

namespace stepdown::eval {
namespace {

std::optional<nlohmann::json> parse_json(std::string_view text) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

class JsonValidMetric final : public Metric {
 public:
  std::string_view name() const override { return "json_valid"; }
  bool needs_reference() const override { return false; }
  double score(std::string_view prediction, const SuiteItem&) const override {
    return parse_json(prediction) ? 1.0 : 0.0;
  }
};

// 1 when the prediction is valid JSON that conforms to the item's `schema`.
class JsonSchemaMetric final : public Metric {
 public:
  std::string_view name() const override { return "json_schema"; }
  bool needs_reference() const override { return false; }

  void check_item(const SuiteItem& item) const override { compile(item); }

  double score(std::string_view prediction, const SuiteItem& item) const override {
    const JsonSchema schema = compile(item);
    const std::optional<nlohmann::json> value = parse_json(prediction);
    return value && schema.conforms(*value) ? 1.0 : 0.0;
  }

 private:
  static JsonSchema compile(const SuiteItem& item) {
    if (!item.schema) raise<InvalidArgument>("field 'schema': missing; the json_schema metric needs a JSON Schema");
    try {
      return JsonSchema(*item.schema);
    } catch (const Unsupported& e) {
      raise<InvalidArgument>("field 'schema': {}", e.what());
    } catch (const InvalidArgument& e) {
      raise<InvalidArgument>("field 'schema': {}", e.what());
    }
  }
};

}  // namespace

std::unique_ptr<Metric> make_json_valid_metric(const MetricOptions&) { return std::make_unique<JsonValidMetric>(); }

std::unique_ptr<Metric> make_json_schema_metric(const MetricOptions&) {
  return std::make_unique<JsonSchemaMetric>();
}

}  // namespace stepdown::eval
