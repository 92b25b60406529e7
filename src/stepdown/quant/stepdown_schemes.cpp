#include "stepdown/quant/stepdown_schemes.h"

#include <fmt/format.h>

#include "stepdown/quant/format.h"
#include "stepdown/quant/rtn_int.h"
#include "stepdown/quant/scheme.h"

namespace stepdown::quant {

namespace {

struct StepdownScheme {
  const char* name;  // scheme and format name
  DType dtype;
  bool is_scheme;  // int4-g64-asym and int8-w8a8 are formats only
};

constexpr StepdownScheme kSchemes[] = {
    {"int8", DType::INT8, true},
    {"int8-g128", DType::INT8_G128, true},
    {"int4-g32", DType::INT4_G32, true},
    {"int4-g64", DType::INT4_G64, true},
    {"int4-g128", DType::INT4_G128, true},
    {"int4-g32-asym", DType::INT4_G32_ASYM, true},
    {"int4-g64-asym", DType::INT4_G64_ASYM, false},
    {"int4-g128-asym", DType::INT4_G128_ASYM, true},
    {"fp8", DType::FP8_E4M3, true},
    {"int8-w8a8", DType::INT8_W8A8, false},
};

}  // namespace

void register_stepdown_quant_schemes() {
  for (const StepdownScheme& entry : kSchemes) {
    const DTypeInfo& info = dtype_info(entry.dtype);
    const DType dtype = entry.dtype;
    register_quant_format(QuantFormat{
        entry.name, dtype, info.block_elems, info.block_bytes,
        [dtype](const float* src, std::byte* dst, int64_t n) { quantize_row_stepdown(dtype, src, dst, n); }});
    if (!entry.is_scheme) continue;
    // general.file_type 0 (ALL_F32) is a placeholder: GGUF has no file type for these.
    register_scheme(Scheme{entry.name, entry.name, 0,
                           fmt::format("2-D weights in {} ({:.4g} bpw before row headers)", info.name,
                                       dtype_bits_per_weight(dtype))});
  }
}

}  // namespace stepdown::quant
