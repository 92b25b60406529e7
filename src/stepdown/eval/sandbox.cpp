#include "stepdown/eval/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/eval/sandbox_seccomp.h"

namespace stepdown::eval {

const char* sandbox_status_name(SandboxStatus status) {
  switch (status) {
    case SandboxStatus::kPass:
      return "pass";
    case SandboxStatus::kFail:
      return "fail";
    case SandboxStatus::kTimeout:
      return "timeout";
    case SandboxStatus::kError:
      return "error";
  }
  return "unknown";
}

namespace {

// uid and gid the sandbox runs as when stepdown runs as root, because RLIMIT_NPROC binds
// only non-root users. 65534 is the unprivileged "nobody" on Debian and most
// distributions.
constexpr uid_t kSandboxUser = 65534;
// How long to keep reading output after the program ended or was killed.
constexpr auto kDrainTime = std::chrono::seconds(2);

using Clock = std::chrono::steady_clock;

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct Pipe {
  Fd read;
  Fd write;
};

Pipe make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) raise("sandbox: pipe2 failed: {}", std::strerror(errno));
  return {Fd(fds[0]), Fd(fds[1])};
}

Fd memfd_with(const std::string& name, const std::string& content) {
  Fd fd(memfd_create(name.c_str(), MFD_CLOEXEC));
  if (fd.get() < 0) raise("sandbox: memfd_create failed: {}", std::strerror(errno));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = write(fd.get(), content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) raise("sandbox: writing {} to a memfd failed: {}", name, std::strerror(errno));
    written += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) raise("sandbox: lseek on a memfd failed: {}", std::strerror(errno));
  return fd;
}

std::string find_bwrap(const std::string& requested) {
  if (!requested.empty()) return requested;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / "bwrap";
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  raise<Unsupported>("sandbox: bwrap (bubblewrap) not found on PATH; install the Debian package bubblewrap");
}

// The interpreter command for a language, as seen inside the sandbox.
std::vector<std::string> interpreter_for(const std::string& language, const SandboxLimits& limits) {
  // The process limit is set inside the sandbox, by prlimit(1) just before it execs the
  // interpreter, because the kernel counts RLIMIT_NPROC per user namespace and user.
  // There it counts only this sandbox's processes, while set before bwrap it would count
  // every process of the sandbox user, including other sandboxes running in parallel.
  std::vector<std::string> command = {"/usr/bin/prlimit", fmt::format("--nproc={0}:{0}", limits.max_processes),
                                      "--"};
  if (language == "python") {
    // -I ignores PYTHON* variables and the user's site-packages; -B writes no .pyc files.
    command.insert(command.end(), {"/usr/bin/python3", "-I", "-B", "/work/main.py"});
    return command;
  }
  // NOTE: only Python runs today; other languages need their toolchains bound read-only.
  raise<InvalidArgument>("sandbox: unsupported language \"{}\"; supported: python", language);
}

// bwrap options shared by the probe and real runs. `program_fd` < 0 means no program.
std::vector<std::string> bwrap_arguments(const std::string& bwrap, const SandboxLimits& limits, int seccomp_fd,
                                         int status_fd, int program_fd, const std::vector<std::string>& command) {
  std::vector<std::string> args = {bwrap,          "--unshare-all",  "--unshare-net", "--die-with-parent",
                                   "--new-session", "--hostname",    "sandbox",       "--ro-bind",
                                   "/usr",          "/usr"};
  // Merged-/usr systems have /bin, /lib and friends as links into /usr; others have
  // real directories that must be bound for the dynamic loader and interpreters.
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code error;
    const auto status = std::filesystem::symlink_status(dir, error);
    if (error) continue;
    if (std::filesystem::is_symlink(status)) {
      args.insert(args.end(), {"--symlink", std::filesystem::read_symlink(dir, error).string(), dir});
    } else if (std::filesystem::is_directory(status)) {
      args.insert(args.end(), {"--ro-bind", dir, dir});
    }
  }
  args.insert(args.end(), {"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--ro-bind-try",
                           "/etc/alternatives", "/etc/alternatives", "--proc", "/proc", "--dev", "/dev", "--size",
                           std::to_string(limits.work_dir_bytes), "--tmpfs", "/work"});
  if (program_fd >= 0) args.insert(args.end(), {"--file", std::to_string(program_fd), "/work/main.py"});
  args.insert(args.end(), {"--remount-ro", "/", "--chdir", "/work", "--seccomp", std::to_string(seccomp_fd),
                           "--json-status-fd", std::to_string(status_fd), "--"});
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

