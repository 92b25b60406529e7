#include "stepdown/quant/calibration_check.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <unordered_map>

#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/text/model_tokenizer.h"

namespace stepdown::quant {
namespace {

constexpr double kSmoothing = 0.5;

// FNV-1a of a lower-cased word, as a non-negative id shared by both files.
int32_t word_id(std::string_view word) {
  uint32_t hash = 2166136261u;
  for (const char c : word) {
    hash ^= static_cast<uint8_t>(std::tolower(static_cast<unsigned char>(c)));
    hash *= 16777619u;
  }
  return static_cast<int32_t>(hash & 0x7fffffffu);
}

std::vector<int32_t> word_tokens(std::string_view text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) ids.push_back(word_id(text.substr(start, i - start)));
  }
  return ids;
}

// Paragraphs of a plain text file: runs of lines separated by blank lines.
std::vector<std::string> paragraphs(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    const bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
    if (blank) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current += current.empty() ? line : "\n" + line;
    }
    begin = end + 1;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

// Renders a chat document as one text for word tokens.
std::string document_text(const CalibrationDocument& doc) {
  if (doc.messages.empty()) return doc.text;
  std::string text;
  for (const text::ChatMessage& m : doc.messages) text += m.content + "\n";
  return text;
}

LengthSummary summarize(std::vector<double> lengths) {
  LengthSummary s;
  s.items = static_cast<int64_t>(lengths.size());
  std::sort(lengths.begin(), lengths.end());
  const auto quantile = [&](double p) { return lengths[static_cast<size_t>(p * static_cast<double>(lengths.size() - 1))]; };
  s.p10 = quantile(0.1);
  s.p50 = quantile(0.5);
  s.p90 = quantile(0.9);
  s.max = lengths.back();
  return s;
}

// Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs.
double ks_statistic(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  size_t i = 0, j = 0;
  double d = 0.0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / a.size() - static_cast<double>(j) / b.size()));
  }
  return d;
}

std::map<std::string, double> stratum_shares(const std::vector<std::string>& strata) {
  std::map<std::string, double> shares;
  for (const std::string& s : strata) shares[s] += 1.0 / static_cast<double>(strata.size());
  return shares;
}

bool has_strata(const std::vector<std::string>& strata) {
  return std::any_of(strata.begin(), strata.end(), [](const std::string& s) { return !s.empty(); });
}

}  // namespace

TokenizedItems tokenize_items(const CalibrationFile& file, const io::ModelFile* model) {
  // Plain text becomes one document per paragraph, so lengths mean something.
  CalibrationFile items = file;
  if (file.kind == CalibrationFileKind::kText) {
    items.documents.clear();
    for (std::string& p : paragraphs(file.documents.at(0).text)) items.documents.push_back({1, std::move(p), {}, {}});
  }

  TokenizedItems out;
  for (const CalibrationDocument& doc : items.documents) out.strata.push_back(doc.stratum);
  if (model == nullptr) {
    for (const CalibrationDocument& doc : items.documents) out.tokens.push_back(word_tokens(document_text(doc)));
    return out;
  }
  const std::unique_ptr<text::Tokenizer> tokenizer = text::load_model_tokenizer(*model);
  const bool needs_template = std::any_of(items.documents.begin(), items.documents.end(),
                                          [](const CalibrationDocument& d) { return !d.messages.empty(); });
  const std::unique_ptr<text::ChatTemplate> chat_template =
      needs_template ? text::chat_template_for(model->metadata) : nullptr;
  out.tokens = tokenize_documents(items, *tokenizer, chat_template.get());
  return out;
}

