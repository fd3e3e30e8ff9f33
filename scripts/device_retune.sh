#!/usr/bin/env bash
# Re-tune + compare round trip for the robust GEMM search (docs/perf-notes.md, "tuning"), run ON
# the device machine from the repo root inside a wall-clock budget: build the CLI and test_tune,
# run test_tune, re-tune the fused-epilogue GEMMs (--force, no kernel launches), compare, and tar
# the updated table and the results into $OUT/retune.tgz (the log also lies beside it).
# env: DTYPES (int8,fp8), COMPARE_DTYPES (= DTYPES), MS (2048,8192,16384,32768), BUDGET_S (450),
#      TESTS (1), TUNE (1), MODEL (Qwen2.5-7B), SPARSITY (2:4,2:6,2:8,2:10)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$root/out}"
res="$out/retune"
mkdir -p "$res"
export PATH="/usr/local/cuda/bin:$PATH"
budget="${BUDGET_S:-450}"
dtypes="${DTYPES:-int8,fp8}"
ms="${MS:-2048,8192,16384,32768}"
model="${MODEL:-Qwen2.5-7B}"
sparsity="${SPARSITY:-2:4,2:6,2:8,2:10}"
build="$root/build-gpu"
SECONDS=0
left() { echo $((budget - SECONDS)); }
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/tmp/build.log 2>&1 &&
    cmake --build "$build" -j 16 --target slidesparse_cli test_tune >>/tmp/build.log 2>&1 ||
    { grep -B2 -A8 -m5 "error" /tmp/build.log; tail -20 /tmp/build.log; exit 1; }
  echo "build ok after ${SECONDS}s"
  if [ "${TESTS:-1}" = 1 ]; then
    t0=$SECONDS
    timeout 200 "$build/tests/test_tune" >"$res/test_tune.log" 2>&1
    echo "test_tune rc=$? took $((SECONDS - t0))s"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |\[info\]|Failure" "$res/test_tune.log" | head -30
  fi
  if [ "${TUNE:-1}" = 1 ]; then
    t0=$SECONDS
    # Keep ~60 s for the compare.
    timeout $(($(left) - 60)) "$build/slidesparse" tune --models "$model" --dtype "$dtypes" \
      --sparsity "$sparsity" --M "$ms" --epilogue fused --force --no-kernels \
      --tuning-dir "$root/tuning" 2>&1 | tr '\r' '\n'
    echo "tune rc=${PIPESTATUS[0]} took $((SECONDS - t0))s"
  fi
  t0=$SECONDS
  timeout $(($(left) - 10)) "$build/slidesparse" tune compare --models "$model" \
    --dtype "${COMPARE_DTYPES:-$dtypes}" --sparsity "$sparsity" --M "$ms" --epilogue fused \
    --tuning-dir "$root/tuning" --out "$res" 2>&1
  echo "compare rc=$? took $((SECONDS - t0))s"
  nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
} 2>&1 | tee "$res/device_retune.log"
cp "$root"/tuning/*/gemm_*.json "$res/" 2>/dev/null
tar czf "$out/retune.tgz" -C "$out" retune
cp "$res/device_retune.log" "$out/"
rm -rf "$res"
exit 0
