#pragma once
// Does a calibration set represent production? Compares a calibration file with a suite
// or traffic log on three axes and warns when they differ beyond fixed thresholds:
//
//   token mix     Jensen-Shannon divergence (bits, in [0, 1]) between the unigram token
//                 distributions, each smoothed by adding 0.5 to every token seen in
//                 either file. Coverage: the share of production tokens whose id occurs
//                 at least once in the calibration set.
//   lengths       tokens per item: quantiles of both, and the two-sample
//                 Kolmogorov-Smirnov statistic D.
//   stratum mix   share of items per `stratum` field, where both files have them.
//
// Warnings (thresholds in CalibrationThresholds): JSD above 0.35 bits; coverage below 0.9;
// D above 0.5 when both files have at least 20 items; a production stratum holding at
// least 5% of the items that has no calibration item; total variation distance between
// stratum mixes above 0.3. The thresholds are set so that two halves of one source pass
// and prose against code or numbers fails (tests/quant/calibration_check_test.cpp); they
// are judgment calls, not statistical tests at a chosen level.
//
// Items: each traffic or suite line is one item; a plain text file is split into
// paragraphs at blank lines. Tokens come from the model's tokenizer (and chat template)
// when a model is given; otherwise each whitespace-separated word, lower-cased, is a
// token, which is coarser but needs no model.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/quant/calibration_data.h"

namespace stepdown::io {
struct ModelFile;
}  // namespace stepdown::io

namespace stepdown::quant {

struct CalibrationThresholds {
  double max_js_divergence = 0.35;  // bits
  double min_coverage = 0.9;
  double max_ks = 0.5;
  int64_t min_items_for_ks = 20;
  double min_missing_stratum_share = 0.05;
  double max_stratum_distance = 0.3;
};

// Tokens per item and the stratum of each item ("" when it has none).
struct TokenizedItems {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::string> strata;
};

struct LengthSummary {
  int64_t items = 0;
  double p10 = 0.0, p50 = 0.0, p90 = 0.0, max = 0.0;
};

struct CalibrationCheck {
  double js_divergence = 0.0;  // bits
  double coverage = 0.0;
  LengthSummary calibration_lengths;
  LengthSummary production_lengths;
  double ks = 0.0;
  // Share of items per stratum in each file; empty when either file has no strata.
  std::map<std::string, std::pair<double, double>> strata;  // name -> (calibration, production)
  double stratum_distance = 0.0;  // total variation distance between the two mixes
  std::vector<std::string> warnings;

  bool representative() const { return warnings.empty(); }
  nlohmann::json to_json() const;
};

// Compares two tokenized sets. Throws InvalidArgument when either has no items.
CalibrationCheck check_calibration(const TokenizedItems& calibration, const TokenizedItems& production,
                                   const CalibrationThresholds& thresholds = {});

// Splits and tokenizes the items of a calibration-style file as described above; a null
// `model` gives word tokens.
TokenizedItems tokenize_items(const CalibrationFile& file, const io::ModelFile* model);

// read_calibration_file on both paths, tokenize_items, check_calibration.
CalibrationCheck check_calibration_files(const std::filesystem::path& calibration,
                                         const std::filesystem::path& production, const io::ModelFile* model,
                                         const CalibrationThresholds& thresholds = {});

}  // namespace stepdown::quant
