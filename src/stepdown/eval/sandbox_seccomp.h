#pragma once
// The seccomp filter applied to sandboxed code, compiled to classic BPF with libseccomp.

namespace stepdown::eval {

// Returns a memfd (close-on-exec, offset 0) holding the BPF program that bwrap's
// --seccomp option loads into the sandboxed process just before exec. Default action:
// allow. Rejected with EPERM: socket() for families other than AF_UNIX; io_uring_setup
// (io_uring can open sockets without the socket syscall); clone with namespace flags,
// unshare, setns, mount, umount2, pivot_root; ptrace, process_vm_readv/writev; bpf,
// perf_event_open, userfaultfd; add_key, request_key, keyctl; module and kexec calls.
// clone3 returns ENOSYS, because its flags sit in memory the filter cannot read, and libc
// then falls back to clone. Raises Error when libseccomp fails.
int build_seccomp_filter_fd();

}  // namespace stepdown::eval
