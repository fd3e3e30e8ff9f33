#!/usr/bin/env bash
# Integration round trip (this session): main's GPU tests + bench kernel/quant via scripts/device/gpu.sh,
# then the engine branch (carried in .eng/) built and its engine/bench tests run.
set -uo pipefail
root="$(pwd)"
STAGES=tests,bench,quant BENCH_M=2048,16384 BENCH_EPILOGUE=fused BENCH_DTYPES=int8,fp8 bash scripts/device/gpu.sh > /tmp/main_round.log 2>&1
echo "main round trip rc=$?"
grep -E "tests passed|tests failed|Failed|\*\*\*|GEMM only|whole layer|^ +[0-9]+ +[0-9.]+|rms_norm|silu" /tmp/main_round.log | head -80
cp /tmp/main_round.log "$OUT/main_round.log"
if [ -d .eng ]; then
  cp -r .deps .eng/ 2>/dev/null
  # The engine branch may predate the move of the device scripts into scripts/device/.
  deps=scripts/device/deps.sh; [ -f .eng/$deps ] || deps=scripts/device_deps.sh
  cd .eng && source "$deps" && device_configure build "$OUT/eng_configure.log" && \
    cmake --build build -j 16 > "$OUT/eng_build.log" 2>&1; echo "engine build rc=$?"
  grep -E "error" -m 20 -A3 "$OUT/eng_build.log" | head -60
  if [ -x build/tests/test_engine ]; then
    timeout 300 build/tests/test_engine > "$OUT/test_engine.log" 2>&1; echo "test_engine rc=$?"
    grep -E "^\[  (PASSED|FAILED|SKIPPED)|FAILED  \]|error|relative error" "$OUT/test_engine.log" | head -40
  fi
fi
