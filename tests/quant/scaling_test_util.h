#pragma once
// Helpers shared by the AWQ and SmoothQuant tests: seeded random matrices, a naive
// quantized product, short story texts for calibration and scoring on stories260K, and
// the mean KLD printed by `stepdown ppl --base --json`.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/kernels/matmul.h"
#include "stepdown/model/activations.h"
#include "stepdown/quant/channel_scaling.h"
#include "test_paths.h"

namespace stepdown::test {

inline quant::FloatMatrix random_matrix(int64_t rows, int64_t cols, uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  quant::FloatMatrix w{rows, cols, std::vector<float>(static_cast<size_t>(rows * cols))};
  for (float& v : w.values) v = normal(rng);
  return w;
}

inline model::Activations random_activations(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  model::Activations x;
  x.resize(rows, cols);
  for (float& v : x.data) v = normal(rng);
  return x;
}

// sum over t, r of (X W^T - (X / s) deq(Q(W diag(s)))^T)^2 / (T * rows), in double with
// plain loops: the independent check of GroupOutputError for weight-only formats.
inline double naive_output_error(const quant::FloatMatrix& w, const model::Activations& x,
                                 const std::vector<float>& scales, DType dtype) {
  quant::FloatMatrix scaled = w;
  quant::scale_columns(scaled, scales);
  std::vector<std::byte> bytes(dtype_bytes(dtype, w.cols));
  std::vector<float> decoded(static_cast<size_t>(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    quant::quantize_row_any(dtype, scaled.row(r), bytes.data(), w.cols);
    kernels::dequantize_row(dtype, bytes.data(), decoded.data() + r * w.cols, w.cols);
  }
  double sum = 0.0;
  for (int64_t t = 0; t < x.rows; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double exact = 0.0, quantized = 0.0;
      for (int64_t j = 0; j < w.cols; ++j) {
        const double xj = x.row(t)[j];
        exact += xj * w.row(r)[j];
        quantized += (xj / scales[static_cast<size_t>(j)]) * decoded[static_cast<size_t>(r * w.cols + j)];
      }
      sum += (exact - quantized) * (exact - quantized);
    }
  }
  return sum / static_cast<double>(x.rows * w.rows);
}

// Two different texts in the style of TinyStories, the training set of stories260K.
inline const char* kCalibrationStory =
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. "
    "One day, she saw a big dog under a tree. The dog was sad because he lost his bone. Lily said, \"Do not be "
    "sad, dog. I will help you find it.\" They looked under the bench and behind the slide. At last Lily found "
    "the bone near the pond. The dog was so happy that he wagged his tail and licked her hand. Lily smiled and "
    "they played together until the sun went down. Her mom called her home for dinner, and Lily ran back with "
    "a big smile. That night she dreamed about the dog and the park. The next morning, Tom came to visit. Tom "
    "was her best friend. He had a new toy car that was blue and shiny. \"Can I play with your car?\" Lily asked. "
    "Tom said yes, and they shared the car and the ball. They learned that sharing makes everyone happy. ";

inline const char* kEvaluationStory =
    "One sunny day, a boy named Ben went to the beach with his dad. Ben wanted to build a big sand castle. He "
    "took his little bucket and his green shovel. He dug and dug, and the castle grew tall. Then a big wave came "
    "and hit the castle. Ben was sad and started to cry. His dad gave him a hug and said, \"We can build it "
    "again, and this time we will make a wall.\" So they built the castle again, with a strong wall in front. "
    "When the next wave came, the wall kept the castle safe. Ben laughed and clapped his hands. A small crab "
    "walked by and looked at the castle too. Ben said hello to the crab, and the crab went back into the water. "
    "At the end of the day, Ben and his dad ate ice cream and watched the sun go down over the sea. ";

inline std::filesystem::path write_text(const std::filesystem::path& path, const char* text, int repeats) {
  std::ofstream out(path);
  for (int i = 0; i < repeats; ++i) out << text;
  return path;
}

inline std::filesystem::path stories_model() { return shared_dir() / "models" / "stories260K" / "stories260K.bin"; }
inline std::filesystem::path stories_tokenizer() { return shared_dir() / "models" / "stories260K" / "tok512.bin"; }

// Mean KL(base || candidate) from `stepdown ppl CANDIDATE --base BASE --json`, or NaN with
// the CLI's stderr in `error` when it fails.
inline double mean_kld(const std::filesystem::path& candidate, const std::filesystem::path& base,
                       const std::filesystem::path& text, std::string& error) {
  const CliResult r = run_cli("ppl '" + candidate.string() + "' --base '" + base.string() + "' --text '" +
                              text.string() + "' --ctx 128 --json");
  if (r.exit_code != 0) {
    error = r.err;
    return std::nan("");
  }
  return nlohmann::json::parse(r.out).at("kld").at("mean").get<double>();
}

}  // namespace stepdown::test
