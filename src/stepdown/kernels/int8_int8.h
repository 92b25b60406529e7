#pragma once
// INT8 weights x INT8 activations (W8A8). Weights are INT8_W8A8 rows (f32 scale, int8
// codes in [-127, 127], see stepdown_formats.h). Each call quantizes every token of x once,
// symmetrically with its own scale (absmax / 127, round to nearest even), then sums the
// int8 products exactly in int32 and scales the sum:
//     y[t][r] = float(sum_i qw[r][i] * qx[t][i]) * (w_scale[r] * x_scale[t])
// The int32 sum is exact for cols < 2^31 / 127^2 (about 133,000), checked per call. Every
// path (AVX-512 VNNI, AVX2, scalar) gives the same bits, so tests require equality.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

// Instruction sets for the int8 dot product, best first.
enum class Int8DotPath { kAvx512Vnni, kAvx2, kScalar };
std::string_view int8_dot_path_name(Int8DotPath path);
// The paths this CPU can run (kScalar always), best first.
std::vector<Int8DotPath> supported_int8_dot_paths();

// Sum of a[i] * b[i] over n int8 values, exact in int32. b must not contain -128.
int32_t dot_int8(const int8_t* a, const int8_t* b, int64_t n, Int8DotPath path);

// Per-token activation quantization: q (cols) and the scale with x ~= scale * q. A token
// whose absmax is 0 or subnormal gets scale 0 and all-zero codes.
float quantize_activation_row(const float* x, int64_t cols, int8_t* q);

// Y (n_tokens, rows) = X (n_tokens, cols) @ W^T for W in INT8_W8A8, threads over rows,
// on the best path of this CPU. matvec and matmul call this for INT8_W8A8.
void matmul_w8a8(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// The same on one thread with `path`; matmul_w8a8 equals this bit for bit.
void matmul_w8a8_on_path(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, Int8DotPath path);

}  // namespace stepdown::kernels