struct ChildSetup {
  std::vector<int> keep_fds;  // passed to bwrap by number
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  SandboxLimits limits;
};

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(const ChildSetup& setup, char* const* argv, char* const* envp) {
  setsid();  // its own process group, so the timeout can kill everything at once
  if (dup2(setup.stdin_fd, STDIN_FILENO) < 0 || dup2(setup.stdout_fd, STDOUT_FILENO) < 0 ||
      dup2(setup.stderr_fd, STDERR_FILENO) < 0) {
    _exit(126);
  }
  const auto limit = [](int resource, rlim_t soft, rlim_t hard) {
    const rlimit rl = {soft, hard};
    if (setrlimit(resource, &rl) != 0) _exit(126);
  };
  // The hard CPU limit is one second above the soft one, so SIGXCPU (reported as a
  // timeout) arrives before the kernel's SIGKILL.
  const auto cpu = static_cast<rlim_t>(setup.limits.cpu_seconds);
  limit(RLIMIT_CPU, cpu, cpu + 1);
  limit(RLIMIT_AS, setup.limits.address_space_bytes, setup.limits.address_space_bytes);
  limit(RLIMIT_FSIZE, setup.limits.max_file_bytes, setup.limits.max_file_bytes);
  limit(RLIMIT_CORE, 0, 0);
  if (geteuid() == 0) {
    // The kernel does not apply RLIMIT_NPROC to root, so run the sandbox as another user.
    if (setgroups(0, nullptr) != 0 || setgid(kSandboxUser) != 0 || setuid(kSandboxUser) != 0) _exit(126);
  }
  // Close-on-exec everything but stdio and the descriptors bwrap reads.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) _exit(126);
  for (const int fd : setup.keep_fds) {
    if (fcntl(fd, F_SETFD, 0) != 0) _exit(126);
  }
  execve(argv[0], argv, envp);
  _exit(127);
}

struct Capture {
  std::string text;
  bool truncated = false;
  bool open = true;
};

// Reads what is available from `fd` into `capture`, keeping at most `max_bytes`.
void read_some(int fd, Capture& capture, uint64_t max_bytes) {
  std::array<char, 8192> buffer;
  const ssize_t n = read(fd, buffer.data(), buffer.size());
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
    capture.open = false;
    return;
  }
  if (n < 0) return;
  const uint64_t room = max_bytes > capture.text.size() ? max_bytes - capture.text.size() : 0;
  const size_t keep = static_cast<size_t>(std::min<uint64_t>(room, static_cast<uint64_t>(n)));
  capture.text.append(buffer.data(), keep);
  if (keep < static_cast<size_t>(n)) capture.truncated = true;
}

struct RawRun {
  Capture out;
  Capture err;
  Capture status;  // bwrap's --json-status-fd stream
  int wait_status = 0;
  bool timed_out = false;
  double wall_seconds = 0.0;
};

