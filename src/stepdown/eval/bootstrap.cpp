#include "stepdown/eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "stepdown/core/error.h"

namespace stepdown::eval {

double quantile_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) raise<InvalidArgument>("quantile of an empty sample");
  const double position = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

uint64_t derive_seed(uint64_t seed, std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64-bit offset basis
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;  // FNV-1a 64-bit prime
  }
  // splitmix64 finaliser spreads the combination over all 64 bits.
  uint64_t z = seed ^ hash;
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

// Sums in input order, so resamples that draw the same values in the same order give
// bit-identical means (a constant difference yields a degenerate interval exactly).
double mean_of(std::span<const double> values) {
  double sum = 0.0;
  for (const double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

}  // namespace

MeanInterval paired_bootstrap(std::span<const double> differences, const BootstrapOptions& options) {
  if (differences.empty()) raise<InvalidArgument>("paired bootstrap needs at least one paired item, found none");
  if (options.samples < 1) raise<InvalidArgument>("bootstrap samples must be >= 1, found {}", options.samples);
  if (!(options.confidence > 0.0 && options.confidence < 1.0)) {
    raise<InvalidArgument>("confidence must be in (0, 1), found {}", options.confidence);
  }

  MeanInterval out;
  out.mean = mean_of(differences);

  std::mt19937_64 random(options.seed);
  const uint64_t n = differences.size();
  std::vector<double> resample(n);
  std::vector<double> means(static_cast<size_t>(options.samples));
  for (double& mean : means) {
    for (double& value : resample) value = differences[uniform_index(random, n)];
    mean = mean_of(resample);
  }
  std::sort(means.begin(), means.end());

  const double alpha = 1.0 - options.confidence;
  out.lower = quantile_sorted(means, alpha / 2.0);
  out.upper = quantile_sorted(means, 1.0 - alpha / 2.0);
  return out;
}

}  // namespace stepdown::eval
