#pragma once
// Per-token operations of a transformer block on f32 rows: RMSNorm, softmax, SwiGLU.
// NOTE: scalar loops; they belong in kernels/ with a vectorized version once kernels/
// offers them, and cost little beside the weight products meanwhile.
#include <cstdint>

namespace stepdown::model {

// y (n) = x (n) / sqrt(mean(x^2) + eps) * weight (n). y may alias x.
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps);

// x (n) = softmax(x (n)) in place. Subtracting the max first keeps every exp argument <= 0.
void softmax(float* x, int64_t n);

// gate (n) = silu(gate (n)) * up (n) in place, silu(g) = g / (1 + exp(-g)).
void swiglu(float* gate, const float* up, int64_t n);

// gate (n) = gelu(gate (n)) * up (n) in place, with GELU's tanh approximation
// 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) as Gemma uses it.
void geglu(float* gate, const float* up, int64_t n);

}  // namespace stepdown::model
