#include "stepdown/quant/channel_scaling.h"

#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/rtn_int.h"

namespace stepdown::quant {
namespace {

void check_scale_count(std::string_view what, size_t expected, size_t found) {
  if (expected != found) raise<InvalidArgument>("{}: expected {} scales, got {}", what, expected, found);
}

kernels::WeightMatrix weight_view(const std::vector<std::byte>& bytes, DType dtype, int64_t rows, int64_t cols) {
  return kernels::WeightMatrix{dtype, bytes.data(), rows, cols, dtype_bytes(dtype, cols)};
}

}  // namespace

void scale_columns(FloatMatrix& w, std::span<const float> scales) {
  check_scale_count("scale_columns", static_cast<size_t>(w.cols), scales.size());
  for (int64_t r = 0; r < w.rows; ++r) {
    float* row = w.row(r);
    for (int64_t j = 0; j < w.cols; ++j) row[j] *= scales[static_cast<size_t>(j)];
  }
}

void divide_rows(FloatMatrix& w, std::span<const float> scales) {
  check_scale_count("divide_rows", static_cast<size_t>(w.rows), scales.size());
  for (int64_t r = 0; r < w.rows; ++r) {
    float* row = w.row(r);
    const float scale = scales[static_cast<size_t>(r)];
    for (int64_t j = 0; j < w.cols; ++j) row[j] /= scale;
  }
}

void divide_elements(std::span<float> values, std::span<const float> scales) {
  check_scale_count("divide_elements", values.size(), scales.size());
  for (size_t j = 0; j < values.size(); ++j) values[j] /= scales[j];
}

model::Activations divide_columns(const model::Activations& x, std::span<const float> scales) {
  check_scale_count("divide_columns", static_cast<size_t>(x.cols), scales.size());
  model::Activations out;
  out.resize(x.rows, x.cols);
  for (int64_t t = 0; t < x.rows; ++t) {
    const float* in = x.row(t);
    float* row = out.row(t);
    for (int64_t j = 0; j < x.cols; ++j) row[j] = in[j] / scales[static_cast<size_t>(j)];
  }
  return out;
}

std::vector<float> average_shared_heads(std::span<const float> per_query_channel, const HeadSharing& heads) {
  const int64_t group = heads.n_heads / heads.n_kv_heads;
  check_scale_count("average_shared_heads", static_cast<size_t>(heads.n_heads * heads.head_dim),
                    per_query_channel.size());
  std::vector<float> per_kv(static_cast<size_t>(heads.n_kv_heads * heads.head_dim), 0.0f);
  for (int64_t h = 0; h < heads.n_heads; ++h) {
    for (int64_t i = 0; i < heads.head_dim; ++i) {
      per_kv[static_cast<size_t>((h / group) * heads.head_dim + i)] +=
          per_query_channel[static_cast<size_t>(h * heads.head_dim + i)] / static_cast<float>(group);
    }
  }
  return per_kv;
}

std::vector<float> expand_shared_heads(std::span<const float> per_kv_channel, const HeadSharing& heads) {
  const int64_t group = heads.n_heads / heads.n_kv_heads;
  check_scale_count("expand_shared_heads", static_cast<size_t>(heads.n_kv_heads * heads.head_dim),
                    per_kv_channel.size());
  std::vector<float> per_query(static_cast<size_t>(heads.n_heads * heads.head_dim));
  for (int64_t h = 0; h < heads.n_heads; ++h) {
    for (int64_t i = 0; i < heads.head_dim; ++i) {
      per_query[static_cast<size_t>(h * heads.head_dim + i)] =
          per_kv_channel[static_cast<size_t>((h / group) * heads.head_dim + i)];
    }
  }
  return per_query;
}

void quantize_row_any(DType dtype, const float* src, std::byte* dst, int64_t n) {
  if (is_stepdown_format(dtype)) return quantize_row_stepdown(dtype, src, dst, n);
  const QuantFormat* format = find_quant_format(dtype);
  if (format == nullptr) raise<InvalidArgument>("no quantizer stores {}", dtype_name(dtype));
  format->quantize_row(src, dst, n);
}

std::vector<std::byte> quantize_matrix(const FloatMatrix& w, DType dtype, ThreadPool& pool) {
  const QuantFormat* format = is_stepdown_format(dtype) ? nullptr : find_quant_format(dtype);
  if (!is_stepdown_format(dtype) && format == nullptr) {
    raise<InvalidArgument>("no quantizer stores {}", dtype_name(dtype));
  }
  const size_t row_bytes = dtype_bytes(dtype, w.cols);
  std::vector<std::byte> bytes(row_bytes * static_cast<size_t>(w.rows));
  pool.parallel_for(w.rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      std::byte* dst = bytes.data() + static_cast<size_t>(r) * row_bytes;
      if (format != nullptr) {
        format->quantize_row(w.row(r), dst, w.cols);
      } else {
        quantize_row_stepdown(dtype, w.row(r), dst, w.cols);
      }
    }
  });
  return bytes;
}

GroupOutputError::GroupOutputError(std::vector<GroupMember> members, const model::Activations& x, ThreadPool& pool)
    : members_(std::move(members)), x_(x), pool_(pool) {
  for (const GroupMember& member : members_) {
    const FloatMatrix& w = *member.weight;
    if (w.cols != x.cols) {
      raise<InvalidArgument>("{}: weight is ({}, {}) but its calibration input has {} columns", member.name, w.rows,
                             w.cols, x.cols);
    }
    // y (T, rows) = X (T, C) @ W^T in f32.
    std::vector<float> y(static_cast<size_t>(x.rows * w.rows));
    const kernels::WeightMatrix view{DType::F32, reinterpret_cast<const std::byte*>(w.values.data()), w.rows, w.cols,
                                     static_cast<size_t>(w.cols) * sizeof(float)};
    if (x.rows > 0) kernels::matmul(view, x.data.data(), x.rows, y.data(), pool_);
    reference_.push_back(std::move(y));
  }
}

double GroupOutputError::evaluate(std::span<const float> scales) const {
  const model::Activations x_scaled = divide_columns(x_, scales);
  double sum = 0.0;
  int64_t count = 0;
  for (size_t m = 0; m < members_.size(); ++m) {
    const GroupMember& member = members_[m];

    // W' = W diag(s), stored in the member's format.
    FloatMatrix scaled = *member.weight;
    scale_columns(scaled, scales);
    const std::vector<std::byte> bytes = quantize_matrix(scaled, member.dtype, pool_);

    // y_s (T, rows) = (X / s) @ Q(W')^T through the format's own kernel.
    std::vector<float> y(static_cast<size_t>(x_.rows * scaled.rows));
    if (x_.rows > 0) {
      kernels::matmul(weight_view(bytes, member.dtype, scaled.rows, scaled.cols), x_scaled.data.data(), x_.rows,
                      y.data(), pool_);
    }
    for (size_t i = 0; i < y.size(); ++i) {
      const double difference = static_cast<double>(y[i]) - reference_[m][i];
      sum += difference * difference;
    }
    count += static_cast<int64_t>(y.size());
  }
  return count > 0 ? sum / static_cast<double>(count) : 0.0;
}

}  // namespace stepdown::quant
