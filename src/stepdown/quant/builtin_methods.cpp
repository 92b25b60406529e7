#include "stepdown/quant/builtin_methods.h"

#include "stepdown/quant/gptq_method.h"

namespace stepdown::quant {

std::vector<QuantMethod> builtin_quant_methods() {
  std::vector<QuantMethod> methods;
  // One push_back per calibrated method, in the order `--help` lists them.
  methods.push_back(gptq_method());
  return methods;
}

}  // namespace stepdown::quant
