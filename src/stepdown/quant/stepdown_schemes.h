#pragma once
// Registration of stepdown's own formats and schemes (int8, int8-g128, int4-g32, int4-g64,
// int4-g128, int4-g32-asym, int4-g128-asym, fp8) in the quantizer's registries.
//
// NOTE: nothing calls this yet. The GGUF writer would store these formats under their
// stepdown ids (1000+), which GGUF readers reject, so they need a container of their own
// (namespaced GGUF metadata or safetensors) before `stepdown quantize` can offer them.
namespace stepdown::quant {

// Adds the formats and schemes; a second call throws InvalidArgument (name taken).
void register_stepdown_quant_schemes();

}  // namespace stepdown::quant
