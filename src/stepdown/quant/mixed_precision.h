#pragma once
// Mixed precision: the quantization method "mixed", which gives each unit of weights (a
// transformer block's linears, or one matrix; see sensitivity.h) one of several formats so
// that the file meets a size target with the least total sensitivity.
//
// Method parameters (--method-param KEY=VALUE):
//   target_bpw=F    the manifest's bits_per_weight (8 * tensor_bytes / params over every
//                   tensor of the file, 1-D F32 tensors included) must not exceed F
//   budget_mb=F     or: the manifest's tensor_bytes must not exceed F * 1e6
//   low=FMT         the cheapest format (default: the scheme's format)
//   high=FMT        the reference format every other unit stays at while one unit is
//                   measured (default q8_0)
//   levels=A,B,...  instead of low/high: two or more formats; the one with the most
//                   bytes is the reference
//   unit=block      or matrix: what one sensitivity measurement and one choice covers
//   base_method=M   a registered method (gptq, awq, ...) that quantizes the tensors in the
//                   chosen formats, instead of RTN; base.KEY=VALUE passes KEY=VALUE to it.
//                   Sensitivities are still measured with RTN.
// The calibration windows are --calib-samples windows of --calib-seq-len tokens from
// --calib, drawn with --seed by load_calibration_data (calibration_data.h), as GPTQ's are.
//
// The allocation is a multiple-choice knapsack, solved exactly by allocate_levels.
#include <cstdint>
#include <vector>

#include "stepdown/quant/method.h"

namespace stepdown::quant {

// One unit's options: bytes[j] and cost[j] (its sensitivity) at level j.
struct UnitChoices {
  std::vector<uint64_t> bytes;
  std::vector<double> cost;
};

struct Allocation {
  std::vector<size_t> level;  // chosen level per unit
  uint64_t bytes = 0;         // sum of the chosen bytes
  double cost = 0.0;          // sum of the chosen costs
};

// Chooses one level per unit so that the chosen bytes sum to at most `budget` and the
// chosen costs sum to the minimum. Exact, by dynamic programming over byte totals:
//
//   Let m_u be unit u's smallest byte count, e_uj = bytes_uj - m_u its extra bytes at
//   level j, and g the greatest common divisor of every nonzero e_uj. Every assignment's
//   extra total is a multiple of g, so "sum e <= budget - sum m" is true exactly when
//   "sum e/g <= C" with C = floor((budget - sum m) / g). best[u][c], the least cost of
//   units 0..u-1 with scaled extra total at most c, follows
//   best[u+1][c] = min over j with e_uj/g <= c of best[u][c - e_uj/g] + cost_uj, and
//   best[U][C] is the optimum. Every level combination is covered, so no other choice
//   meets the budget with less cost.
//
// Cost is O(U * levels * C) time and O(U * C) bytes. Transformer blocks share shapes, so
// g is large and C small. SmolLM2-135M at block granularity with q4_0 and q8_0 has g =
// 1,769,472 bytes (one block's extra) and C at most 38 (30 blocks, and token_embd counts
// 8 steps). Throws InvalidArgument when even the cheapest level of every unit exceeds
// the budget (naming the least reachable total), and Unsupported when U * (C + 1) is
// above 2^28 table cells.
Allocation allocate_levels(const std::vector<UnitChoices>& units, uint64_t budget);

// The "mixed" method for the registry (see builtin_methods.cpp).
QuantMethod mixed_method();

}  // namespace stepdown::quant
