#include "stepdown/quant/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::quant {
namespace {

// v (C) clamped below at kScaleStatisticFloor * max(v); all zeros stay all zeros.
std::vector<float> clamp_statistic(std::span<const float> values) {
  float largest = 0.0f;
  for (float v : values) largest = std::max(largest, v);
  const float floor = largest * kScaleStatisticFloor;
  std::vector<float> clamped(values.begin(), values.end());
  for (float& v : clamped) v = std::max(v, floor);
  return clamped;
}

}  // namespace

std::vector<float> awq_scales(std::span<const float> mean_abs_input, std::span<const float> mean_abs_weight,
                              float alpha) {
  if (!mean_abs_weight.empty() && mean_abs_weight.size() != mean_abs_input.size()) {
    raise<InvalidArgument>("awq_scales: {} input statistics but {} weight statistics", mean_abs_input.size(),
                           mean_abs_weight.size());
  }
  const std::vector<float> x = clamp_statistic(mean_abs_input);
  const std::vector<float> w = clamp_statistic(mean_abs_weight);
  std::vector<float> scales(x.size(), 1.0f);
  if (x.empty() || *std::max_element(x.begin(), x.end()) == 0.0f) return scales;

  for (size_t j = 0; j < x.size(); ++j) {
    double s = std::pow(static_cast<double>(x[j]), alpha);
    if (!w.empty() && w[j] > 0.0f) s /= std::pow(static_cast<double>(w[j]), 1.0 - alpha);
    scales[j] = static_cast<float>(s);
  }

  // Centring on 1 changes nothing in exact arithmetic (it is a common factor), but keeps
  // the folded norm weights and scaled columns near their original magnitudes.
  const auto [smallest, largest] = std::minmax_element(scales.begin(), scales.end());
  const float centre = static_cast<float>(std::sqrt(static_cast<double>(*smallest) * *largest));
  if (centre > 0.0f && std::isfinite(centre)) {
    for (float& s : scales) s /= centre;
  }
  return scales;
}

std::vector<float> normalized_mean_abs_columns(const std::vector<const FloatMatrix*>& weights) {
  if (weights.empty()) return {};
  const int64_t cols = weights.front()->cols;
  std::vector<double> sum(static_cast<size_t>(cols), 0.0);
  int64_t rows = 0;
  for (const FloatMatrix* w : weights) {
    if (w->cols != cols) {
      raise<InvalidArgument>("normalized_mean_abs_columns: matrices of {} and {} columns", cols, w->cols);
    }
    for (int64_t r = 0; r < w->rows; ++r) {
      const float* row = w->row(r);
      float largest = 0.0f;
      for (int64_t j = 0; j < cols; ++j) largest = std::max(largest, std::fabs(row[j]));
      if (largest > 0.0f) {
        for (int64_t j = 0; j < cols; ++j) sum[static_cast<size_t>(j)] += std::fabs(row[j]) / largest;
      }
    }
    rows += w->rows;
  }
  std::vector<float> mean(static_cast<size_t>(cols), 0.0f);
  if (rows == 0) return mean;
  for (int64_t j = 0; j < cols; ++j) {
    mean[static_cast<size_t>(j)] = static_cast<float>(sum[static_cast<size_t>(j)] / static_cast<double>(rows));
  }
  return mean;
}

AlphaChoice search_awq_alpha(const ScaleError& error, std::span<const float> mean_abs_input,
                             std::span<const float> mean_abs_weight, const AwqOptions& options,
                             const HeadSharing* heads) {
  if (options.grid <= 0) raise<InvalidArgument>("AWQ alpha grid must be positive, got {}", options.grid);
  std::vector<float> input_statistic(mean_abs_input.begin(), mean_abs_input.end());
  std::vector<float> weight_statistic(mean_abs_weight.begin(), mean_abs_weight.end());
  if (heads != nullptr) {
    input_statistic = average_shared_heads(input_statistic, *heads);
    if (!weight_statistic.empty()) weight_statistic = average_shared_heads(weight_statistic, *heads);
  }

  std::vector<float> alphas;
  if (options.alpha) {
    alphas.push_back(*options.alpha);
  } else {
    for (int64_t i = 0; i < options.grid; ++i) alphas.push_back(static_cast<float>(i) / static_cast<float>(options.grid));
  }

  AlphaChoice best;
  double best_error = std::numeric_limits<double>::infinity();
  for (float alpha : alphas) {
    std::vector<float> shared = awq_scales(input_statistic, weight_statistic, alpha);
    std::vector<float> scales = heads != nullptr ? expand_shared_heads(shared, *heads) : shared;
    const double e = error(scales);
    best.errors.push_back(e);
    // Strictly smaller, so ties keep the smaller alpha; a NaN error is never chosen.
    if (e < best_error || best.scales.empty()) {
      best_error = std::isnan(e) ? best_error : e;
      best.alpha = alpha;
      best.scales = std::move(scales);
      best.shared_scales = heads != nullptr ? std::move(shared) : std::vector<float>{};
    }
  }
  return best;
}

