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

CodeSamplesScore score_code_samples(const CodeTestRequest& item, const std::vector<std::string>& samples, int k) {
  if (samples.empty()) raise<InvalidArgument>("pass@k needs at least one code sample, found none");
  CodeSamplesScore score;
  score.n = static_cast<int>(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    CodeTestRequest request = item;
    request.code = samples[i];
    SandboxResult run = run_code_tests(request);
    if (run.status == SandboxStatus::kError) {
      raise("code sample {} of {}: the sandbox failed, not the code: {}", i, samples.size(), run.message);
    }
    score.c += run.status == SandboxStatus::kPass;
    score.runs.push_back(std::move(run));
  }
  score.pass_at_k = pass_at_k(score.n, score.c, k);
  return score;
}

}  // namespace stepdown::eval
