#include "stepdown/eval/sandbox_seccomp.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "stepdown/core/error.h"

namespace stepdown::eval {
namespace {

// Frees the libseccomp context on every path.
struct FilterContext {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  ~FilterContext() {
    if (ctx) seccomp_release(ctx);
  }
};

void add_rule(scmp_filter_ctx ctx, uint32_t action, const char* name, unsigned int count = 0,
              scmp_arg_cmp arg = {}) {
  const int nr = seccomp_syscall_resolve_name(name);
  // A syscall this architecture does not have (say, a 32-bit-only one) needs no rule.
  if (nr == __NR_SCMP_ERROR) return;
  const int rc = count == 0 ? seccomp_rule_add(ctx, action, nr, 0) : seccomp_rule_add(ctx, action, nr, 1, arg);
  if (rc != 0) raise("seccomp: adding the rule for {} failed: {}", name, std::strerror(-rc));
}

}  // namespace

int build_seccomp_filter_fd() {
  FilterContext filter;
  if (!filter.ctx) raise("seccomp: seccomp_init failed");
  const uint32_t deny = SCMP_ACT_ERRNO(EPERM);

  add_rule(filter.ctx, deny, "socket", 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
  add_rule(filter.ctx, deny, "io_uring_setup");
  // Rules for one syscall are alternatives, so one rule per flag rejects any of them.
  for (const uint64_t flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWUTS,
                              CLONE_NEWCGROUP}) {
    add_rule(filter.ctx, deny, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
  }
  add_rule(filter.ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3");
  for (const char* name : {"unshare", "setns", "mount", "umount2", "pivot_root", "ptrace", "process_vm_readv",
                           "process_vm_writev", "bpf", "perf_event_open", "userfaultfd", "add_key", "request_key",
                           "keyctl", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
                           "open_by_handle_at", "swapon", "swapoff", "reboot"}) {
    add_rule(filter.ctx, deny, name);
  }

  const int fd = memfd_create("stepdown-seccomp", MFD_CLOEXEC);
  if (fd < 0) raise("seccomp: memfd_create failed: {}", std::strerror(errno));
  const int rc = seccomp_export_bpf(filter.ctx, fd);
  if (rc != 0 || lseek(fd, 0, SEEK_SET) != 0) {
    close(fd);
    raise("seccomp: exporting the BPF program failed: {}", std::strerror(rc ? -rc : errno));
  }
  return fd;
}

}  // namespace stepdown::eval
