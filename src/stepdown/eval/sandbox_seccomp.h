#pragma once
// The seccomp filter applied to sandboxed code, compiled to classic BPF with libseccomp.

namespace stepdown::eval {

// Returns a memfd (close-on-exec, offset 0) holding the BPF program that bwrap's
// --seccomp option loads into the sandboxed process just before exec. Every syscall is
// allowed except these, which fail with EPERM:
//   - socket() for any family but AF_UNIX, and io_uring_setup, because io_uring can open
//     sockets without the socket syscall;
//   - clone with namespace flags, unshare, setns, mount, umount2, pivot_root;
//   - ptrace, process_vm_readv/writev, bpf, perf_event_open, userfaultfd;
//   - add_key, request_key, keyctl, and the module, kexec, swap and reboot calls.
// clone3 fails with ENOSYS, because its flags sit in memory the filter cannot read, and
// libc then falls back to clone. Raises Error when libseccomp fails.
int build_seccomp_filter_fd();

}  // namespace stepdown::eval
