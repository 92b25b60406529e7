#include "stepdown/quant/stepdown_schemes.h"

#include <fmt/format.h>

#include "stepdown/quant/rtn_int.h"

namespace stepdown::quant {

namespace {

struct FormatEntry {
  DType dtype;
  const char* fallback;  // registered format for rows the group does not divide; "" when any row fits
  const char* scheme;    // scheme name
};

constexpr FormatEntry kEntries[] = {
    {DType::INT8, "", "int8"},
    {DType::INT8_W8A8, "", "w8a8"},
    {DType::INT8_G128, "int8", "int8-g128"},
    {DType::INT4_G32, "int8", "int4-g32"},
    {DType::INT4_G64, "int4-g32", "int4-g64"},
    {DType::INT4_G128, "int4-g64", "int4-g128"},
    {DType::INT4_G32_ASYM, "int8", "int4-g32-asym"},
    {DType::INT4_G64_ASYM, "int4-g32-asym", "int4-g64-asym"},
    {DType::INT4_G128_ASYM, "int4-g64-asym", "int4-g128-asym"},
    {DType::INT3_G64, "int4-g32", "int3-g64"},
    {DType::INT3_G128, "int3-g64", "int3-g128"},
    {DType::INT3_G64_ASYM, "int4-g32-asym", "int3-g64-asym"},
    {DType::INT3_G128_ASYM, "int3-g64-asym", "int3-g128-asym"},
    {DType::FP8_E4M3, "", "fp8"},
    // RTN fills no outlier columns; the "outlier" method chooses them from calibration.
    {DType::INT8_OUTLIER, "", "int8-outlier"},
    // RTN has no activation scale; the "fp8" method calibrates one per linear.
    {DType::FP8_E4M3_A8, "", "fp8-a8"},
};

// Bits per weight of a row of `cols` values, row header included.
double bits_per_weight(DType dtype, int64_t cols) {
  return 8.0 * static_cast<double>(dtype_bytes(dtype, cols)) / static_cast<double>(cols);
}

std::string describe(DType dtype) {
  const DTypeInfo& info = dtype_info(dtype);
  if (info.row_header_bytes > 0) {
    return fmt::format("2-D weights in {} ({:.4g} bpw plus a {}-byte scale per row; {:.4g} bpw for rows of 576)",
                       info.name, dtype_bits_per_weight(dtype), info.row_header_bytes, bits_per_weight(dtype, 576));
  }
  return fmt::format("2-D weights in {} ({:.4g} bpw)", info.name, dtype_bits_per_weight(dtype));
}

}  // namespace

std::vector<QuantFormat> stepdown_quant_formats() {
  std::vector<QuantFormat> formats;
  for (const FormatEntry& entry : kEntries) {
    const DTypeInfo& info = dtype_info(entry.dtype);
    const DType dtype = entry.dtype;
    formats.push_back(QuantFormat{
        std::string(stepdown_format_name(dtype)), dtype, info.block_elems, info.block_bytes,
        [dtype](const float* src, std::byte* dst, int64_t n) { quantize_row_stepdown(dtype, src, dst, n); },
        entry.fallback});
  }
  return formats;
}

std::vector<Scheme> stepdown_quant_schemes() {
  std::vector<Scheme> schemes;
  for (const FormatEntry& entry : kEntries) {
    // general.file_type 0 (ALL_F32) is a placeholder: llama.cpp's file types have no entry
    // for these formats.
    schemes.push_back(Scheme{entry.scheme, std::string(stepdown_format_name(entry.dtype)), 0, describe(entry.dtype)});
  }
  return schemes;
}

}  // namespace stepdown::quant
