#pragma once
// The "fp8" method of `stepdown quantize`: FP8 E4M3 weights with a scale per output
// channel (the FP8_E4M3 row quantizer: absmax(row) / 448) or one scale per tensor
// (absmax(W) / 448, written into every row header of the same FP8_E4M3 layout, so the
// kernels run it unchanged). Values are clamped to +-448 before the cast, and an all-zero
// row or tensor gets scale 0 and zero codes.
#include <cstddef>
#include <vector>

#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/method.h"

namespace stepdown::quant {

// W (rows, cols) -> rows * dtype_bytes(FP8_E4M3, cols) bytes, every row with the scale
// absmax(W) / 448. Input must be finite.
std::vector<std::byte> quantize_fp8_per_tensor(const FloatMatrix& w);

// Parameters: granularity (channel or tensor), static_act (0; 1 raises Unsupported,
// because no kernel yet rounds activations to E4M3 with a static scale).
QuantMethod fp8_method();

}  // namespace stepdown::quant