CalibrationCheck check_calibration(const TokenizedItems& calibration, const TokenizedItems& production,
                                   const CalibrationThresholds& thresholds) {
  if (calibration.tokens.empty() || production.tokens.empty()) {
    raise<InvalidArgument>("calibration check: {} calibration items and {} production items; both need at least one",
                           calibration.tokens.size(), production.tokens.size());
  }
  CalibrationCheck check;

  // Token mix: smoothed unigram distributions over every id seen in either set.
  std::unordered_map<int32_t, std::pair<double, double>> counts;
  double n_calibration = 0.0, n_production = 0.0;
  for (const auto& item : calibration.tokens) {
    for (const int32_t id : item) counts[id].first += 1.0;
    n_calibration += static_cast<double>(item.size());
  }
  for (const auto& item : production.tokens) {
    for (const int32_t id : item) counts[id].second += 1.0;
    n_production += static_cast<double>(item.size());
  }
  const double vocab = static_cast<double>(counts.size());
  double js = 0.0, covered = 0.0;
  for (const auto& [id, c] : counts) {
    const double p = (c.first + kSmoothing) / (n_calibration + kSmoothing * vocab);
    const double q = (c.second + kSmoothing) / (n_production + kSmoothing * vocab);
    const double m = 0.5 * (p + q);
    js += 0.5 * p * std::log2(p / m) + 0.5 * q * std::log2(q / m);
    if (c.first > 0.0) covered += c.second;
  }
  check.js_divergence = js;
  check.coverage = n_production > 0.0 ? covered / n_production : 1.0;

  // Lengths.
  std::vector<double> a, b;
  for (const auto& item : calibration.tokens) a.push_back(static_cast<double>(item.size()));
  for (const auto& item : production.tokens) b.push_back(static_cast<double>(item.size()));
  check.calibration_lengths = summarize(a);
  check.production_lengths = summarize(b);
  check.ks = ks_statistic(a, b);

  // Stratum mix, where both files have strata.
  if (has_strata(calibration.strata) && has_strata(production.strata)) {
    const auto cal = stratum_shares(calibration.strata);
    const auto prod = stratum_shares(production.strata);
    for (const auto& [name, share] : cal) check.strata[name].first = share;
    for (const auto& [name, share] : prod) check.strata[name].second = share;
    for (const auto& [name, shares] : check.strata) check.stratum_distance += 0.5 * std::abs(shares.first - shares.second);
  }

  // Warnings.
  if (check.js_divergence > thresholds.max_js_divergence) {
    check.warnings.push_back(fmt::format("token distributions differ: Jensen-Shannon divergence {:.3f} bits > {}",
                                         check.js_divergence, thresholds.max_js_divergence));
  }
  if (check.coverage < thresholds.min_coverage) {
    check.warnings.push_back(fmt::format("only {:.1f}% of production tokens occur in the calibration set (< {:.0f}%)",
                                         100.0 * check.coverage, 100.0 * thresholds.min_coverage));
  }
  if (std::min(a.size(), b.size()) >= static_cast<size_t>(thresholds.min_items_for_ks) && check.ks > thresholds.max_ks) {
    check.warnings.push_back(fmt::format("item lengths differ: Kolmogorov-Smirnov D {:.3f} > {} (median {} vs {} tokens)",
                                         check.ks, thresholds.max_ks, check.calibration_lengths.p50,
                                         check.production_lengths.p50));
  }
  for (const auto& [name, shares] : check.strata) {
    if (shares.first == 0.0 && shares.second >= thresholds.min_missing_stratum_share) {
      check.warnings.push_back(fmt::format("stratum '{}' is {:.1f}% of production but absent from the calibration set",
                                           name, 100.0 * shares.second));
    }
  }
  if (check.stratum_distance > thresholds.max_stratum_distance) {
    check.warnings.push_back(fmt::format("stratum mixes differ: total variation distance {:.3f} > {}",
                                         check.stratum_distance, thresholds.max_stratum_distance));
  }
  return check;
}

nlohmann::json CalibrationCheck::to_json() const {
  const auto lengths = [](const LengthSummary& s) {
    return nlohmann::json{{"items", s.items}, {"p10", s.p10}, {"p50", s.p50}, {"p90", s.p90}, {"max", s.max}};
  };
  nlohmann::json strata_json = nlohmann::json::object();
  for (const auto& [name, shares] : strata) {
    strata_json[name] = {{"calibration", shares.first}, {"production", shares.second}};
  }
  return {{"js_divergence_bits", js_divergence},
          {"coverage", coverage},
          {"lengths", {{"calibration", lengths(calibration_lengths)}, {"production", lengths(production_lengths)}}},
          {"ks", ks},
          {"strata", std::move(strata_json)},
          {"stratum_distance", stratum_distance},
          {"representative", representative()},
          {"warnings", warnings}};
}

CalibrationCheck check_calibration_files(const std::filesystem::path& calibration,
                                         const std::filesystem::path& production, const io::ModelFile* model,
                                         const CalibrationThresholds& thresholds) {
  const TokenizedItems a = tokenize_items(read_calibration_file(calibration), model);
  const TokenizedItems b = tokenize_items(read_calibration_file(production), model);
  return check_calibration(a, b, thresholds);
}

}  // namespace stepdown::quant
