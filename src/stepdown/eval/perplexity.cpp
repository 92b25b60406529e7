#include "stepdown/eval/perplexity.h"

#include <algorithm>
#include <cmath>

#include "stepdown/core/error.h"
#include "stepdown/model/kv_cache.h"

namespace stepdown::eval {

namespace {

// Log-softmax of one row of logits (V), in double: lse = max + log(sum exp(l - max)).
double log_sum_exp(const float* logits, int64_t n) {
  const float max = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return max + std::log(sum);
}

int64_t argmax_row(const float* values, int64_t n) {
  return std::max_element(values, values + n) - values;
}

// Mean of values whose sum and sum of squares are given, with the standard error of the
// mean: sqrt((E[x^2] - E[x]^2) / (n - 1)).
std::pair<double, double> mean_and_stderr(double sum, double sum2, int64_t n) {
  const double mean = sum / static_cast<double>(n);
  const double variance = sum2 / static_cast<double>(n) - mean * mean;
  const double stderr_mean = (n > 1 && variance > 0) ? std::sqrt(variance / static_cast<double>(n - 1)) : 0.0;
  return {mean, stderr_mean};
}

// Runs the chunks of `tokens` through models and hands each chunk's logits to `score`.
class ChunkRunner {
 public:
  ChunkRunner(std::span<const text::TokenId> tokens, std::optional<text::TokenId> bos,
              const PerplexityOptions& options)
      : tokens_(tokens), bos_(bos), options_(options) {
    if (options.ctx < 4) raise<InvalidArgument>("--ctx is {}; expected at least 4", options.ctx);
    if (static_cast<int64_t>(tokens.size()) < 2 * options.ctx) {
      raise<InvalidArgument>("the text has {} tokens; perplexity with a context of {} needs at least {}",
                             tokens.size(), options.ctx, 2 * options.ctx);
    }
    chunks_ = static_cast<int64_t>(tokens.size()) / options.ctx;
  }

  int64_t chunks() const { return chunks_; }
  // The first scored logit row of a chunk, and how many rows are scored.
  int64_t first() const { return options_.ctx / 2; }
  int64_t scored_per_chunk() const { return options_.ctx - 1 - first(); }

  // The tokens of chunk `c` as fed to the model: BOS in place of the first one.
  std::vector<text::TokenId> chunk_tokens(int64_t c) const {
    const auto begin = tokens_.begin() + c * options_.ctx;
    std::vector<text::TokenId> chunk(begin, begin + options_.ctx);
    if (bos_) chunk[0] = *bos_;
    return chunk;
  }
  // The token that the scored row r (0-based from first()) of chunk c should predict.
  text::TokenId target(int64_t c, int64_t r) const {
    return tokens_[static_cast<size_t>(c * options_.ctx + first() + r + 1)];
  }

  // logits (scored_per_chunk, V): the rows of `chunk` at positions first() .. ctx-2.
  void logits(model::Transformer& model, const std::vector<text::TokenId>& chunk, model::Activations& out) {
    const int64_t ctx = options_.ctx;
    if (ctx > model.config().context_length) {
      raise<InvalidArgument>("--ctx {} exceeds the model's context length {}", ctx, model.config().context_length);
    }
    const int64_t vocab = model.config().vocab_size;
    const int64_t batch = options_.batch > 0 ? std::min(options_.batch, ctx) : ctx;
    model::KVCache cache(model.config(), ctx);
    out.resize(scored_per_chunk(), vocab);
    for (int64_t begin = 0; begin < ctx; begin += batch) {
      const int64_t end = std::min(ctx, begin + batch);
      if (end <= first()) {
        // No scored rows in this piece: only its keys and values are needed, but forward()
        // computes the last row's logits anyway; they are discarded.
        model.forward({chunk.data() + begin, static_cast<size_t>(end - begin)}, cache, piece_);
        continue;
      }
      model.forward({chunk.data() + begin, static_cast<size_t>(end - begin)}, cache, piece_, /*all_logits=*/true);
      for (int64_t p = std::max(begin, first()); p < std::min(end, ctx - 1); ++p) {
        std::copy(piece_.row(p - begin), piece_.row(p - begin) + vocab, out.row(p - first()));
      }
    }
  }

 private:
  std::span<const text::TokenId> tokens_;
  std::optional<text::TokenId> bos_;
  PerplexityOptions options_;
  int64_t chunks_ = 0;
  model::Activations piece_;
};

// NLL of each scored row of one chunk, computed over rows in parallel.
void row_nll(model::Transformer& model, const ChunkRunner& runner, int64_t c, const model::Activations& logits,
             std::vector<double>& nll) {
  nll.assign(static_cast<size_t>(logits.rows), 0.0);
  model.pool().parallel_for(logits.rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = logits.row(r);
      nll[static_cast<size_t>(r)] = log_sum_exp(row, logits.cols) - row[runner.target(c, r)];
    }
  });
}

PerplexityResult finish_perplexity(int64_t text_tokens, int64_t chunks, double sum, double sum2, int64_t n) {
  PerplexityResult result;
  result.text_tokens = text_tokens;
  result.chunks = chunks;
  result.scored_tokens = n;
  const auto [mean, stderr_mean] = mean_and_stderr(sum, sum2, n);
  result.mean_nll = mean;
  result.ppl = std::exp(mean);
  result.ppl_stderr = result.ppl * stderr_mean;
  return result;
}

}  // namespace

