#pragma once
// Runs untrusted candidate code with an item's tests inside a bubblewrap (bwrap) sandbox,
// for the code pass-rate metric.
//
// Isolation, from outside in:
//   - the child sets rlimits before exec: CPU seconds, address space, file size and no
//     core dumps. When started as root it drops to uid/gid 65534, because the kernel
//     does not enforce RLIMIT_NPROC for root. The process limit itself is set inside the
//     sandbox by prlimit(1) just before the interpreter's exec, so the kernel counts only
//     this sandbox's processes against it;
//   - bwrap unshares every namespace (user, pid, network, ipc, uts, cgroup), so the code
//     has no network but an empty loopback, sees only its own processes, and dies with
//     its parent (--die-with-parent) in a new session (--new-session);
//   - the file system is /usr (and the /bin, /lib, /sbin links) read-only, a private
//     /proc and /dev, a size-limited tmpfs at /work as the working directory, and a
//     read-only root, so nothing outside /work is writable and the host is not visible;
//   - a seccomp filter (libseccomp) rejects sockets of any family but AF_UNIX, io_uring,
//     new namespaces, ptrace, bpf, perf events, keyrings and mounts with EPERM;
//   - a wall-clock timeout kills the whole process group, and with it the sandbox's pid
//     namespace.
// If bwrap cannot build the sandbox on this machine (no unprivileged user namespaces),
// run_code_tests raises Unsupported instead of running anything unsandboxed.
#include <cstdint>
#include <string>

namespace stepdown::eval {

struct SandboxLimits {
  double wall_seconds = 10.0;                    // whole run, including interpreter start
  int cpu_seconds = 10;                          // RLIMIT_CPU per process
  uint64_t address_space_bytes = 1ULL << 30;     // RLIMIT_AS per process
  int max_processes = 32;                        // RLIMIT_NPROC, bwrap's init process included
  uint64_t max_file_bytes = 16ULL << 20;         // RLIMIT_FSIZE: largest file it may write
  uint64_t work_dir_bytes = 64ULL << 20;         // size of the /work tmpfs
  uint64_t max_output_bytes = 64ULL << 10;       // captured per stream; the rest is dropped
};

struct CodeTestRequest {
  // Language of `code` and `tests`. Supported: "python" (runs /usr/bin/python3 -I -B).
  std::string language = "python";
  // The candidate's solution. The program run is `code`, a blank line, then `tests`, as
  // one file /work/main.py (the HumanEval and MBPP convention), so the tests see the
  // solution's names. It passes when it exits with status 0.
  std::string code;
  std::string tests;
  SandboxLimits limits;
  // The bubblewrap executable; empty means "bwrap" found on PATH.
  std::string bwrap;
};

enum class SandboxStatus {
  kPass,     // the program exited with status 0
  kFail,     // it exited non-zero or was killed by a signal other than SIGXCPU
  kTimeout,  // the wall-clock timeout or the CPU-time limit ended it
  kError,    // the sandbox could not run it (bwrap failed to set up, or writing the files)
};

const char* sandbox_status_name(SandboxStatus status);

struct SandboxResult {
  SandboxStatus status = SandboxStatus::kError;
  int exit_code = -1;    // the program's exit status; 128 + signal when a signal ended it
  std::string stdout_text;  // at most limits.max_output_bytes
  std::string stderr_text;  // at most limits.max_output_bytes
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  double wall_seconds = 0.0;
  std::string message;  // why it failed, timed out or errored, in one line
};

// Runs `request.code` with `request.tests` in the sandbox and returns the outcome.
// Thread-safe; each call builds its own sandbox. Raises InvalidArgument for an
// unsupported language or invalid limits, and Unsupported when the probe (a first run of
// bwrap with the same options, cached per bwrap path) shows this machine cannot sandbox.
SandboxResult run_code_tests(const CodeTestRequest& request);

// Probes whether bwrap can build the sandbox here; raises Unsupported with bwrap's own
// message and what to change when it cannot. The result is cached per bwrap path.
void check_sandbox(const std::string& bwrap = "");

}  // namespace stepdown::eval
