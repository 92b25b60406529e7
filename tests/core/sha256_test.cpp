#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/core/sha256.h"

namespace stepdown {
namespace {

TEST(Sha256, MatchesFipsVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FileDigestEqualsBytesDigest) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "stepdown_sha256_test.bin";
  std::string bytes;
  for (int i = 0; i < 3 * 1024 * 1024 + 17; ++i) bytes.push_back(static_cast<char>(i * 31));
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_EQ(sha256_path(path), sha256_hex(bytes));
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_path(path), IoError);
}

TEST(Sha256, DirectoryDigestListsFilesSorted) {
  // A directory hashes like `sha256sum` output of its files, sorted by relative path.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "stepdown_sha256_dir_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sub");
  std::ofstream(dir / "b.txt", std::ios::binary) << "bee";
  std::ofstream(dir / "sub" / "a.txt", std::ios::binary) << "ay";
  const std::string listing = sha256_hex("bee") + "  b.txt\n" + sha256_hex("ay") + "  sub/a.txt\n";
  EXPECT_EQ(sha256_path(dir), sha256_hex(listing));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stepdown
