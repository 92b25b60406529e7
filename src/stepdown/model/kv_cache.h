#pragma once
// Keys and values of every block for one sequence, in f32, so each decode step attends
// over the past without recomputing it.
#include <cassert>
#include <cstdint>
#include <vector>

#include "stepdown/model/config.h"

namespace stepdown::model {

class KVCache {
 public:
  // Room for `capacity` positions; throws InvalidArgument when capacity is not positive.
  KVCache(const ModelConfig& config, int64_t capacity);

  int64_t capacity() const { return capacity_; }
  // Positions filled so far; the next token goes to position length().
  int64_t length() const { return length_; }
  // Marks positions [0, length) as filled. Shrinking drops the tail (to rewind a sequence).
  void set_length(int64_t length);
  void clear() { length_ = 0; }

  // k (K) and v (K) of block `layer` at `position`, K = n_kv_heads * head_dim.
  float* key(int64_t layer, int64_t position) { return at(keys_, layer, position); }
  float* value(int64_t layer, int64_t position) { return at(values_, layer, position); }
  const float* key(int64_t layer, int64_t position) const { return at(keys_, layer, position); }
  const float* value(int64_t layer, int64_t position) const { return at(values_, layer, position); }

  size_t bytes() const { return (keys_.size() + values_.size()) * sizeof(float); }

 private:
  float* at(std::vector<float>& buffer, int64_t layer, int64_t position) {
    assert(layer >= 0);
    assert(layer < n_layers_);
    assert(position >= 0);
    assert(position < capacity_);
    return buffer.data() + (layer * capacity_ + position) * kv_dim_;
  }
  const float* at(const std::vector<float>& buffer, int64_t layer, int64_t position) const {
    assert(layer >= 0);
    assert(layer < n_layers_);
    assert(position >= 0);
    assert(position < capacity_);
    return buffer.data() + (layer * capacity_ + position) * kv_dim_;
  }

  int64_t n_layers_;
  int64_t kv_dim_;
  int64_t capacity_;
  int64_t length_ = 0;
  std::vector<float> keys_;    // (n_layers, capacity, K)
  std::vector<float> values_;  // (n_layers, capacity, K)
};

}  // namespace stepdown::model
