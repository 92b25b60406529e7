#include "stepdown/eval/pass_at_k.h"

#include "stepdown/core/error.h"

namespace stepdown::eval {

double pass_at_k(int n, int c, int k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    raise<InvalidArgument>("pass@k needs 0 <= c <= n and 1 <= k <= n, found n={}, c={}, k={}", n, c, k);
  }
  if (c == 0) return 0.0;
  if (n - c < k) return 1.0;
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i): each factor is in (0, 1).
  double all_fail = 1.0;
  for (int i = n - c + 1; i <= n; ++i) all_fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - all_fail;
}

}  // namespace stepdown::eval
