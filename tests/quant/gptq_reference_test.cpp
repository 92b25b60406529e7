// GPTQ against the plain float64 numpy implementation in scripts/golden/gptq_reference.py
// (fixture tests/golden/quant/gptq_reference.bin.zst): W (64, 128), H from 512 tokens with
// one dead input, int4-g32 and int8 per row, with and without act-order.
//
// Tolerance: the two differ only in summation order (blocked updates and BLAS against
// numpy's one column at a time), which can move a value across a rounding boundary. A
// flipped code then shifts the later columns of its row. At least 99% of the weights must
// be identical, and the output error within 1% of the reference's.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "stepdown/quant/gptq.h"
#include "test_paths.h"
#include "text/zstd_file.h"

namespace stepdown::quant {
namespace {

class Reader {
 public:
  explicit Reader(std::string bytes) : bytes_(std::move(bytes)) {}
  template <class T>
  T read() {
    T value;
    EXPECT_LE(pos_ + sizeof(T), bytes_.size());
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  template <class T>
  std::vector<T> read_array(size_t n) {
    std::vector<T> values(n);
    EXPECT_LE(pos_ + n * sizeof(T), bytes_.size());
    std::memcpy(values.data(), bytes_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return values;
  }
  std::string read_string() {
    const uint32_t n = read<uint32_t>();
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

TEST(GptqReference, MatchesNumpyFloat64) {
  Reader in(test::read_zstd_file(test::source_dir() / "tests/golden/quant/gptq_reference.bin.zst"));
  const auto rows = static_cast<int64_t>(in.read<uint32_t>());
  const auto cols = static_cast<int64_t>(in.read<uint32_t>());
  const std::vector<float> w = in.read_array<float>(static_cast<size_t>(rows * cols));
  const std::vector<double> h = in.read_array<double>(static_cast<size_t>(cols * cols));
  const uint32_t n_cases = in.read<uint32_t>();
  ASSERT_EQ(n_cases, 4u);

  ThreadPool pool(2);
  for (uint32_t k = 0; k < n_cases; ++k) {
    const std::string name = in.read_string();
    const auto dtype = static_cast<DType>(in.read<uint32_t>());
    const bool act_order = in.read<uint32_t>() != 0;
    const double expected_error = in.read<double>();
    const std::vector<float> expected = in.read_array<float>(static_cast<size_t>(rows * cols));

    const GptqResult result = gptq_quantize(w, rows, cols, h, dtype, {.act_order = act_order}, pool);
    int64_t same = 0;
    for (size_t i = 0; i < expected.size(); ++i) same += result.dequantized[i] == expected[i];
    EXPECT_GE(same, static_cast<int64_t>(0.99 * static_cast<double>(expected.size()))) << name;
    EXPECT_NEAR(result.output_error, expected_error, 0.01 * expected_error) << name;
    EXPECT_EQ(result.dead_columns, 1) << name;
    std::printf("%s: %.2f%% of weights identical, output error %.6g (reference %.6g)\n", name.c_str(),
                100.0 * static_cast<double>(same) / static_cast<double>(expected.size()), result.output_error,
                expected_error);
  }
  EXPECT_TRUE(in.done());
}

}  // namespace
}  // namespace stepdown::quant
