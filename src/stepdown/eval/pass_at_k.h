#pragma once
// pass@k: the probability that at least one of k samples, drawn without replacement
// from n generated solutions of which c pass the tests, passes.

namespace stepdown::eval {

// Returns the unbiased estimator 1 - C(n - c, k) / C(n, k), computed as
// 1 - prod_{i = n - c + 1}^{n} (1 - k / i), which never forms a binomial coefficient and
// so neither overflows nor loses precision for large n. Returns 0 when c = 0 and 1 when
// n - c < k (every draw of k must include a passing solution). Raises InvalidArgument
// unless 0 <= c <= n and 1 <= k <= n.
double pass_at_k(int n, int c, int k);

}  // namespace stepdown::eval