// Reads the child's output until it exits and its pipes close, killing its process group
// at the wall-clock deadline. Sets run.out, run.err, run.status and run.timed_out.
void collect_output(RawRun& run, pid_t pid, int pidfd, const Pipe& out, const Pipe& err, const Pipe& status,
                    const SandboxLimits& limits, Clock::time_point start) {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.wall_seconds));
  Clock::time_point deadline = start + timeout;
  bool exited = false;
  bool killed = false;
  for (;;) {
    const bool pipes_open = run.out.open || run.err.open || run.status.open;
    if (exited && !pipes_open) break;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      if (!killed) {
        // The outer bwrap and the namespace's init share this group; when init dies the
        // kernel kills every process left in the pid namespace.
        run.timed_out = !exited;
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        killed = true;
        deadline = now + kDrainTime;
        continue;
      }
      break;  // output still open after the drain time: stop reading
    }
    std::array<pollfd, 4> fds = {pollfd{run.out.open ? out.read.get() : -1, POLLIN, 0},
                                 pollfd{run.err.open ? err.read.get() : -1, POLLIN, 0},
                                 pollfd{run.status.open ? status.read.get() : -1, POLLIN, 0},
                                 pollfd{exited ? -1 : pidfd, POLLIN, 0}};
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    const int ready = poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(wait_ms, 1000)));
    if (ready < 0 && errno != EINTR) raise("sandbox: poll failed: {}", std::strerror(errno));
    if (ready <= 0) continue;
    if (fds[0].revents) read_some(out.read.get(), run.out, limits.max_output_bytes);
    if (fds[1].revents) read_some(err.read.get(), run.err, limits.max_output_bytes);
    if (fds[2].revents) read_some(status.read.get(), run.status, 1 << 16);
    if (fds[3].revents && !exited) {
      exited = true;
      if (!killed) deadline = std::min(deadline, Clock::now() + kDrainTime);
    }
  }
  if (!exited) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  }
}

// Starts bwrap with `args`, feeds nothing on stdin, captures output, and enforces the
// wall-clock limit by killing the child's process group.
RawRun run_bwrap(std::vector<std::string> args, const std::vector<int>& passed_fds, Pipe status,
                 const SandboxLimits& limits) {
  Fd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) raise("sandbox: cannot open /dev/null: {}", std::strerror(errno));
  Pipe out = make_pipe();
  Pipe err = make_pipe();

  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::array<std::string, 6> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/work", "TMPDIR=/work",
                                    "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"};
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);

  ChildSetup setup{passed_fds, devnull.get(), out.write.get(), err.write.get(), limits};
  setup.keep_fds.push_back(status.write.get());

  const Clock::time_point start = Clock::now();
  const pid_t pid = fork();
  if (pid < 0) raise("sandbox: fork failed: {}", std::strerror(errno));
  if (pid == 0) exec_child(setup, argv.data(), envp.data());

  // Only the child may hold the write ends, so the reads below see EOF when it is done.
  out.write.reset();
  err.write.reset();
  status.write.reset();
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    raise("sandbox: pidfd_open failed: {} (needs Linux 5.3 or newer)", std::strerror(errno));
  }

  RawRun run;
  try {
    collect_output(run, pid, pidfd.get(), out, err, status, limits, start);
  } catch (...) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw;
  }
  while (waitpid(pid, &run.wait_status, 0) < 0 && errno == EINTR) {
  }
  run.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

// Parses `"key": N` from bwrap's JSON status stream; nullopt when absent.
std::optional<int64_t> status_field(const std::string& stream, const std::string& key) {
  const std::string quoted = "\"" + key + "\"";
  const size_t at = stream.find(quoted);
  if (at == std::string::npos) return std::nullopt;
  const size_t colon = stream.find(':', at + quoted.size());
  if (colon == std::string::npos) return std::nullopt;
  return std::strtoll(stream.c_str() + colon + 1, nullptr, 10);
}

std::string first_line(const std::string& text) {
  const size_t end = text.find('\n');
  return text.substr(0, end == std::string::npos ? text.size() : end);
}

RawRun run_in_sandbox(const std::string& bwrap, const SandboxLimits& limits, const std::string* program,
                      const std::vector<std::string>& command) {
  Fd seccomp_fd(build_seccomp_filter_fd());
  Pipe status = make_pipe();
  Fd program_fd;
  std::vector<int> passed = {seccomp_fd.get()};
  if (program) {
    program_fd = memfd_with("stepdown-program", *program);
    passed.push_back(program_fd.get());
  }
  const std::vector<std::string> args =
      bwrap_arguments(bwrap, limits, seccomp_fd.get(), status.write.get(), program ? program_fd.get() : -1, command);
  return run_bwrap(args, passed, std::move(status), limits);
}

