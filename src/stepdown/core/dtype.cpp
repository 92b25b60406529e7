#include "stepdown/core/dtype.h"

#include <array>
#include <cctype>

#include "stepdown/core/error.h"

namespace stepdown {

namespace {

// Block sizes and byte counts follow ggml's type traits: QK8_0 = QK4_0 = QK5_0 = 32,
// QK_K = 256 with the super-block structs block_q4_K (144 B), block_q5_K (176 B) and
// block_q6_K (210 B).
constexpr std::array kInfos = {
    DTypeInfo{DType::F32, "F32", 1, 4},      DTypeInfo{DType::F16, "F16", 1, 2},
    DTypeInfo{DType::BF16, "BF16", 1, 2},    DTypeInfo{DType::Q8_0, "Q8_0", 32, 34},
    DTypeInfo{DType::Q4_0, "Q4_0", 32, 18},  DTypeInfo{DType::Q4_1, "Q4_1", 32, 20},
    DTypeInfo{DType::Q5_0, "Q5_0", 32, 22},  DTypeInfo{DType::Q5_1, "Q5_1", 32, 24},
    DTypeInfo{DType::Q4_K, "Q4_K", 256, 144}, DTypeInfo{DType::Q5_K, "Q5_K", 256, 176},
    DTypeInfo{DType::Q6_K, "Q6_K", 256, 210},
    // stepdown's own formats. Group scales are f16 as in ggml's blocks; per-row scales
    // are f32 in the row header.
    DTypeInfo{DType::INT8, "INT8", 1, 1, 4},
    DTypeInfo{DType::INT8_G128, "INT8_G128", 128, 130},
    DTypeInfo{DType::INT4_G32, "INT4_G32", 32, 18},
    DTypeInfo{DType::INT4_G64, "INT4_G64", 64, 34},
    DTypeInfo{DType::INT4_G128, "INT4_G128", 128, 66},
    DTypeInfo{DType::INT4_G32_ASYM, "INT4_G32_ASYM", 32, 20},
    DTypeInfo{DType::INT4_G64_ASYM, "INT4_G64_ASYM", 64, 36},
    DTypeInfo{DType::INT4_G128_ASYM, "INT4_G128_ASYM", 128, 68},
    DTypeInfo{DType::FP8_E4M3, "FP8_E4M3", 1, 1, 4},
    DTypeInfo{DType::INT8_W8A8, "INT8_W8A8", 1, 1, 4},
    DTypeInfo{DType::INT3_G64, "INT3_G64", 64, 26},
    DTypeInfo{DType::INT3_G128, "INT3_G128", 128, 50},
    DTypeInfo{DType::INT3_G64_ASYM, "INT3_G64_ASYM", 64, 28},
    DTypeInfo{DType::INT3_G128_ASYM, "INT3_G128_ASYM", 128, 52},
    // f32 scale, f32 value[8], u16 column[8] (kernels/int8_outlier.h).
    DTypeInfo{DType::INT8_OUTLIER, "INT8_OUTLIER", 1, 1, 52},
    // f32 activation scale, f32 weight scale (kernels/fp8_static_act.h).
    DTypeInfo{DType::FP8_E4M3_A8, "FP8_E4M3_A8", 1, 1, 8},
};

struct StepdownName {
  DType dtype;
  std::string_view name;
};

constexpr std::array kStepdownNames = {
    StepdownName{DType::INT8, "int8"},
    StepdownName{DType::INT8_G128, "int8-g128"},
    StepdownName{DType::INT4_G32, "int4-g32"},
    StepdownName{DType::INT4_G64, "int4-g64"},
    StepdownName{DType::INT4_G128, "int4-g128"},
    StepdownName{DType::INT4_G32_ASYM, "int4-g32-asym"},
    StepdownName{DType::INT4_G64_ASYM, "int4-g64-asym"},
    StepdownName{DType::INT4_G128_ASYM, "int4-g128-asym"},
    StepdownName{DType::FP8_E4M3, "fp8"},
    StepdownName{DType::INT8_W8A8, "int8-w8a8"},
    StepdownName{DType::INT3_G64, "int3-g64"},
    StepdownName{DType::INT3_G128, "int3-g128"},
    StepdownName{DType::INT3_G64_ASYM, "int3-g64-asym"},
    StepdownName{DType::INT3_G128_ASYM, "int3-g128-asym"},
    StepdownName{DType::INT8_OUTLIER, "int8-outlier"},
    StepdownName{DType::FP8_E4M3_A8, "fp8-a8"},
};

constexpr std::array kStepdownFormats = [] {
  std::array<DType, kStepdownNames.size()> formats{};
  for (size_t i = 0; i < kStepdownNames.size(); ++i) formats[i] = kStepdownNames[i].dtype;
  return formats;
}();

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<DType> dtype_from_ggml_id(uint32_t id) {
  if (id >= kFirstStepdownId) return std::nullopt;
  for (const DTypeInfo& info : kInfos) {
    if (static_cast<uint32_t>(info.dtype) == id) return info.dtype;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeInfo& info : kInfos) {
    if (equals_ignore_case(info.name, name)) return info.dtype;
  }
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType dtype) {
  for (const DTypeInfo& info : kInfos) {
    if (info.dtype == dtype) return info;
  }
  raise<InvalidArgument>("dtype_info: unknown DType value {}", static_cast<uint32_t>(dtype));
}

std::string_view stepdown_format_name(DType dtype) {
  for (const StepdownName& entry : kStepdownNames) {
    if (entry.dtype == dtype) return entry.name;
  }
  raise<InvalidArgument>("stepdown_format_name: {} is not one of stepdown's own formats", dtype_name(dtype));
}

std::optional<DType> dtype_from_stepdown_format_name(std::string_view name) {
  for (const StepdownName& entry : kStepdownNames) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

std::span<const DType> stepdown_formats() { return kStepdownFormats; }

size_t dtype_bytes(DType dtype, int64_t elems) {
  const DTypeInfo& info = dtype_info(dtype);
  if (elems < 0 || elems % info.block_elems != 0) {
    raise<InvalidArgument>("{} stores values in blocks of {}, but {} values were given", info.name,
                           info.block_elems, elems);
  }
  return static_cast<size_t>(info.row_header_bytes) +
         static_cast<size_t>(elems / info.block_elems) * static_cast<size_t>(info.block_bytes);
}

double dtype_bits_per_weight(DType dtype) {
  const DTypeInfo& info = dtype_info(dtype);
  return 8.0 * static_cast<double>(info.block_bytes) / static_cast<double>(info.block_elems);
}

}  // namespace stepdown
