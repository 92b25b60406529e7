#pragma once
// SmoothQuant (Xiao et al. 2022, arXiv:2211.10438): move the quantization difficulty of
// activation outliers into the weights with per-input-channel scales
//     s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
// where max|W_j| runs over the rows of every linear in the group, then fold 1/s into the
// layer that produces X (channel_scaling.h). With INT8_W8A8 weights the kernel quantizes
// the smoothed activations per token at run time, so smaller activation outliers mean
// finer activation steps.
#include <span>
#include <vector>

#include "stepdown/quant/awq.h"
#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/method.h"

namespace stepdown::quant {

// Smallest max|x| or max|w| a scale is computed from, relative to the channel maximum,
// so a dead channel or an all-zero weight column keeps a finite, positive scale.
inline constexpr float kSmoothStatisticFloor = 1e-5f;

// s (C) from max|X_j| and max|W_j| (both (C)), each clamped below at
// kSmoothStatisticFloor times its maximum. An all-zero statistic gives s = 1.
std::vector<float> smoothquant_scales(std::span<const float> max_abs_input, std::span<const float> max_abs_weight,
                                      float alpha);

// (C) max over the rows of every matrix of |W[r][j]|.
std::vector<float> max_abs_columns(const std::vector<const FloatMatrix*>& weights);

// Evaluates each alpha of `alphas` and keeps the smallest error (ties keep the earlier
// alpha). With `heads`, statistics are reduced to one per kv channel (the max over the
// query heads sharing it) and the scales repeated, as for AWQ's o projection.
AlphaChoice search_smoothquant_alpha(const GroupOutputError& error, std::span<const float> max_abs_input,
                                     std::span<const float> max_abs_weight, std::span<const float> alphas,
                                     const HeadSharing* heads = nullptr);

// The "smoothquant" method of `stepdown quantize` (needs --calib). Parameters: alpha
// (0.5, or "search" for a grid of 0.05 steps in [0.3, 0.9] chosen per linear group by its
// output error), search_tokens (1024 sample rows per input), weights (rtn, or gptq to
// quantize the smoothed weights with GPTQ, as llm-compressor's W8A8 recipe pairs the
// two). Meant for --scheme w8a8,
// whose INT8_W8A8 weights run with per-token int8 activations. With another format the
// activations stay f32, and a warning is logged.
QuantMethod smoothquant_method();

}  // namespace stepdown::quant
