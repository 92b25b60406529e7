#pragma once
// Activation-aware weight quantization (AWQ, Lin et al. 2023, arXiv:2306.00978): scale
// each input channel j of a linear group by s_j = mean|x_j|^alpha before round-to-nearest,
// so that channels with large activations keep more precision, and fold 1/s into the
// layer that produces x (see channel_scaling.h). alpha is searched on a grid of `grid`
// values in [0, 1) per group. The "awq" method measures each candidate by the output
// error of the whole block (awq_method.cpp). alpha = 0 gives s = 1, plain RTN, so the
// chosen scales never measure worse than RTN on the calibration sample.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "stepdown/core/thread_pool.h"
#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/method.h"

namespace stepdown::quant {

struct AwqOptions {
  int64_t grid = 20;                 // alpha = i / grid for i in [0, grid)
  std::optional<float> alpha;        // a fixed alpha instead of the search
  bool duo_scaling = false;          // divide by mean|w_j|^(1 - alpha) as well
  bool clip = false;                 // search a clipping ratio per (row, group) afterwards (the method's default: on)
  int64_t clip_grid = 10;            // ratios 1 - i * (1 - clip_min_ratio) / clip_grid
  float clip_min_ratio = 0.5f;
  int64_t clip_tokens = 128;         // sample rows the clipping search uses
};

// Smallest statistic a scale is computed from, relative to the largest channel's. A dead
// channel (mean|x| = 0) or an all-zero weight column would otherwise give s = 0 or
// infinity; clamped, s stays within floor^alpha of the other channels.
inline constexpr float kScaleStatisticFloor = 1e-4f;

// s (C) with s_j = m_j^alpha / w_j^(1 - alpha) (w only when mean_abs_weight is not empty),
// each statistic clamped below at kScaleStatisticFloor times its maximum, then divided by
// sqrt(max s * min s) so the scales straddle 1. Every s_j is finite and positive, and an
// all-zero statistic gives s = 1.
std::vector<float> awq_scales(std::span<const float> mean_abs_input, std::span<const float> mean_abs_weight,
                              float alpha);

// (C) the mean over every row r of every matrix of |W[r][j]| / max_j |W[r][j]|, the weight
// statistic of duo scaling; an all-zero row counts as zeros.
std::vector<float> normalized_mean_abs_columns(const std::vector<const FloatMatrix*>& weights);

// The error of a candidate scaling s (C), lower is better.
using ScaleError = std::function<double(std::span<const float> scales)>;

struct AlphaChoice {
  float alpha = 0.0f;
  std::vector<double> errors;       // (grid) the ScaleError at alpha = i / grid
  std::vector<float> scales;        // (C) the group's input width
  std::vector<float> shared_scales; // (K) scales per kv channel when heads share, else empty
};

// Evaluates every alpha of the grid (only options.alpha when set) and keeps the one with
// the smallest error; ties keep the smaller alpha. With `heads` set, the input is the
// attention heads (Q wide) and the scales are computed per kv channel from the statistics
// averaged over the query heads sharing it, then repeated, so they can be folded into v.
AlphaChoice search_awq_alpha(const ScaleError& error, std::span<const float> mean_abs_input,
                             std::span<const float> mean_abs_weight, const AwqOptions& options,
                             const HeadSharing* heads = nullptr);

// Clips each (row, group) of W (already scaled) to ratio * [min, max] of that group, with
// the ratio from the clipping grid that minimizes sum over tokens of (x_g . (w_g - Q(w_g)))^2
// on the rows of x (the scaled input); group is the format's block (the row for per-row
// formats). Returns the mean chosen ratio.
double clip_weights(FloatMatrix& w, DType dtype, const model::Activations& x, const AwqOptions& options,
                    ThreadPool& pool);

// The "awq" method of `stepdown quantize` (needs --calib). Parameters: alpha (fixed, in
// [0, 1]), grid (20), duo_scaling (0), clip (1), search_tokens (1024: the block's output
// error is measured on the first ceil(search_tokens / seq_len) calibration sequences),
// clip_tokens (128 rows, evenly spaced over those sequences).
QuantMethod awq_method();

}  // namespace stepdown::quant
