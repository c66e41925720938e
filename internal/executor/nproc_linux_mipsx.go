//go:build linux && (mips || mipsle || mips64 || mips64le)

package executor

// rlimitNPROC is RLIMIT_NPROC, which the syscall package does not define;
// MIPS numbers the limits differently.
const rlimitNPROC = 8
