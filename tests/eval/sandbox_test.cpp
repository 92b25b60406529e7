// The code-test sandbox: a correct solution passes, a wrong one fails, and evaluated code
// cannot reach the network, exhaust processes, write outside /work or outlive its timeout.
#include "stepdown/eval/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "test_paths.h"

namespace stepdown::eval {
namespace {

SandboxResult run_python(const std::string& code, const std::string& tests, SandboxLimits limits = {}) {
  CodeTestRequest request;
  request.language = "python";
  request.code = code;
  request.tests = tests;
  request.limits = limits;
  return run_code_tests(request);
}

std::string describe(const SandboxResult& r) {
  return std::string("status ") + sandbox_status_name(r.status) + ", exit " + std::to_string(r.exit_code) + ", " +
         r.message + "\nstdout: " + r.stdout_text + "\nstderr: " + r.stderr_text;
}

// Processes owned by the sandbox user; the sandbox runs as that user when the tests run
// as root.
int count_sandbox_user_processes() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(entry.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Uid:", 0) == 0) {
        count += std::stoi(line.substr(4)) == 65534;
        break;
      }
    }
  }
  return count;
}

const char* kAdd = "def add(a, b):\n    return a + b\n";
const char* kAddTests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n";

TEST(Sandbox, ProbeSucceedsHere) { EXPECT_NO_THROW(check_sandbox()); }

TEST(Sandbox, CorrectSolutionPasses) {
  const SandboxResult r = run_python(kAdd, kAddTests);
  EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
  EXPECT_EQ(r.exit_code, 0);
}

TEST(Sandbox, WrongSolutionFails) {
  const SandboxResult r = run_python("def add(a, b):\n    return a - b\n", kAddTests);
  EXPECT_EQ(r.status, SandboxStatus::kFail) << describe(r);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_text.find("AssertionError"), std::string::npos) << describe(r);
}

TEST(Sandbox, SyntaxErrorFails) {
  const SandboxResult r = run_python("def add(a, b)\n    return a + b\n", kAddTests);
  EXPECT_EQ(r.status, SandboxStatus::kFail) << describe(r);
  EXPECT_NE(r.stderr_text.find("SyntaxError"), std::string::npos) << describe(r);
}

TEST(Sandbox, CannotConnectToLoopbackListener) {
  // A real listener on the host's loopback, which the sandboxed code tries to reach.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);

  const std::string code =
      "import socket, sys\n"
      "try:\n"
      "    socket.create_connection(('127.0.0.1', " + std::to_string(port) + "), timeout=3)\n"
      "    print('connected')\n"
      "    sys.exit(1)\n"
      "except OSError as e:\n"
      "    print('blocked:', type(e).__name__, e.errno)\n"
      "try:\n"
      "    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
      "    print('udp6 created')\n"
      "    sys.exit(1)\n"
      "except OSError as e:\n"
      "    print('udp6 blocked:', type(e).__name__)\n"
      "a, b = socket.socketpair()\n"  // AF_UNIX stays allowed: multiprocessing needs it
      "a.sendall(b'x')\n"
      "assert b.recv(1) == b'x'\n";
  const SandboxResult r = run_python(code, "");
  EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
  // PermissionError comes from the seccomp filter, before the empty network namespace
  // would refuse the connection.
  EXPECT_NE(r.stdout_text.find("blocked: PermissionError"), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_text.find("udp6 blocked: PermissionError"), std::string::npos) << describe(r);

  EXPECT_LT(accept(listener, nullptr, nullptr), 0) << "the sandbox reached the host listener";
  EXPECT_EQ(errno, EAGAIN);
  close(listener);
}

TEST(Sandbox, ForkHitsProcessLimit) {
  const std::string code =
      "import os, sys, time\n"
      "children = 0\n"
      "try:\n"
      "    while True:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(60)\n"
      "            os._exit(0)\n"
      "        children += 1\n"
      "except OSError as e:\n"
      "    print('fork failed after', children, 'children, errno', e.errno)\n"
      "    sys.exit(3)\n";
  SandboxLimits limits;
  limits.max_processes = 8;
  limits.wall_seconds = 30;
  const SandboxResult r = run_python(code, "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kFail) << describe(r);
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.stdout_text.find("errno 11"), std::string::npos) << describe(r);  // EAGAIN
  const int children = std::stoi(r.stdout_text.substr(r.stdout_text.find("after ") + 6));
  EXPECT_LT(children, 8) << describe(r);
}