void validate(const SandboxLimits& limits) {
  if (!(limits.wall_seconds > 0.0) || limits.cpu_seconds < 1 || limits.max_processes < 1 ||
      limits.address_space_bytes == 0 || limits.max_file_bytes == 0 || limits.work_dir_bytes == 0) {
    raise<InvalidArgument>(
        "sandbox: invalid limits (wall {} s, cpu {} s, processes {}, address space {} B, file {} B, work dir {} B); "
        "every limit must be positive",
        limits.wall_seconds, limits.cpu_seconds, limits.max_processes, limits.address_space_bytes,
        limits.max_file_bytes, limits.work_dir_bytes);
  }
}

}  // namespace

void check_sandbox(const std::string& requested) {
  static std::mutex mutex;
  static std::map<std::string, std::optional<std::string>> probed;  // bwrap -> error, if any
  const std::string bwrap = find_bwrap(requested);
  std::lock_guard lock(mutex);
  auto it = probed.find(bwrap);
  if (it == probed.end()) {
    SandboxLimits limits;
    limits.wall_seconds = 30.0;
    const RawRun run = run_in_sandbox(bwrap, limits, nullptr, {"/usr/bin/true"});
    std::optional<std::string> error;
    const bool ok = !run.timed_out && WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0 &&
                    status_field(run.status.text, "child-pid").has_value();
    if (!ok) {
      const std::string why = run.timed_out ? "timed out" : first_line(run.err.text);
      error = fmt::format(
          "sandbox: {} cannot create the code-test sandbox on this machine ({}); code tests need unprivileged "
          "user namespaces (Debian: sysctl kernel.unprivileged_userns_clone=1; Ubuntu 24.04: an AppArmor "
          "profile that allows bwrap), so they will not run unsandboxed",
          bwrap, why.empty() ? "no message" : why);
    } else {
      spdlog::debug("sandbox: {} works on this machine", bwrap);
    }
    it = probed.emplace(bwrap, error).first;
  }
  if (it->second) throw Unsupported(*it->second);
}

SandboxResult run_code_tests(const CodeTestRequest& request) {
  validate(request.limits);
  const std::vector<std::string> command = interpreter_for(request.language, request.limits);
  const std::string bwrap = find_bwrap(request.bwrap);
  check_sandbox(bwrap);

  const std::string program = request.code + "\n\n" + request.tests + "\n";
  const RawRun run = run_in_sandbox(bwrap, request.limits, &program, command);

  SandboxResult result;
  result.stdout_text = run.out.text;
  result.stderr_text = run.err.text;
  result.stdout_truncated = run.out.truncated;
  result.stderr_truncated = run.err.truncated;
  result.wall_seconds = run.wall_seconds;

  const bool started = status_field(run.status.text, "child-pid").has_value();
  const std::optional<int64_t> exit_code = status_field(run.status.text, "exit-code");
  if (run.timed_out) {
    result.status = SandboxStatus::kTimeout;
    result.message = fmt::format("timed out after {:.1f} s of wall time; the process group was killed",
                                 request.limits.wall_seconds);
  } else if (!started) {
    result.status = SandboxStatus::kError;
    result.message = fmt::format("the sandbox failed to start: {}", first_line(run.err.text));
  } else {
    // bwrap exits with the program's status, or 128 + signal when a signal ended it.
    result.exit_code = static_cast<int>(exit_code.value_or(
        WIFEXITED(run.wait_status) ? WEXITSTATUS(run.wait_status) : 128 + WTERMSIG(run.wait_status)));
    if (result.exit_code == 0) {
      result.status = SandboxStatus::kPass;
    } else if (result.exit_code == 128 + SIGXCPU || result.exit_code == 128 + SIGKILL) {
      // SIGXCPU at the soft CPU limit; the kernel sends SIGKILL at the hard limit.
      result.status = SandboxStatus::kTimeout;
      result.message = fmt::format("ended by signal {} ({}), the CPU-time limit of {} s", result.exit_code - 128,
                                   strsignal(result.exit_code - 128), request.limits.cpu_seconds);
    } else {
      result.status = SandboxStatus::kFail;
      result.message = result.exit_code > 128 ? fmt::format("ended by signal {} ({})", result.exit_code - 128,
                                                            strsignal(result.exit_code - 128))
                                              : fmt::format("exited with status {}", result.exit_code);
    }
  }
  return result;
}

}  // namespace stepdown::eval
