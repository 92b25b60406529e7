// libFuzzer entry for the GGUF reader: any input must either parse into tensors that lie
// inside the input or raise a stepdown::Error. Built only with clang and STEPDOWN_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <span>

#include "stepdown/core/error.h"
#include "stepdown/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    const stepdown::io::ModelFile model = stepdown::io::read_gguf(bytes, "fuzz.gguf");
    // Touch the first and last byte of every tensor so AddressSanitizer checks the bounds.
    volatile std::byte sink{};
    for (const stepdown::TensorView& t : model.tensors) {
      if (t.nbytes == 0) continue;
      sink = t.data[0];
      sink = t.data[t.nbytes - 1];
    }
    (void)model.metadata.get_string("general.architecture");
  } catch (const stepdown::Error&) {
    // Rejected input is the expected outcome for almost every mutation.
  }
  return 0;
}
