#pragma once
// Typed errors thrown at library boundaries. Each message is one or two lines that state
// what failed, where (file, offset, tensor, field), what was expected, what was found,
// and what to do. The CLI prints the message and exits non-zero.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace stepdown {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file's contents do not match its format (bad magic, truncated, out-of-range field).
class FormatError : public Error {
 public:
  using Error::Error;
};

// The operating system failed to open, read, map or write a file.
class IoError : public Error {
 public:
  using Error::Error;
};

// A caller passed a value the function cannot accept (unknown option, bad shape).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// The input is valid but requests something not implemented (an unknown tensor type id).
class Unsupported : public Error {
 public:
  using Error::Error;
};

template <class E = Error, class... Args>
[[noreturn]] void raise(fmt::format_string<Args...> format, Args&&... args) {
  throw E(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace stepdown
