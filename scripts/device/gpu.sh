#!/usr/bin/env bash
# The whole GPU round trip, run ON the device machine (through the `device` tool) from the repo
# root: configure + build for sm_90, then the stages in $STAGES (comma-separated, default "tests"),
# everything logged under $OUT. Usage: [STAGES=...] scripts/device/gpu.sh [ctest -R regex]
#   tests      ctest -L gpu (optionally filtered by the regex)
#   sanitizer  compute-sanitizer memcheck on a small set of GPU tests ($SANITIZER_FILTER)
#   bench      slidesparse bench kernel for $BENCH_MODEL (default Qwen2.5-7B), $BENCH_DTYPES
#              (int8,fp8), $BENCH_M (64,512,2048,8192,16384,32768), $BENCH_EPILOGUE (kernel),
#              results under $OUT/kernel (and docs/results/kernel when BENCH_DOCS=1)
#   quant      slidesparse bench quant (M 4096,16384; K of the four Qwen2.5-7B linears)
# At the end every log lies in $OUT/gpu_logs.tgz (the tool brings back at most 8 files), with
# $OUT/summary.log beside it.
# TARGETS (default: all) limits what is built, e.g. TARGETS="test_gemm test_layer slidesparse_cli".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
top_out="${OUT:-$root/out}"
out="$top_out/gpu_logs"
mkdir -p "$out"
finish() {
  tar czf "$top_out/gpu_logs.tgz" -C "$top_out" gpu_logs && rm -rf "$out"
}
trap finish EXIT
exec > >(tee "$top_out/summary.log") 2>&1
export PATH="/usr/local/cuda/bin:$PATH"
build="$root/build-gpu"
stages="${STAGES:-tests}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv |& tee "$out/gpu.txt"
{ nvcc --version | tail -2; cmake --version | head -1; g++ --version | head -1
  python3 -m pip show nvidia-cusparselt-cu13 2>/dev/null | grep -E "^(Version|Location)"; } |& tee -a "$out/gpu.txt"
source "$root/scripts/device/deps.sh"
device_configure "$build" "$out/configure.log" || { tail -30 "$out/configure.log"; exit 1; }
grep -i "slidesparse:" "$out/configure.log"
targets=()
[ -n "${TARGETS:-}" ] && targets=(--target ${TARGETS})
cmake --build "$build" -j 16 "${targets[@]}" >"$out/build.log" 2>&1 || { grep -B2 -A8 -m5 "error" "$out/build.log"; tail -20 "$out/build.log"; exit 1; }
echo "build ok"
rc=0
has_stage() { [[ ",$stages," == *",$1,"* ]]; }

if has_stage tests; then
  if [ -n "${TARGETS:-}" ]; then
    # A partial build leaves other test dirs undiscovered (ctest would stop on them): run the
    # built GoogleTest executables directly; $1 is then a --gtest_filter.
    for exe in ${TARGETS}; do
      [[ "$exe" == test_* && -x "$build/tests/$exe" ]] || continue
      "$build/tests/$exe" ${1:+--gtest_filter="$1"} >"$out/$exe.log" 2>&1
      t=$?
      [ $t -ne 0 ] && rc=$t
      echo "$exe: rc=$t $(grep -E '^\[  (PASSED|FAILED|SKIPPED) \] [0-9]+' "$out/$exe.log" | tr '\n' ' ')"
      grep -E '^\[  FAILED  \] [A-Za-z]' "$out/$exe.log" | sort -u | head -20
    done
  else
    filter=()
    [ $# -gt 0 ] && filter=(-R "$1")
    (cd "$build" && ctest -L gpu --output-on-failure -j 1 --timeout 600 "${filter[@]}") >"$out/ctest_gpu.log" 2>&1
    t=$?
    [ $t -ne 0 ] && rc=$t
    grep -E "tests passed|tests failed|Failed|\*\*\*|Not Run" "$out/ctest_gpu.log" | tail -40
  fi
fi

if has_stage sanitizer; then
  # Small shapes only: memcheck slows every kernel by orders of magnitude.
  sfilter="${SANITIZER_FILTER:-CublasLtGemm.*:CusparseLtGemm.*:LinearLayerTest.*:*int8_L8_M17*:*fp8_L6_M17*:*bf16_L10_M17*}"
  for exe in test_gemm test_layer; do
    [ -x "$build/tests/$exe" ] || continue
    compute-sanitizer --tool memcheck --error-exitcode 99 "$build/tests/$exe" --gtest_filter="$sfilter" \
      >"$out/sanitizer_$exe.log" 2>&1
    s=$?
    echo "compute-sanitizer memcheck $exe: rc=$s; $(grep -E 'ERROR SUMMARY' "$out/sanitizer_$exe.log" | tail -1); $(grep -E '^\[  (PASSED|FAILED)' "$out/sanitizer_$exe.log" | tr '\n' ' ')"
    [ $s -ne 0 ] && rc=$s
  done
fi

if has_stage bench; then
  model="${BENCH_MODEL:-Qwen2.5-7B}"
  dest="$out/kernel"
  mkdir -p "$dest"
  "$build/slidesparse" bench kernel --model "$model" --dtype "${BENCH_DTYPES:-int8,fp8}" \
    --M "${BENCH_M:-64,512,2048,8192,16384,32768}" --epilogue "${BENCH_EPILOGUE:-kernel}" \
    --out "$dest" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench_kernel.log" | grep -v " done$"
  b=${PIPESTATUS[0]}
  [ $b -ne 0 ] && rc=$b
  if [ "${BENCH_DOCS:-0}" = 1 ]; then
    mkdir -p "$root/docs/results/kernel" && cp "$dest"/* "$root/docs/results/kernel/"
  fi
fi
if has_stage quant; then
  "$build/slidesparse" bench quant --M 4096,16384 --K 2048,3584,8192,18944 --dtype int8,fp8 \
    --sparsity 2:4,2:6,2:8,2:10 --out "$out/quant" >"$out/bench_quant.log" 2>&1
  b=$?
  [ $b -ne 0 ] && rc=$b
  grep -E "quant_slide.*2:8|^kernel|copy" "$out/bench_quant.log" | head -40
fi
"$build/slidesparse" info 2>&1 | tail -4
exit $rc
