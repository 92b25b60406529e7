#pragma once
// The "gptq" entry of the calibrated method registry (see method.h and gptq.h).
//
// Parameters (--method-param): damp (default 0.01, at most kMaxDamp), block_size (128),
// act_order (0 or 1). Every block linear whose planned format GPTQ can write gets GPTQ's
// bytes. Linears planned as f32, f16 or bf16 are left to the writer, and any other format
// (k-quants, fp8) is an error. The embedding and output matrices keep RTN. The manifest
// records the parameters, the calibration set (hashes, samples, seq_len, seed), the group
// size per format, and per tensor the damp used, dead input columns and output error.
#include "stepdown/quant/method.h"

namespace stepdown::quant {

QuantMethod gptq_method();

}  // namespace stepdown::quant
