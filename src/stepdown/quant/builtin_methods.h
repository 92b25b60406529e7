#pragma once
// The calibrated methods compiled into the library. Each method's file defines a factory
// (QuantMethod gptq_method(), ...) and adds one line to builtin_methods.cpp, so that a
// static link keeps it.
#include <vector>

#include "stepdown/quant/method.h"

namespace stepdown::quant {

std::vector<QuantMethod> builtin_quant_methods();

}  // namespace stepdown::quant
