#!/usr/bin/env bash
# Offline tuning round trip, run ON the device machine from the repo root: build the CLI and the
# tuning tests for sm_90, run them, tune a model (resumable: entries already in tuning/ are
# skipped), compare tuned/untuned dense vs SlideSparse GEMMs, copy table + results to $OUT.
# Usage: scripts/device_tune.sh [tune-seconds] [compare-seconds]
#   env: MODEL, DTYPES, COMPARE_DTYPES, SPARSITY, MS, EPILOGUES ("kernel fused"), FORCE=1,
#        SKIP_TESTS=1, LOG (log file name under $OUT)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$root/out}"
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
tune_s="${1:-300}"
compare_s="${2:-150}"
model="${MODEL:-Qwen2.5-7B}"
dtypes="${DTYPES:-int8,fp8}"
sparsity="${SPARSITY:-2:4,2:6,2:8,2:10}"
ms="${MS:-2048,8192,16384,32768}"
log="$out/${LOG:-device_tune.log}"
build="$root/build-gpu"
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/tmp/build.log 2>&1 &&
    cmake --build "$build" -j 16 --target slidesparse_cli test_tune test_tune_cpu >>/tmp/build.log 2>&1 ||
    { grep -B2 -A8 -m5 "error" /tmp/build.log; tail -20 /tmp/build.log; exit 1; }
  echo "build ok"
  SECONDS=0
  [ -z "${SKIP_TESTS:-}" ] && timeout 240 "$build/tests/test_tune_cpu" --gtest_brief=1 2>&1 | tail -15
  [ -z "${SKIP_TESTS:-}" ] && timeout 240 "$build/tests/test_tune" 2>&1 | grep -E "^\[  |\[info\]|Failure|error|Expected|Which|actual" | head -60
  echo "tests took ${SECONDS}s"
  # EPILOGUES: the layer epilogues to tune and compare (their GEMM output dtypes differ);
  # FORCE=1 re-tunes entries the table already holds.
  for epi in ${EPILOGUES:-kernel}; do
    SECONDS=0
    timeout "$tune_s" "$build/slidesparse" tune --models "$model" --dtype "$dtypes" --sparsity "$sparsity" --M "$ms" --tuning-dir "$root/tuning" --epilogue "$epi" ${FORCE:+--force} 2>&1
    echo "tune ($epi) rc=$? took ${SECONDS}s"
    SECONDS=0
    timeout "$compare_s" "$build/slidesparse" tune compare --models "$model" --dtype "${COMPARE_DTYPES:-$dtypes}" --sparsity "$sparsity" --M "$ms" --tuning-dir "$root/tuning" --epilogue "$epi" --out "$out" 2>&1
    echo "compare ($epi) rc=$? took ${SECONDS}s"
  done
  "$build/slidesparse" info | tail -3
  nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
} 2>&1 | tee "$log"
for f in "$root"/tuning/*/*.json; do [ -f "$f" ] && cp "$f" "$out/tuning_$(basename "$f")"; done
exit 0
