#!/usr/bin/env bash
# One device call for a GPU session: build the CUDA backend, run the conformance suite and the
# wider shapes, measure the ceilings (device copy bandwidth, cuBLAS SGEMM), time every kernel,
# print a table, and compare flash attention with PyTorch SDPA when python3 has CUDA torch.
#
#   here:    bash ../shared/gpu/pack.sh
#   device:  carry [".gpu"], command:
#            bash .gpu/remote.sh bash kernels/cuda/bench_gpu.sh
#
# Logs go to $OUT (the device call's output folder) or /tmp/bench_gpu. Stage time limits keep the
# whole script within about 9 minutes; BENCHTIME (default 10x) sets the benchmark iterations.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/bench_gpu}
mkdir -p "$out"
pkg=kernels/cuda
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0))s] $*"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
nvcc --version 2>/dev/null | tail -1 || true
grep -m1 '#define CUDA_VERSION' "${CUDA_HOME:-/usr/local/cuda}/include/cuda.h" 2>/dev/null || true

# Build. gorgonia.org/cu needs the CUDA 13 compat header (no-op for older headers); when the
# compiler misses the texture/surface reference API, retry with the stubs (see compat/).
compat="-include $PWD/$pkg/compat/cuda13_compat.h"
build() {
  CGO_CFLAGS="${CGO_CFLAGS:-} $compat $1" timeout 300 go test -tags cuda -c -o "$out/cuda.test" ./$pkg/ >"$out/build.log" 2>&1
}
stamp "build"
if ! build ""; then
  extra=""
  if grep -q 'cuTexRef\|cuSurfRef\|cuModuleGetTexRef\|cuModuleGetSurfRef\|SharedMemConfig' "$out/build.log"; then
    extra="-DHYBRID_CU_STUB_TEXREF"
    grep -q "unknown type name 'CUtexref'\|unknown type name 'CUsurfref'" "$out/build.log" && extra="$extra -DHYBRID_CU_DECLARE_TEXREF_TYPES"
    grep -q 'SharedMemConfig' "$out/build.log" && extra="$extra -DHYBRID_CU_STUB_SHMEMCONFIG"
    grep -q "unknown type name 'CUsharedconfig'" "$out/build.log" && extra="$extra -DHYBRID_CU_DECLARE_SHMEMCONFIG_TYPE"
    cp "$out/build.log" "$out/build-first.log"
    stamp "build failed on deprecated driver APIs; retrying with $extra"
    build "$extra" || { stamp "BUILD FAILED"; tail -60 "$out/build.log"; exit 1; }
  else
    stamp "BUILD FAILED"
    tail -60 "$out/build.log"
    exit 1
  fi
fi
stamp "built $out/cuda.test"

# Correctness first (synchronising after every launch so a faulting kernel is named).
stamp "conformance + shapes"
(cd $pkg && HYBRID_CUDA_SYNC=1 timeout 240 "$out/cuda.test" -test.v -test.count=1 \
  -test.run 'TestConformance|TestRegistered|TestShapes|TestABI|TestErrors|TestPTXArchs') >"$out/test.log" 2>&1
rc=$?
grep -E '^(--- |ok|FAIL|PASS)|^    --- FAIL|panic|Error' "$out/test.log" | head -80
stamp "tests exit $rc"

# Benchmarks: ceilings once per process, then each kernel.
stamp "benchmarks"
(cd $pkg && timeout 300 "$out/cuda.test" -test.run '^$' -test.bench . -test.benchtime "${BENCHTIME:-10x}") >"$out/bench.log" 2>&1
awk '
  /^Benchmark/ {
    name=$1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    ns=""; gbs=""; fbw=""; gfl=""; fsg=""; cbw=""; sg=""
    for (i = 3; i < NF; i++) {
      if ($(i+1) == "ns/op") ns=$i
      if ($(i+1) == "GB/s") gbs=$i
      if ($(i+1) == "frac-bw") fbw=$i
      if ($(i+1) == "GFLOP/s") gfl=$i
      if ($(i+1) == "frac-sgemm") fsg=$i
      if ($(i+1) == "copy-GB/s") cbw=$i
      if ($(i+1) == "sgemm-GFLOP/s") sg=$i
    }
    if (cbw != "") { printf "ceilings: device copy %s GB/s (read+write), cuBLAS SGEMM 8192^3 %s GFLOP/s\n\n", cbw, sg; next }
    if (!hdr) { printf "%-58s %11s %9s %7s %10s %7s\n", "kernel", "ms/op", "GB/s", "bw", "GFLOP/s", "sgemm"; hdr=1 }
    printf "%-58s %11.3f %9s %7s %10s %7s\n", name, ns/1e6, gbs, fbw, gfl, fsg
  }
  /^(FAIL|panic|---)/ { print }
' "$out/bench.log" | tee "$out/table.txt"
stamp "benchmarks done"

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  stamp "PyTorch SDPA at the same attention shapes"
  timeout 120 python3 $pkg/bench_sdpa.py 2>&1 | tee "$out/sdpa.txt"
else
  stamp "no CUDA PyTorch: SDPA comparison skipped"
fi
stamp "done (logs in $out)"
exit $rc
