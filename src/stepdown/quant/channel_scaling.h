#pragma once
// Per-input-channel scaling shared by AWQ and SmoothQuant. For a linear group that reads
// one input X (T, C), the weights become W' = W diag(s) and the input X' = X diag(1/s),
// so X' W'^T = X W^T in exact arithmetic. The 1/s is folded into whatever produces X:
// the RMSNorm weight before q/k/v or gate/up, the rows of v before o, the rows of up
// before down. This file contains the folding steps and the measure SmoothQuant's scale
// search minimizes: the output error of the group once its weights are quantized. (AWQ
// measures the whole block's output instead; see awq_method.cpp.)
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/model/activations.h"

namespace stepdown::quant {

// W (rows, cols) in f32, row-major; rows are output features, cols input features.
struct FloatMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // (rows, cols)

  float* row(int64_t r) { return values.data() + r * cols; }
  const float* row(int64_t r) const { return values.data() + r * cols; }
};

// W (rows, C) -> W diag(s): column j times s[j]. Throws InvalidArgument unless s has C values.
void scale_columns(FloatMatrix& w, std::span<const float> scales);
// W (C, cols) -> diag(1/s) W: row j divided by s[j]. Throws InvalidArgument unless s has C values.
void divide_rows(FloatMatrix& w, std::span<const float> scales);
// v (C) -> v / s element by element (a RMSNorm weight or a bias).
void divide_elements(std::span<float> values, std::span<const float> scales);
// X (T, C) -> X diag(1/s).
model::Activations divide_columns(const model::Activations& x, std::span<const float> scales);

// Grouped-query attention: query head h reads kv head h / (n_heads / n_kv_heads). A scale
// folded into v's rows therefore acts on that channel of every query head sharing it.
struct HeadSharing {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
};
// (n_heads * head_dim) -> (n_kv_heads * head_dim): the mean over the query heads of each kv head.
std::vector<float> average_shared_heads(std::span<const float> per_query_channel, const HeadSharing& heads);
// (n_kv_heads * head_dim) -> (n_heads * head_dim): each kv channel repeated for its query heads.
std::vector<float> expand_shared_heads(std::span<const float> per_kv_channel, const HeadSharing& heads);

// dst (dtype_bytes(dtype, n)) = src (n) in `dtype`, by quantize_row_stepdown or the
// registered QuantFormat. Throws InvalidArgument when no quantizer stores `dtype`.
void quantize_row_any(DType dtype, const float* src, std::byte* dst, int64_t n);

// W (rows, cols) f32 -> rows * dtype_bytes(dtype, cols) bytes: stepdown formats through
// quantize_row_stepdown, the others through their registered QuantFormat. Rows run on
// `pool`. Throws InvalidArgument when no quantizer stores `dtype` or cols does not fit it.
std::vector<std::byte> quantize_matrix(const FloatMatrix& w, DType dtype, ThreadPool& pool);

// One linear layer of a group and the format it will be stored in.
struct GroupMember {
  std::string name;
  const FloatMatrix* weight = nullptr;  // (rows, C), outlives the GroupOutputError
  DType dtype = DType::F32;
};

// Output error of a linear group whose members all read X (T, C). For scales s:
//     error(s) = sum over members, tokens t and rows r of (y[t][r] - y_s[t][r])^2 / count
// where y = X W^T in f32 and y_s = (X / s) Q(W diag(s))^T with Q the member's format, run
// through kernels::matmul, so INT8_W8A8 members also quantize the activations per token.
class GroupOutputError {
 public:
  // Computes the f32 reference outputs once. Throws InvalidArgument when a member's cols
  // differ from X's.
  GroupOutputError(std::vector<GroupMember> members, const model::Activations& x, ThreadPool& pool);

  double evaluate(std::span<const float> scales) const;
  const std::vector<GroupMember>& members() const { return members_; }
  const model::Activations& input() const { return x_; }

 private:
  std::vector<GroupMember> members_;
  const model::Activations& x_;
  ThreadPool& pool_;
  std::vector<std::vector<float>> reference_;  // per member (T, rows)
};

}  // namespace stepdown::quant
