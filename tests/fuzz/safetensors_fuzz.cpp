// libFuzzer entry for the safetensors reader: any input must either parse into tensors
// that lie inside the input or raise a stepdown::Error. Built only with clang and
// STEPDOWN_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <span>

#include "stepdown/core/error.h"
#include "stepdown/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    const stepdown::io::SafetensorsFile file = stepdown::io::read_safetensors(bytes, "fuzz.safetensors");
    volatile std::byte sink{};
    for (const stepdown::TensorView& t : file.tensors) {
      if (t.nbytes == 0) continue;
      sink = t.data[0];
      sink = t.data[t.nbytes - 1];
    }
  } catch (const stepdown::Error&) {
    // Rejected input is the expected outcome for almost every mutation.
  }
  return 0;
}
