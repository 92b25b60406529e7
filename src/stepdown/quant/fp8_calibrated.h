#pragma once
// The "fp8" method of `stepdown quantize`: FP8 E4M3 weights with a scale per output
// channel (the FP8_E4M3 row quantizer: absmax(row) / 448) or one scale per tensor
// (absmax(W) / 448). The tensor scale is written into every row header of the same
// FP8_E4M3 layout, so the kernels run it unchanged. Values are clamped to +-448 before the cast, and an all-zero
// row or tensor gets scale 0 and zero codes.
#include <cstddef>
#include <span>
#include <vector>

#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/method.h"

namespace stepdown::quant {

// W (rows, cols) -> rows * dtype_bytes(FP8_E4M3, cols) bytes, every row with the scale
// absmax(W) / 448. Input must be finite.
std::vector<std::byte> quantize_fp8_per_tensor(const FloatMatrix& w);

// W (rows, cols) -> rows * dtype_bytes(FP8_E4M3_A8, cols) bytes: `act_scale` in every row,
// then the row's FP8_E4M3 bytes with a per-row scale, or the per-tensor scale when
// `per_tensor`. Throws InvalidArgument unless act_scale is finite and positive.
std::vector<std::byte> quantize_fp8_a8(const FloatMatrix& w, float act_scale, bool per_tensor);

// The static activation scale of one linear: max over channels of the calibrated max |x|,
// divided by 448, so the largest calibration activation maps to E4M3's largest value. An
// input that was all zeros gets 1.
float static_activation_scale(std::span<const float> abs_max);

// Parameters: granularity (channel or tensor) and static_act. static_act=1 calibrates one
// activation scale per block linear (static_activation_scale of its input over --calib)
// and stores those linears as FP8_E4M3_A8, whose kernel rounds each activation to E4M3;
// the default is 1 with --scheme fp8-a8 and 0 (f32 activations) with --scheme fp8.
QuantMethod fp8_method();

}  // namespace stepdown::quant