bool adds_bos(const text::Tokenizer& tokenizer) {
  const std::optional<text::TokenId> bos = tokenizer.bos_id();
  if (!bos) return false;
  const std::vector<text::TokenId> probe = tokenizer.encode("a", /*add_special=*/true);
  return !probe.empty() && probe.front() == *bos;
}

PerplexityResult perplexity(model::Transformer& model, std::span<const text::TokenId> tokens,
                            std::optional<text::TokenId> bos, const PerplexityOptions& options,
                            const ChunkCallback& on_chunk) {
  ChunkRunner runner(tokens, bos, options);
  model::Activations logits;
  std::vector<double> nll;
  double sum = 0.0, sum2 = 0.0;
  for (int64_t c = 0; c < runner.chunks(); ++c) {
    runner.logits(model, runner.chunk_tokens(c), logits);
    row_nll(model, runner, c, logits, nll);
    for (const double v : nll) {
      sum += v;
      sum2 += v * v;
    }
    if (on_chunk) on_chunk(c + 1, runner.chunks());
  }
  return finish_perplexity(static_cast<int64_t>(tokens.size()), runner.chunks(), sum, sum2,
                           runner.chunks() * runner.scored_per_chunk());
}

KlDivergenceResult kl_divergence(model::Transformer& base, model::Transformer& candidate,
                                 std::span<const text::TokenId> tokens, std::optional<text::TokenId> bos,
                                 const PerplexityOptions& options, PerplexityResult& result,
                                 const ChunkCallback& on_chunk) {
  if (base.config().vocab_size != candidate.config().vocab_size) {
    raise<InvalidArgument>("the base model has a vocabulary of {} tokens and the candidate {}; KL divergence "
                           "needs the same vocabulary",
                           base.config().vocab_size, candidate.config().vocab_size);
  }
  ChunkRunner runner(tokens, bos, options);
  const int64_t vocab = base.config().vocab_size;
  model::Activations base_logits, logits;
  std::vector<double> nll, base_nll;
  const size_t n_rows = static_cast<size_t>(runner.scored_per_chunk());
  std::vector<double> kld_row(n_rows);
  std::vector<char> same_top_row(n_rows);
  std::vector<double> kld_all;
  double sum = 0.0, sum2 = 0.0, base_sum = 0.0, base_sum2 = 0.0, kld_sum = 0.0, kld_sum2 = 0.0;
  int64_t same_top = 0;
  for (int64_t c = 0; c < runner.chunks(); ++c) {
    const std::vector<text::TokenId> chunk = runner.chunk_tokens(c);
    runner.logits(base, chunk, base_logits);
    runner.logits(candidate, chunk, logits);
    row_nll(base, runner, c, base_logits, base_nll);
    row_nll(candidate, runner, c, logits, nll);

    // KL(P || Q) = sum over v of p(v) (log p(v) - log q(v)), P the base and Q the candidate.
    candidate.pool().parallel_for(logits.rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* p_logits = base_logits.row(r);
        const float* q_logits = logits.row(r);
        const double p_lse = log_sum_exp(p_logits, vocab);
        const double q_lse = log_sum_exp(q_logits, vocab);
        double kld = 0.0;
        for (int64_t v = 0; v < vocab; ++v) {
          const double log_p = p_logits[v] - p_lse;
          const double log_q = q_logits[v] - q_lse;
          kld += std::exp(log_p) * (log_p - log_q);
        }
        kld_row[static_cast<size_t>(r)] = kld;
        same_top_row[static_cast<size_t>(r)] = argmax_row(p_logits, vocab) == argmax_row(q_logits, vocab);
      }
    });

    for (size_t r = 0; r < n_rows; ++r) {
      sum += nll[r];
      sum2 += nll[r] * nll[r];
      base_sum += base_nll[r];
      base_sum2 += base_nll[r] * base_nll[r];
      kld_sum += kld_row[r];
      kld_sum2 += kld_row[r] * kld_row[r];
      same_top += same_top_row[r];
      kld_all.push_back(kld_row[r]);
    }
    if (on_chunk) on_chunk(c + 1, runner.chunks());
  }

  const int64_t n = runner.chunks() * runner.scored_per_chunk();
  const int64_t text_tokens = static_cast<int64_t>(tokens.size());
  result = finish_perplexity(text_tokens, runner.chunks(), sum, sum2, n);
  KlDivergenceResult kl;
  kl.base = finish_perplexity(text_tokens, runner.chunks(), base_sum, base_sum2, n);
  std::tie(kl.mean, kl.mean_stderr) = mean_and_stderr(kld_sum, kld_sum2, n);
  std::sort(kld_all.begin(), kld_all.end());
  // Linear interpolation between the two nearest ranks of fraction * (n - 1).
  const double rank = 0.99 * static_cast<double>(kld_all.size() - 1);
  const size_t low = static_cast<size_t>(rank);
  const size_t high = std::min(low + 1, kld_all.size() - 1);
  kl.p99 = (1.0 - (rank - low)) * kld_all[low] + (rank - low) * kld_all[high];
  kl.max = kld_all.back();
  kl.same_top_rate = static_cast<double>(same_top) / static_cast<double>(n);
  return kl;
}

}  // namespace stepdown::eval
