// Row quantizers against gguf-py: fixtures written by scripts/golden/make_quant_fixtures.py
// (gguf.quants.quantize); every case must match byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/quant/format.h"
#include "stepdown/quant/quantize_tensor.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

struct Case {
  std::string name;
  DType dtype;
  std::vector<float> values;
  std::vector<std::byte> blocks;
};

std::vector<Case> load_cases() {
  const auto path = test::source_dir() / "tests/golden/quant/rtn_blocks.bin";
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  const auto u32 = [&] {
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    at += 4;
    return v;
  };
  std::vector<Case> cases;
  if (bytes.size() < 4) return cases;
  const uint32_t n_cases = u32();
  for (uint32_t c = 0; c < n_cases; ++c) {
    Case k;
    const uint32_t name_len = u32();
    k.name.assign(bytes.data() + at, name_len);
    at += name_len;
    k.dtype = static_cast<DType>(u32());
    k.values.resize(u32());
    std::memcpy(k.values.data(), bytes.data() + at, 4 * k.values.size());
    at += 4 * k.values.size();
    k.blocks.resize(u32());
    std::memcpy(k.blocks.data(), bytes.data() + at, k.blocks.size());
    at += k.blocks.size();
    cases.push_back(std::move(k));
  }
  return cases;
}

TEST(RtnGolden, BytesMatchGgufPy) {
  const std::vector<Case> cases = load_cases();
  ASSERT_EQ(cases.size(), 70u) << "fixture missing or stale; run scripts/golden/make_quant_fixtures.py";
  std::set<std::string> formats;
  for (const Case& k : cases) {
    const QuantFormat* format = find_quant_format(k.dtype);
    ASSERT_NE(format, nullptr) << k.name;
    formats.insert(format->name);
    std::vector<std::byte> got(k.blocks.size());
    format->quantize_row(k.values.data(), got.data(), static_cast<int64_t>(k.values.size()));
    size_t first_diff = got.size();
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != k.blocks[i]) {
        first_diff = i;
        break;
      }
    }
    EXPECT_EQ(first_diff, got.size()) << k.name << ": first differing byte " << first_diff << " (block "
                                      << first_diff / static_cast<size_t>(format->block_bytes) << ")";
  }
  EXPECT_EQ(formats.size(), 7u);
}

TEST(RtnZeros, ZeroAndSubnormalRowsDequantizeToZero) {
  for (const float magnitude : {0.0f, 1e-40f, 1e-44f}) {
    std::vector<float> row(512);
    for (size_t i = 0; i < row.size(); ++i) row[i] = (i % 3 == 0 ? -magnitude : magnitude) * static_cast<float>(i % 7);
    for (const std::string& name : quant_format_names()) {
      const QuantFormat* format = find_quant_format(name);
      if (!is_block_quantized(format->dtype)) continue;
      std::vector<std::byte> blocks(static_cast<size_t>(512 / format->block_elems * format->block_bytes));
      format->quantize_row(row.data(), blocks.data(), 512);
      std::vector<float> back(512);
      kernels::dequantize_row(format->dtype, blocks.data(), back.data(), 512);
      for (size_t i = 0; i < back.size(); ++i) {
        ASSERT_EQ(back[i], 0.0f) << name << " magnitude " << magnitude << " element " << i;
      }
    }
  }
}

TEST(QuantizeTensor, NonFiniteNamesTensorAndElement) {
  ThreadPool pool(1);
  std::vector<float> w(64, 0.5f);
  w[37] = std::numeric_limits<float>::quiet_NaN();
  try {
    quantize_tensor("blk.0.attn_q.weight", *find_quant_format("q8_0"), w, 2, 32, pool);
    FAIL() << "NaN accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(1, 5)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  w[37] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize_tensor("t", *find_quant_format("f16"), w, 2, 32, pool), InvalidArgument);
}

TEST(QuantizeTensor, RowNotMultipleOfBlockNamesBothNumbers) {
  ThreadPool pool(1);
  std::vector<float> w(2 * 172, 0.1f);
  try {
    quantize_tensor("blk.0.ffn_down.weight", *find_quant_format("q4_0"), w, 2, 172, pool);
    FAIL() << "row of 172 accepted for q4_0";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("blk.0.ffn_down.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("172"), std::string::npos) << message;
    EXPECT_NE(message.find("32"), std::string::npos) << message;
  }
}

TEST(FormatRegistry, RegistersNewFormat) {
  const auto copy = [](const float* src, std::byte* dst, int64_t n) { std::memcpy(dst, src, 4 * static_cast<size_t>(n)); };
  register_quant_format({"test_copy_f32", DType::F32, 1, 4, copy});
  EXPECT_NE(find_quant_format("TEST_COPY_F32"), nullptr);
  EXPECT_THROW(register_quant_format({"test_copy_f32", DType::F32, 1, 4, nullptr}), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::quant
