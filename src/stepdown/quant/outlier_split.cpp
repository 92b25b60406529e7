#include "stepdown/quant/outlier_split.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"
#include "stepdown/kernels/int8_outlier.h"
#include "stepdown/quant/calibrated_weights.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::quant {

void quantize_row_int8_outlier(const float* src, std::span<const uint16_t> columns, std::byte* dst, int64_t n) {
  if (columns.size() > static_cast<size_t>(kernels::kMaxOutlierColumns)) {
    raise<InvalidArgument>("INT8_OUTLIER holds at most {} outlier columns, got {}", kernels::kMaxOutlierColumns,
                           columns.size());
  }
  kernels::OutlierRowHeader header;
  std::fill(std::begin(header.columns), std::end(header.columns), kernels::kNoOutlierColumn);
  std::vector<bool> is_outlier(static_cast<size_t>(n), false);
  for (size_t k = 0; k < columns.size(); ++k) {
    if (columns[k] >= n || columns[k] == kernels::kNoOutlierColumn) {
      raise<InvalidArgument>("INT8_OUTLIER: outlier column {} is outside the row of {}", columns[k], n);
    }
    header.columns[k] = columns[k];
    header.values[k] = src[columns[k]];
    is_outlier[columns[k]] = true;
  }

  float absmax = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    if (!is_outlier[static_cast<size_t>(j)]) absmax = std::max(absmax, std::fabs(src[j]));
  }
  header.scale = absmax >= FLT_MIN ? absmax / 127.0f : 0.0f;
  kernels::write_outlier_header(header, dst);
  auto* q = reinterpret_cast<int8_t*>(dst + dtype_info(DType::INT8_OUTLIER).row_header_bytes);
  for (int64_t j = 0; j < n; ++j) {
    if (is_outlier[static_cast<size_t>(j)] || header.scale == 0.0f) {
      q[j] = 0;
      continue;
    }
    q[j] = static_cast<int8_t>(std::clamp(std::round(src[j] / header.scale), -127.0f, 127.0f));
  }
}

std::vector<std::byte> quantize_matrix_int8_outlier(const FloatMatrix& w, std::span<const uint16_t> columns) {
  const size_t row_bytes = dtype_bytes(DType::INT8_OUTLIER, w.cols);
  std::vector<std::byte> bytes(row_bytes * static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r) {
    quantize_row_int8_outlier(w.row(r), columns, bytes.data() + static_cast<size_t>(r) * row_bytes, w.cols);
  }
  return bytes;
}

std::vector<uint16_t> select_outlier_columns(std::span<const float> max_abs_input, float threshold, int64_t& dropped) {
  std::vector<uint16_t> above;
  for (size_t j = 0; j < max_abs_input.size() && j < kernels::kNoOutlierColumn; ++j) {
    if (max_abs_input[j] > threshold) above.push_back(static_cast<uint16_t>(j));
  }
  std::stable_sort(above.begin(), above.end(),
                   [&](uint16_t a, uint16_t b) { return max_abs_input[a] > max_abs_input[b]; });
  dropped = std::max<int64_t>(0, static_cast<int64_t>(above.size()) - kernels::kMaxOutlierColumns);
  if (above.size() > static_cast<size_t>(kernels::kMaxOutlierColumns)) above.resize(kernels::kMaxOutlierColumns);
  return above;
}

namespace {

MethodOutput run_outlier(const MethodContext& ctx) {
  check_method_params(ctx, "outlier", {"threshold"});
  const double threshold = method_param_number(ctx, "outlier", "threshold", 6.0);
  if (!(threshold >= 0.0)) raise<InvalidArgument>("--method-param threshold={}: expected a number >= 0", threshold);
  // Only max|x| per channel is needed, so keep one sample row.
  CalibratedWeights weights(ctx, 1);
  const model::ModelConfig& config = weights.config();

  MethodOutput output;
  nlohmann::json layers = nlohmann::json::array();
  int64_t total_dropped = 0;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    const BlockInputs& inputs = weights.inputs()[static_cast<size_t>(layer)];
    nlohmann::json record;
    for (LinearGroup group : kLinearGroups) {
      int64_t dropped = 0;
      const std::vector<uint16_t> columns =
          select_outlier_columns(linear_group_input(inputs, group).abs_max, static_cast<float>(threshold), dropped);
      total_dropped += dropped;
      for (const std::string& name : linear_group_members(layer, group)) {
        if (weights.planned_dtype(name) != DType::INT8_OUTLIER) {
          raise<InvalidArgument>("method 'outlier' needs {} planned as INT8_OUTLIER, found {}; use --scheme "
                                 "int8-outlier, and no --override that gives it another format",
                                 name, dtype_name(weights.planned_dtype(name)));
        }
        output.tensors[name].bytes = quantize_matrix_int8_outlier(weights.matrix(name), columns);
      }
      record[linear_group_name(group)] = {{"columns", columns}, {"dropped", dropped}};
    }
    layers.push_back(std::move(record));
  }
  if (total_dropped > 0) {
    spdlog::warn("outlier: {} input channels above the threshold {} did not fit in {} columns per linear and went to "
                 "int8",
                 total_dropped, threshold, kernels::kMaxOutlierColumns);
  }
  output.manifest = {{"method", "outlier"},
                     {"threshold", threshold},
                     {"max_columns", kernels::kMaxOutlierColumns},
                     {"dropped_columns", total_dropped},
                     {"calibration", weights.calibration_manifest()},
                     {"layers", std::move(layers)}};
  return output;
}

}  // namespace

QuantMethod outlier_method() {
  return QuantMethod{"outlier",
                     "LLM.int8()-style split: input channels with calibrated max|x| above a threshold stay f32, the "
                     "rest W8A8 (params: threshold)",
                     run_outlier};
}

}  // namespace stepdown::quant