double clip_weights(FloatMatrix& w, DType dtype, const model::Activations& x, const AwqOptions& options,
                    ThreadPool& pool) {
  if (x.cols != w.cols) {
    raise<InvalidArgument>("clip_weights: weight has {} columns but the input has {}", w.cols, x.cols);
  }
  if (options.clip_grid <= 0) raise<InvalidArgument>("AWQ clip grid must be positive, got {}", options.clip_grid);
  const int64_t block = dtype_info(dtype).block_elems;
  const int64_t group = block > 1 ? block : w.cols;
  const int64_t n_groups = w.cols / group;
  const int64_t tokens = std::min(x.rows, options.clip_tokens);
  const size_t row_bytes = dtype_bytes(dtype, w.cols);

  std::vector<double> ratio_sum(static_cast<size_t>(w.rows), 0.0);
  pool.parallel_for(w.rows, [&](int64_t begin, int64_t end) {
    std::vector<float> clipped(static_cast<size_t>(w.cols));
    std::vector<float> decoded(static_cast<size_t>(w.cols));
    std::vector<float> best_row(static_cast<size_t>(w.cols));
    std::vector<std::byte> bytes(row_bytes);
    std::vector<double> best_error(static_cast<size_t>(n_groups));
    for (int64_t r = begin; r < end; ++r) {
      float* row = w.row(r);
      std::fill(best_error.begin(), best_error.end(), std::numeric_limits<double>::infinity());
      std::vector<float> best_ratio(static_cast<size_t>(n_groups), 1.0f);
      for (int64_t k = 0; k < options.clip_grid; ++k) {
        const float ratio = 1.0f - static_cast<float>(k) * (1.0f - options.clip_min_ratio) /
                                       static_cast<float>(options.clip_grid);

        // Clip every group of the row to ratio * [min, max] of that group.
        for (int64_t g = 0; g < n_groups; ++g) {
          const float* source = row + g * group;
          const auto [lowest, highest] = std::minmax_element(source, source + group);
          const float low = std::min(0.0f, *lowest) * ratio;
          const float high = std::max(0.0f, *highest) * ratio;
          for (int64_t j = 0; j < group; ++j) clipped[static_cast<size_t>(g * group + j)] = std::clamp(source[j], low, high);
        }
        quantize_row_any(dtype, clipped.data(), bytes.data(), w.cols);
        kernels::dequantize_row(dtype, bytes.data(), decoded.data(), w.cols);

        // Error of each group on the sample: sum over tokens of (x_g . (w_g - Q(clip(w_g))))^2.
        for (int64_t g = 0; g < n_groups; ++g) {
          double e = 0.0;
          for (int64_t t = 0; t < tokens; ++t) {
            const float* xt = x.row(t) + g * group;
            double dot = 0.0;
            for (int64_t j = 0; j < group; ++j) {
              dot += static_cast<double>(xt[j]) * (row[g * group + j] - decoded[static_cast<size_t>(g * group + j)]);
            }
            e += dot * dot;
          }
          if (e < best_error[static_cast<size_t>(g)]) {
            best_error[static_cast<size_t>(g)] = e;
            best_ratio[static_cast<size_t>(g)] = ratio;
            std::copy(clipped.begin() + g * group, clipped.begin() + (g + 1) * group, best_row.begin() + g * group);
          }
        }
      }
      std::copy(best_row.begin(), best_row.end(), row);
      double sum = 0.0;
      for (float ratio : best_ratio) sum += ratio;
      ratio_sum[static_cast<size_t>(r)] = sum / static_cast<double>(n_groups);
    }
  });
  double total = 0.0;
  for (double s : ratio_sum) total += s;
  return w.rows > 0 ? total / static_cast<double>(w.rows) : 1.0;
}

}  // namespace stepdown::quant
