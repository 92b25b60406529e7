#include "stepdown/eval/pass_at_k.h"

#include "stepdown/core/error.h"
#include "stepdown/eval/suite.h"

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

std::string extract_code(std::string_view output) {
  for (const std::string_view fence : {"```", "~~~"}) {
    const size_t open = output.find(fence);
    if (open == std::string_view::npos) continue;
    // The info string (a language name) runs to the end of the opening line.
    const size_t body = output.find('\n', open);
    if (body == std::string_view::npos) continue;
    const size_t close = output.find(fence, body + 1);
    const size_t end = close == std::string_view::npos ? output.size() : close;
    return std::string(output.substr(body + 1, end - body - 1));
  }
  return std::string(output);
}

namespace {

std::string language_of(const SuiteItem& item) {
  if (item.metadata.is_object() && item.metadata.contains("language")) {
    const nlohmann::json& language = item.metadata.at("language");
    if (!language.is_string()) {
      raise<InvalidArgument>("field 'metadata.language': expected a string such as \"python\", found {}",
                             language.dump());
    }
    return language.get<std::string>();
  }
  return "python";
}

class PassAtKMetric final : public Metric {
 public:
  explicit PassAtKMetric(const SandboxLimits& limits) : limits_(limits) {}

  std::string_view name() const override { return "pass_at_k"; }
  bool needs_reference() const override { return false; }

  void check_item(const SuiteItem& item) const override {
    if (item.tests.empty()) {
      raise<InvalidArgument>("field 'tests': missing; the pass_at_k metric needs at least one test program");
    }
    const std::string language = language_of(item);
    if (language != "python") {
      raise<InvalidArgument>("field 'metadata.language': unsupported language \"{}\"; supported: python", language);
    }
  }

  double score(std::string_view prediction, const SuiteItem& item) const override {
    check_item(item);
    CodeTestRequest request;
    request.language = language_of(item);
    request.code = extract_code(prediction);
    request.limits = limits_;
    for (size_t i = 0; i < item.tests.size(); ++i) {
      request.tests = item.tests[i];
      const SandboxResult run = run_code_tests(request);
      if (run.status == SandboxStatus::kError) {
        raise("item {}: test {}: the sandbox failed, not the code: {}", item.id, i, run.message);
      }
      if (run.status != SandboxStatus::kPass) return 0.0;
    }
    return 1.0;
  }

 private:
  SandboxLimits limits_;
};

}  // namespace

void add_code_metrics(MetricRegistry& registry, const SandboxLimits& limits) {
  registry.add("pass_at_k", [limits](const MetricOptions&) { return std::make_unique<PassAtKMetric>(limits); });
}

}  // namespace stepdown::eval
