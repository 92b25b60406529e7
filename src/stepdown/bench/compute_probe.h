#pragma once
// Peak compute of this host per precision as stepdown's kernels reach it: products of a
// weight matrix small enough to stay in cache with a batch of tokens, through the prefill
// kernel (kernels::matmul), so memory bandwidth does not limit them. Like a vendor's peak
// figure, this is a matrix-multiply rate. It is below the ALUs' nominal peak because each
// weight block is decoded before its multiply-adds.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace stepdown::bench {

struct ComputeProbeOptions {
  int threads = 0;        // 0 uses every hardware thread
  int64_t rows = 256;     // W (rows, cols); 256 x 1024 f32 is 1 MiB, smaller in every other format
  int64_t cols = 1024;
  int64_t tokens = 32;    // X (tokens, cols) per product; 1 times the decode kernel (kernels::matvec)
  int products = 16;      // products per timed run
  int runs = 5;           // timed runs; the fastest counts, as slower ones lose time to other processes
};

// The weight format each precision key is measured with: f32 -> f32, f16 -> f16,
// bf16 -> bf16, int8 -> q8_0, int4 -> q4_0. fp8 has no fast path here and is left out.
const std::map<std::string, std::string>& probe_formats();

// TFLOPS (2 x rows x cols x tokens flops per product) per precision key of
// probe_formats(). Throws InvalidArgument when a count is not positive or cols is not a
// multiple of 32.
std::map<std::string, double> measure_host_compute(const ComputeProbeOptions& options = {});

struct StreamingProbeOptions {
  int threads = 0;          // 0 uses every hardware thread
  int64_t cols = 1024;      // row length of the weight matrix
  size_t matrix_bytes = 0;  // bytes per format; 0 picks 4x the last-level cache, clamped to [64, 256] MiB
  int runs = 3;             // timed matrix-vector products; the fastest counts
};

// Weight bytes per second (1e9) that one matrix-vector product reads from DRAM through
// stepdown's kernels, per precision key of probe_formats(). A format whose kernel does more
// work per byte streams fewer bytes per second, which is what per-format decode speed on
// this host depends on. Throws InvalidArgument for cols that are not a positive multiple
// of 32 or runs below 1.
std::map<std::string, double> measure_host_streaming(const StreamingProbeOptions& options = {});

}  // namespace stepdown::bench
