#include "stepdown/quant/in_memory_model.h"

#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/channel_scaling.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/scheme.h"

namespace stepdown::quant {

io::ModelFile quantize_in_memory(const io::ModelFile& source, const std::vector<TensorPlan>& plans,
                                 const MethodOutput& prepared, ThreadPool& pool) {
  if (plans.size() != source.tensors.size()) {
    raise<InvalidArgument>("quantize_in_memory: {} plans for {} tensors", plans.size(), source.tensors.size());
  }
  io::ModelFile out;
  out.format = source.format;
  out.path = source.path;
  out.metadata = source.metadata;
  for (size_t i = 0; i < plans.size(); ++i) {
    const TensorView& t = source.tensors[i];
    const auto method_tensor = prepared.tensors.find(t.name);
    const bool changed = method_tensor != prepared.tensors.end();
    const DType dtype =
        changed && method_tensor->second.format != nullptr ? method_tensor->second.format->dtype : plans[i].format->dtype;
    auto buffer = std::make_shared<std::vector<std::byte>>();

    if (changed && method_tensor->second.bytes) {
      *buffer = *method_tensor->second.bytes;
    } else {
      FloatMatrix w{t.rows(), t.cols(), {}};
      if (changed) {
        w.values = method_tensor->second.values;
      } else {
        w.values.resize(static_cast<size_t>(t.numel()));
        for (int64_t r = 0; r < t.rows(); ++r) {
          kernels::dequantize_row(t.dtype, t.row(r), w.values.data() + r * t.cols(), t.cols());
        }
      }
      if (static_cast<int64_t>(w.values.size()) != t.numel()) {
        raise<InvalidArgument>("quantize_in_memory: {} values for {} {}", w.values.size(), t.name,
                               shape_string(t.shape));
      }
      *buffer = quantize_matrix(w, dtype, pool);
    }
    const size_t expected = dtype_bytes(dtype, t.cols()) * static_cast<size_t>(t.rows());
    if (buffer->size() != expected) {
      raise<InvalidArgument>("quantize_in_memory: {} bytes for {} in {}, expected {}", buffer->size(), t.name,
                             dtype_name(dtype), expected);
    }
    out.tensors.push_back(TensorView{t.name, dtype, t.shape, buffer->data(), buffer->size()});
    out.owned_buffers.push_back(std::move(buffer));
  }
  return out;
}

InMemoryModel quantize_model_in_memory(const QuantizeOptions& options, std::optional<DType> block_dtype,
                                       ThreadPool& pool) {
  const Scheme* scheme = find_scheme(options.scheme);
  if (scheme == nullptr) raise<InvalidArgument>("--scheme '{}' is unknown", options.scheme);
  std::vector<TensorOverride> overrides;
  for (const std::string& text : options.overrides) overrides.push_back(parse_override(text));
  io::OpenOptions open_options;
  open_options.tokenizer_path = options.tokenizer;
  InMemoryModel out;
  const io::ModelFile source = io::open_model_file(options.model, open_options);
  std::vector<TensorPlan> plans = plan_tensors(source.tensors, *scheme, overrides);

  // A format entry for `block_dtype` that only carries the dtype: quantize_in_memory and
  // the methods quantize through quantize_row_any, so it needs no row quantizer here.
  QuantFormat block_format;
  if (block_dtype) {
    const DTypeInfo& info = dtype_info(*block_dtype);
    block_format = QuantFormat{std::string(info.name), *block_dtype, info.block_elems, info.block_bytes, {}};
    for (size_t i = 0; i < plans.size(); ++i) {
      const TensorView& t = source.tensors[i];
      if (t.name.starts_with("blk.") && t.shape.size() == 2 && t.cols() % info.block_elems == 0) {
        plans[i].format = &block_format;
      }
    }
  }

  MethodOutput prepared;
  if (options.method != "rtn") {
    const QuantMethod* method = find_quant_method(options.method);
    if (method == nullptr) raise<InvalidArgument>("--method '{}' is unknown", options.method);
    prepared = method->run(MethodContext{source, plans, options, pool});
    out.method_details = prepared.manifest;
  }
  out.file = quantize_in_memory(source, plans, prepared, pool);
  return out;
}

}  // namespace stepdown::quant
