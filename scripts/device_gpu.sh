#!/usr/bin/env bash
# The whole GPU round trip, run ON the device machine (through the `device` tool) from the repo
# root: configure + build for sm_90, run the `gpu`-labelled tests (optionally filtered), and leave
# logs under $OUT. Usage: scripts/device_gpu.sh [ctest -R regex]   (STAGES env: see below)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$root/out}"
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
build="$root/build-gpu"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv |& tee "$out/gpu.txt"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep -i "slidesparse:" "$out/configure.log"
cmake --build "$build" -j 16 >"$out/build.log" 2>&1 || { grep -B2 -A8 -m5 "error" "$out/build.log"; tail -20 "$out/build.log"; exit 1; }
echo "build ok"
filter=()
[ $# -gt 0 ] && filter=(-R "$1")
(cd "$build" && ctest -L gpu --output-on-failure -j 1 --timeout 600 "${filter[@]}") >"$out/ctest_gpu.log" 2>&1
rc=$?
grep -E "tests passed|tests failed|Failed|\*\*\*|Not Run|Skipped" "$out/ctest_gpu.log" | tail -40
exit $rc
