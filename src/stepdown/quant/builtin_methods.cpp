#include "stepdown/quant/builtin_methods.h"

#include "stepdown/quant/awq.h"
#include "stepdown/quant/fp8_calibrated.h"
#include "stepdown/quant/gptq_method.h"
#include "stepdown/quant/mixed_precision.h"
#include "stepdown/quant/outlier_split.h"
#include "stepdown/quant/smoothquant.h"

namespace stepdown::quant {

std::vector<QuantMethod> builtin_quant_methods() {
  std::vector<QuantMethod> methods;
  // One push_back per calibrated method, in the order `--help` lists them.
  methods.push_back(gptq_method());
  methods.push_back(awq_method());
  methods.push_back(smoothquant_method());
  methods.push_back(fp8_method());
  methods.push_back(outlier_method());
  methods.push_back(mixed_method());
  return methods;
}

}  // namespace stepdown::quant
