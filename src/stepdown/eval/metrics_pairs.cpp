#include "stepdown/eval/metrics_pairs.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "stepdown/core/error.h"

namespace stepdown::eval {

PairScores score_pairs(const std::filesystem::path& input, const Metric& metric) {
  std::ifstream in(input, std::ios::binary);
  if (!in) raise<IoError>("failed to open {}: {}", input.string(), std::strerror(errno));

  PairScores result;
  result.metric = std::string(metric.name());
  double sum = 0.0;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", input.string(), line_number);

    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      raise<FormatError>("{}: invalid JSON ({}); each line must be one JSON object", where, e.what());
    }
    std::string prediction;
    SuiteItem item;
    try {
      item = parse_suite_item(value, ItemSchema::kScoredPair);
      if (!value.contains("prediction")) raise<FormatError>("field 'prediction': missing");
      if (!value.at("prediction").is_string()) {
        raise<FormatError>("field 'prediction': expected a string, found {}", value.at("prediction").type_name());
      }
      prediction = value.at("prediction").get<std::string>();
      if (item.id.empty()) item.id = fmt::format("line {}", line_number);
      if (metric.needs_reference() && !item.reference) {
        raise<FormatError>("field 'reference': missing; metric {} compares against a reference", metric.name());
      }
      metric.check_item(item);
    } catch (const Error& e) {
      raise<FormatError>("{}: {}", where, e.what());
    }

    const double score = metric.score(prediction, item);
    result.scores.push_back(score);
    result.lines.push_back(line_number);
    sum += score;
  }
  if (in.bad()) raise<IoError>("reading {} failed at line {}", input.string(), line_number + 1);
  if (result.scores.empty()) raise<FormatError>("{}: no pairs to score; expected one JSON object per line", input.string());
  result.mean = sum / static_cast<double>(result.scores.size());
  return result;
}

}  // namespace stepdown::eval
