#pragma once
// pass@k: the probability that at least one of k samples, drawn without replacement
// from n generated solutions of which c pass the tests, passes.
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/eval/metrics.h"
#include "stepdown/eval/sandbox.h"

namespace stepdown::eval {

// Returns the unbiased estimator 1 - C(n - c, k) / C(n, k), computed as
// 1 - prod_{i = n - c + 1}^{n} (1 - k / i), which never forms a binomial coefficient and
// so neither overflows nor loses precision for large n. Returns 0 when c = 0 and 1 when
// n - c < k (every draw of k must include a passing solution). Raises InvalidArgument
// unless 0 <= c <= n and 1 <= k <= n.
double pass_at_k(int n, int c, int k);

struct CodeSamplesScore {
  int n = 0;  // samples run
  int c = 0;  // samples whose tests passed
  double pass_at_k = 0.0;
  std::vector<SandboxResult> runs;  // one per sample, in input order
};

// Runs each of `samples` (n solutions generated for one item) with `item.tests` through
// run_code_tests, using `item`'s language and limits (its `code` is ignored), and returns
// pass@k. A timeout counts as a failed sample. A sandbox error (kError) raises Error
// naming the sample, because the machine failed rather than the model. Samples run one
// after another.
CodeSamplesScore score_code_samples(const CodeTestRequest& item, const std::vector<std::string>& samples, int k);

// Returns the code in a model output: the body of the first Markdown code fence
// (```python, ``` or ~~~), or the whole text when there is none.
std::string extract_code(std::string_view output);

// Adds the metric "pass_at_k" to `registry`. For one output per item it scores 1 when the
// extracted code passes every program in the item's `tests`, each run separately with the
// code in the sandbox under `limits`, and 0 otherwise, so its mean over items is pass@1.
// The language is the item's metadata field "language" (default "python"). check_item
// rejects an item without tests or with an unsupported language. A sandbox error raises
// Error instead of scoring 0.
void add_code_metrics(MetricRegistry& registry, const SandboxLimits& limits = {});

}  // namespace stepdown::eval
