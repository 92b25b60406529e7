#pragma once
// stepdown's own formats and schemes, part of the quantizer's registries from the start
// (format.cpp and scheme.cpp add these lists when they create their registries). A scheme
// has the name of its format (int8, int8-g128, int4-g32, int4-g64, int4-g128,
// int4-g32-asym, int4-g64-asym, int4-g128-asym, int3-g64, int3-g128, int3-g64-asym,
// int3-g128-asym, fp8), except w8a8, whose format is int8-w8a8. Files with these formats
// use the GGUF container of io/gguf_container.h, which llama.cpp does not run.
#include <vector>

#include "stepdown/quant/format.h"
#include "stepdown/quant/scheme.h"

namespace stepdown::quant {

// One QuantFormat per stepdown format, with its fallback for rows that are not a whole
// number of groups: a smaller group of the same kind, then int4-g32 (or int4-g32-asym) for
// INT3, then per-row int8, which fits any row.
std::vector<QuantFormat> stepdown_quant_formats();

// One Scheme per stepdown format.
std::vector<Scheme> stepdown_quant_schemes();

}  // namespace stepdown::quant
