package cuda

// Regenerate the embedded PTX from kernels/*.cu with Debian's clang-16 (no CUDA toolkit needed);
// CI (.ci/ptx.sh without --write) fails when the checked-in PTX is stale.
//go:generate bash ../../.ci/ptx.sh --write
