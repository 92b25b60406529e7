// dequantize_row against gguf-py: fixtures written by scripts/golden/make_dequant_fixtures.py.
#include <gtest/gtest.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/core/error.h"
#include "stepdown/kernels/matmul.h"
#include "test_paths.h"

namespace stepdown::kernels {
namespace {

namespace fs = std::filesystem;

std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The fixture folder; STEPDOWN_DEQUANT_FIXTURES points elsewhere (the script's real-model
// check uses that).
fs::path fixture_dir() {
  if (const char* dir = std::getenv("STEPDOWN_DEQUANT_FIXTURES")) return dir;
  return test::source_dir() / "tests" / "golden" / "dequant";
}

TEST(DequantizeGolden, BitExactWithGgufPy) {
  int checked_files = 0;
  std::vector<std::string> formats_seen;
  for (const fs::directory_entry& entry : fs::directory_iterator(fixture_dir())) {
    if (entry.path().extension() != ".blocks") continue;
    const std::string stem = entry.path().stem().string();
    const std::string type_name = stem.substr(0, stem.find("__"));
    const std::optional<DType> dtype = dtype_from_name(type_name);
    ASSERT_TRUE(dtype.has_value()) << "unknown format in fixture name " << entry.path();

    const std::vector<char> blocks = read_bytes(entry.path());
    fs::path expected_path = entry.path();
    expected_path.replace_extension(".f32");
    const std::vector<char> expected_bytes = read_bytes(expected_path);
    ASSERT_EQ(expected_bytes.size() % 4, 0u) << expected_path;
    const int64_t n = static_cast<int64_t>(expected_bytes.size() / 4);
    ASSERT_EQ(dtype_bytes(*dtype, n), blocks.size()) << entry.path();

    std::vector<float> actual(static_cast<size_t>(n));
    dequantize_row(*dtype, reinterpret_cast<const std::byte*>(blocks.data()), actual.data(), n);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t want;
      std::memcpy(&want, expected_bytes.data() + 4 * i, 4);
      const uint32_t got = std::bit_cast<uint32_t>(actual[static_cast<size_t>(i)]);
      if (got != want && mismatches++ < 5) {
        ADD_FAILURE() << stem << " element " << i << ": expected " << std::bit_cast<float>(want) << " (0x" << std::hex
                      << want << "), got " << actual[static_cast<size_t>(i)] << " (0x" << got << ")" << std::dec;
      }
    }
    EXPECT_EQ(mismatches, 0) << stem;
    formats_seen.push_back(type_name);
    ++checked_files;
  }
  EXPECT_GT(checked_files, 0) << "no fixtures in " << fixture_dir();
  std::cout << "checked " << checked_files << " fixture files\n";
}

TEST(DequantizeGolden, FixturesCoverEveryFormat) {
  if (std::getenv("STEPDOWN_DEQUANT_FIXTURES")) GTEST_SKIP() << "custom fixture folder";
  for (const char* name : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"}) {
    EXPECT_TRUE(fs::exists(fixture_dir() / (std::string(name) + ".blocks"))) << name;
  }
}

TEST(DequantizeRow, PartialBlockIsInvalidArgument) {
  std::vector<std::byte> data(1024);
  std::vector<float> out(512);
  try {
    dequantize_row(DType::Q4_K, data.data(), out.data(), 100);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("Q4_K"), std::string::npos) << message;
    EXPECT_NE(message.find("100"), std::string::npos) << message;
    EXPECT_NE(message.find("256"), std::string::npos) << message;
  }
  EXPECT_THROW(dequantize_row(DType::Q8_0, data.data(), out.data(), 33), InvalidArgument);
  EXPECT_NO_THROW(dequantize_row(DType::F16, data.data(), out.data(), 7));
}

}  // namespace
}  // namespace stepdown::kernels
