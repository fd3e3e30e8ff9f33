#!/usr/bin/env bash
# Offline tuning round trip, run ON the device machine from the repo root, inside a wall-clock
# budget: build the CLI (and test_tune), run test_tune, then the tuning phases, then the
# tuned-vs-untuned, dense-vs-SlideSparse compare; the updated table and every log go to
# $OUT/tune.tgz ($OUT/device_tune.log beside it). Tuning is resumable (entries already in
# tuning/ for this GPU and these library versions are skipped) and saves every 30 s, so a phase
# cut by the budget keeps what it finished; the next call goes on from there.
# env:
#   BUDGET_S      whole-script budget in seconds (default 540)
#   MODEL         model name (Qwen2.5-7B)
#   SPARSITY      2:4,2:6,2:8,2:10
#   PHASES        ';'-separated "dtypes@Ms[@extra tune flags]" (default
#                 "fp8,int8@2048,8192,16384,32768")
#   COMPARE       "dtypes@Ms" for the compare ("" skips it; default: the first phase's)
#   COMPARE_S     seconds kept for the compare (90)
#   EPILOGUE      fused | kernel (fused)
#   TESTS=0       skip test_tune
#   BENCH         "dtypes@Ms": after the compare, the layer-level kernel benchmark with the tuned
#                 table (slidesparse bench kernel --epilogue fused), results under kernel/
#   BENCH_S       seconds kept for it (90)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
top_out="${OUT:-$root/out}"
res="$top_out/tune"
mkdir -p "$res"
export PATH="/usr/local/cuda/bin:$PATH"
budget="${BUDGET_S:-540}"
model="${MODEL:-Qwen2.5-7B}"
sparsity="${SPARSITY:-2:4,2:6,2:8,2:10}"
phases="${PHASES:-fp8,int8@2048,8192,16384,32768}"
compare="${COMPARE-${phases%%;*}}"
# A phase's third field (extra tune flags) is no compare argument.
IFS='@' read -r c_dtypes c_ms _ <<<"$compare"
[ -n "$compare" ] && compare="$c_dtypes@$c_ms"
compare_s="${COMPARE_S:-90}"
epilogue="${EPILOGUE:-fused}"
build="$root/build-gpu"
bin="$build/slidesparse"
SECONDS=0
left() { echo $((budget - SECONDS)); }
finish() {
  mkdir -p "$res/table"
  cp -r "$root"/tuning/* "$res/table/" 2>/dev/null
  tar czf "$top_out/tune.tgz" -C "$top_out" tune
  cp "$res/device_tune.log" "$top_out/" 2>/dev/null
  rm -rf "$res"
}
trap finish EXIT
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
  source "$root/scripts/device/deps.sh"
  device_configure "$build" /tmp/build.log &&
    cmake --build "$build" -j 16 --target slidesparse_cli test_tune >>/tmp/build.log 2>&1 ||
    { grep -B2 -A8 -m5 "error" /tmp/build.log; tail -20 /tmp/build.log; exit 1; }
  echo "build ok after ${SECONDS}s"
  if [ "${TESTS:-1}" = 1 ]; then
    t0=$SECONDS
    timeout 200 "$build/tests/test_tune" >"$res/test_tune.log" 2>&1
    echo "test_tune rc=$? took $((SECONDS - t0))s"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |\[info\]|Failure" "$res/test_tune.log" | head -30
  fi
  # Seconds the phases leave for the compare and the bench.
  bench="${BENCH:-}"
  compare_keep=0 bench_keep=0
  [ -n "$compare" ] && compare_keep=$compare_s
  [ -n "$bench" ] && bench_keep=${BENCH_S:-90}
  IFS=';' read -ra phase_list <<<"$phases"
  for phase in "${phase_list[@]}"; do
    IFS='@' read -r p_dtypes p_ms p_extra <<<"$phase"
    t=$(($(left) - compare_keep - bench_keep))
    if [ "$t" -lt 20 ]; then echo "phase $phase: skipped, budget spent"; continue; fi
    t0=$SECONDS
    timeout "$t" "$bin" tune --models "$model" --dtype "$p_dtypes" --sparsity "$sparsity" \
      --M "$p_ms" --epilogue "$epilogue" --tuning-dir "$root/tuning" ${p_extra:-} 2>&1 |
      tr "\r" "\n"
    echo "phase $phase: rc=${PIPESTATUS[0]} took $((SECONDS - t0))s"
  done
  if [ -n "$compare" ]; then
    t0=$SECONDS
    timeout $(($(left) - 5 - bench_keep)) "$bin" tune compare --models "$model" --dtype "${compare%@*}" \
      --sparsity "$sparsity" --M "${compare#*@}" --epilogue "$epilogue" --tuning-dir "$root/tuning" \
      --out "$res" 2>&1
    echo "compare rc=$? took $((SECONDS - t0))s"
  fi
  if [ -n "$bench" ]; then
    t0=$SECONDS
    timeout $(($(left) - 5)) "$bin" bench kernel --model "$model" --dtype "${bench%@*}" \
      --sparsity "$sparsity" --M "${bench#*@}" --epilogue "$epilogue" --out "$res/kernel" 2>&1 |
      grep -v " done$"
    echo "bench kernel rc=${PIPESTATUS[0]} took $((SECONDS - t0))s"
  fi
  "$bin" info 2>&1 | tail -3
  nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
} 2>&1 | tee "$res/device_tune.log"
exit 0