TEST(Sandbox, ParallelRunsHaveOwnProcessLimit) {
  // Each sandbox counts only its own processes, so parallel runs do not starve each other.
  const std::string code =
      "import os, sys, time\n"
      "children = 0\n"
      "try:\n"
      "    while True:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(5)\n"
      "            os._exit(0)\n"
      "        children += 1\n"
      "except OSError:\n"
      "    print('children', children)\n";
  SandboxLimits limits;
  limits.max_processes = 8;
  limits.wall_seconds = 30;
  std::vector<SandboxResult> results(3);
  std::vector<std::thread> threads;
  for (SandboxResult& result : results) {
    threads.emplace_back([&result, &code, &limits] { result = run_python(code, "", limits); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const SandboxResult& r : results) {
    EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
    // 8 processes: bwrap's init, the interpreter and 6 children.
    EXPECT_NE(r.stdout_text.find("children 6"), std::string::npos) << describe(r);
  }
}

TEST(Sandbox, ForkBombEndsAtTimeout) {
  const int before = count_sandbox_user_processes();
  const std::string code =
      "import os\n"
      "while True:\n"
      "    try:\n"
      "        os.fork()\n"
      "    except OSError:\n"
      "        pass\n";
  SandboxLimits limits;
  limits.wall_seconds = 3;
  const SandboxResult r = run_python(code, "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kTimeout) << describe(r);
  // Killing bwrap's process group takes the whole pid namespace with it.
  if (geteuid() == 0) {
    int after = count_sandbox_user_processes();
    for (int i = 0; i < 50 && after > before; ++i) {
      usleep(100000);  // the kernel reaps the namespace asynchronously
      after = count_sandbox_user_processes();
    }
    EXPECT_LE(after, before) << "sandbox processes outlived the timeout";
  }
}

TEST(Sandbox, CannotWriteOutsideWorkDir) {
  const std::filesystem::path in_tree = test::source_dir() / "sandbox_escape_marker";
  const std::filesystem::path in_tmp = std::filesystem::temp_directory_path() / "stepdown_sandbox_escape_marker";
  std::filesystem::remove(in_tree);
  std::filesystem::remove(in_tmp);
  const std::string code =
      "import os, sys\n"
      "escaped = []\n"
      "for path in ['" + in_tree.string() + "', '" + in_tmp.string() + "', '/escape', '/usr/escape']:\n"
      "    try:\n"
      "        with open(path, 'w') as f:\n"
      "            f.write('x')\n"
      "        escaped.append(path)\n"
      "    except OSError as e:\n"
      "        print('blocked', path, type(e).__name__)\n"
      "with open('/work/inside.txt', 'w') as f:\n"
      "    f.write('ok')\n"
      "print('inside ok')\n"
      "sys.exit(1 if escaped else 0)\n";
  const SandboxResult r = run_python(code, "");
  EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
  EXPECT_NE(r.stdout_text.find("inside ok"), std::string::npos) << describe(r);
  EXPECT_FALSE(std::filesystem::exists(in_tree));
  EXPECT_FALSE(std::filesystem::exists(in_tmp));
}

TEST(Sandbox, SleepForeverTimesOut) {
  SandboxLimits limits;
  limits.wall_seconds = 2;
  const SandboxResult r = run_python("import time\nwhile True:\n    time.sleep(1000)\n", "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kTimeout) << describe(r);
  // A bound, not a benchmark: the kill lands at 2 s and reading stops 2 s after at most.
  EXPECT_LT(r.wall_seconds, 2 + 10) << describe(r);
  EXPECT_GE(r.wall_seconds, 2) << describe(r);
}

TEST(Sandbox, ClosedOutputStillTimesOut) {
  // Closing stdout and stderr must not let the program escape the timeout.
  SandboxLimits limits;
  limits.wall_seconds = 2;
  const SandboxResult r =
      run_python("import os, time\nos.close(1)\nos.close(2)\nwhile True:\n    time.sleep(1000)\n", "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kTimeout) << describe(r);
}

TEST(Sandbox, CpuLimitEndsBusyLoop) {
  SandboxLimits limits;
  limits.cpu_seconds = 1;
  limits.wall_seconds = 60;
  const SandboxResult r = run_python("while True:\n    pass\n", "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kTimeout) << describe(r);
  EXPECT_NE(r.message.find("CPU"), std::string::npos) << describe(r);
}

TEST(Sandbox, MemoryLimitStopsAllocation) {
  SandboxLimits limits;
  limits.address_space_bytes = 512ULL << 20;
  const SandboxResult r = run_python("x = bytearray(2 << 30)\n", "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kFail) << describe(r);
  EXPECT_NE(r.stderr_text.find("MemoryError"), std::string::npos) << describe(r);
}

TEST(Sandbox, FileSizeLimitStopsLargeWrite) {
  SandboxLimits limits;
  limits.max_file_bytes = 1 << 20;
  const std::string code =
      "import errno\n"
      "try:\n"
      "    with open('/work/big', 'wb') as f:\n"
      "        f.write(b'x' * (2 << 20))\n"
      "    print('wrote')\n"
      "except OSError as e:\n"
      "    print('limited', e.errno == errno.EFBIG)\n";
  const SandboxResult r = run_python(code, "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
  EXPECT_NE(r.stdout_text.find("limited True"), std::string::npos) << describe(r);
}

TEST(Sandbox, OutputIsBounded) {
  SandboxLimits limits;
  limits.max_output_bytes = 1000;
  const SandboxResult r = run_python("import sys\nsys.stdout.write('y' * 1000000)\n", "", limits);
  EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
  EXPECT_EQ(r.stdout_text.size(), 1000u);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_FALSE(r.stderr_truncated);
}

TEST(Sandbox, SeesNoHostFiles) {
  const std::string code =
      "import os\n"
      "assert not os.path.exists('" + test::source_dir().string() + "')\n"
      "assert not os.path.exists('/root')\n"
      "assert not os.path.exists('/home')\n"
      "assert os.getcwd() == '/work'\n"
      "assert sorted(os.listdir('/work')) == ['main.py']\n";
  const SandboxResult r = run_python(code, "");
  EXPECT_EQ(r.status, SandboxStatus::kPass) << describe(r);
}

TEST(Sandbox, UnsupportedLanguageIsRejected) {
  CodeTestRequest request;
  request.language = "cobol";
  EXPECT_THROW(run_code_tests(request), InvalidArgument);
}

TEST(Sandbox, BrokenBwrapIsReportedNotBypassed) {
  CodeTestRequest request;
  request.code = kAdd;
  request.tests = kAddTests;
  request.bwrap = "/bin/false";
  try {
    run_code_tests(request);
    FAIL() << "ran without a working sandbox";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create the code-test sandbox"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stepdown::eval
