#pragma once
// Registration of stepdown's own formats and schemes (int8, int8-g128, int4-g32, int4-g64,
// int4-g128, int4-g32-asym, int4-g128-asym, fp8) in the quantizer's registries.
//
// NOTE: nothing calls this yet, because two pieces are missing. quantize_tensor sizes a row
// as cols / block_elems * block_bytes, which leaves out the 4-byte row header of int8,
// int8-w8a8 and fp8, so it must use dtype_bytes(dtype, cols). The GGUF writer would also
// store these formats under their stepdown ids (1000+), which GGUF readers reject, so they
// need a container of their own first.
namespace stepdown::quant {

// Adds the formats and schemes; a second call throws InvalidArgument (name taken).
void register_stepdown_quant_schemes();

}  // namespace stepdown::quant
