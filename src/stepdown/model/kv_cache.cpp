#include "stepdown/model/kv_cache.h"

#include "stepdown/core/error.h"

namespace stepdown::model {

KVCache::KVCache(const ModelConfig& config, int64_t capacity)
    : n_layers_(config.n_layers), kv_dim_(config.kv_dim()), capacity_(capacity) {
  if (capacity <= 0) raise<InvalidArgument>("KV cache capacity is {}; expected a positive number of positions", capacity);
  const size_t size = static_cast<size_t>(n_layers_ * capacity_ * kv_dim_);
  keys_.assign(size, 0.0f);
  values_.assign(size, 0.0f);
}

void KVCache::set_length(int64_t length) {
  if (length < 0 || length > capacity_) {
    raise<InvalidArgument>("KV cache length {} is outside [0, {}]", length, capacity_);
  }
  length_ = length;
}

}  // namespace stepdown::model
