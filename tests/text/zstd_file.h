#pragma once
// Reads a whole zstd-compressed fixture file into memory.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <zstd.h>

namespace stepdown::test {

inline std::string read_zstd_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string compressed = buffer.str();

  std::string out;
  ZSTD_DStream* stream = ZSTD_createDStream();
  ZSTD_inBuffer input{compressed.data(), compressed.size(), 0};
  std::string chunk(ZSTD_DStreamOutSize(), '\0');
  bool output_full = true;
  while (input.pos < input.size || output_full) {
    ZSTD_outBuffer output{chunk.data(), chunk.size(), 0};
    const size_t rc = ZSTD_decompressStream(stream, &output, &input);
    if (ZSTD_isError(rc)) {
      ZSTD_freeDStream(stream);
      throw std::runtime_error(path.string() + ": " + ZSTD_getErrorName(rc));
    }
    out.append(chunk.data(), output.pos);
    output_full = output.pos == output.size;
  }
  ZSTD_freeDStream(stream);
  return out;
}

}  // namespace stepdown::test
