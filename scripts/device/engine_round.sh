#!/usr/bin/env bash
# Engine round trip, run ON the GPU machine from the repo root (through the `device` tool; carry
# .deps/flashinfer and .devdeps): build for sm_90 (kept in build-gpu/ between warm calls), then
# the stages of $STAGES (comma-separated), always in this order:
#   tune      slidesparse tune $TUNE_ARGS (e.g. "--stage coarse --dtype fp8 --fast-accum --no-kernels
#             --models ..." after a change of a GEMM's tuning key); tuning/ comes back in results.tgz
#   engine    test_engine (vs the CPU reference, sparse == dense, graphs, transformers, M=65536)
#   targets   the engine targets of issue 10 on Qwen2.5-7B: prefill 16 x 1024 and decode batch
#             256 (prompt 16, 256 new tokens) through `generate`, per backend, FP8 and INT8,
#             and bench kernel FP8/INT8 at M = 256, 16384 for the GEMM sums they compare with
#   profile   generate --profile: time per op of prefill 16 x 1024 and decode batch 256, FP8
#   bench     bench prefill M=16384 / bench decode M=512 on Qwen2.5-7B, every backend ($BENCH_DTYPES)
#   kernel    bench kernel of $KERNEL_MODELS (default the four) at M 512, 2048, 16384, INT8 + FP8,
#             every pattern, fused epilogue, into results/kernel/<model> as scripts/run.sh does:
#             the report's kernel section (GEMM-only and layer speed-ups beside prefill's)
#   pipeline  prepare-bench $PIPELINE_ARGS; results/ and tuning/ come back as $OUT/results.tgz
#             (REQUIRE_RESULTS=1: refuse to start when results/run.json was not carried;
#             REQUIRE_GPU="NVIDIA H200": refuse any other card before building, since the results'
#             hardware key names the GPU and another card would start a new run, tuning included)
#             (carry results/ to resume an earlier call's run)
#   gpu       ctest -L gpu (every GPU test; last)
# TARGETS limits the build (e.g. "test_engine slidesparse_cli"). Logs: $OUT/logs.tgz (+ summary.log).
set -uo pipefail
root="$(pwd)"
top="${OUT:-$root/out}"
out="$top/logs"
mkdir -p "$out"
trap 'tar czf "$top/logs.tgz" -C "$top" logs && rm -rf "$out"' EXIT
exec > >(tee "$top/summary.log") 2>&1
export PATH="/usr/local/cuda/bin:$PATH"
stages="${STAGES:-engine}"
has() { [[ ",$stages," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
if [ -n "${REQUIRE_GPU:-}" ]; then
  gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)"
  [ "$gpu_name" = "$REQUIRE_GPU" ] || { echo "REQUIRE_GPU=$REQUIRE_GPU but this is $gpu_name: stopping"; exit 1; }
fi
deps="$root/scripts/device/deps.sh"
[ -f "$deps" ] || deps="$root/scripts/device_deps.sh"
source "$deps"
build="$root/build-gpu"
if [ ! -f "$build/CMakeCache.txt" ]; then
  device_configure "$build" "$out/configure.log" || { tail -30 "$out/configure.log"; exit 1; }
fi
t0=$(date +%s)
cmake --build "$build" -j 16 ${TARGETS:+--target $TARGETS} >"$out/build.log" 2>&1 || {
  grep -B2 -A8 -m5 "error" "$out/build.log"; tail -20 "$out/build.log"; exit 1; }
echo "build ok ($(( $(date +%s) - t0 )) s)"
ss="$build/slidesparse"

# tuning first: what a later stage measures looks the new table up
if has tune; then
  timeout ${TUNE_TIMEOUT:-300} "$ss" tune ${TUNE_ARGS:-} >"$out/tune.log" 2>&1
  echo "tune rc=$?"; tail -15 "$out/tune.log"
  has kernel || has pipeline || tar czf "$top/results.tgz" tuning $( [ -d results ] && echo results)
fi

if has engine; then
  timeout 420 "$build/tests/test_engine" >"$out/test_engine.log" 2>&1
  echo "test_engine rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) \] [0-9]+' "$out/test_engine.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \] [A-Za-z]|^\[ .* \] (max|step)|SKIPPED \] [A-Z]|Failure|error' "$out/test_engine.log" | head -60
fi
if has targets; then
  for dt in ${TARGET_DTYPES:-fp8 int8}; do
    for be in cublaslt cublaslt-fa 2:4 2:6 2:8 2:10; do
      [ "$be" = cublaslt-fa ] && [ "$dt" != fp8 ] && continue
      args=(--backend "$be"); [[ "$be" == 2:* ]] && args=(--backend cusparselt --sparsity "$be")
      echo "== prefill Qwen2.5-7B $dt $be 16x1024"
      timeout 180 "$ss" generate --random Qwen2.5-7B --dtype "$dt" "${args[@]}" --prompt-len 1024 \
        --batch 16 --max-new-tokens 1 --repeats 4 --quiet 2>&1 | grep -E "model:|prefill:|memory:|error"
      if [ "$be" = cublaslt ] || [ "$be" = 2:4 ] || [ "$be" = 2:8 ]; then
        echo "== decode Qwen2.5-7B $dt $be batch 256 prompt 16 +256"
        timeout 180 "$ss" generate --random Qwen2.5-7B --dtype "$dt" "${args[@]}" --prompt-len 16 \
          --batch 256 --max-new-tokens 256 --repeats 2 --quiet 2>&1 | grep -E "prefill:|decode:|error"
      fi
    done
  done
  timeout 240 "$ss" bench kernel --model Qwen2.5-7B --dtype fp8,int8 --sparsity 2:4,2:6,2:8,2:10 \
    --M 256,16384 --epilogue kernel --out "$out/kernel" >"$out/bench_kernel.log" 2>&1
  echo "bench kernel rc=$?"; grep -E "sum|GEMM" "$out/bench_kernel.log" | head -40
fi
if has profile; then
  for be in cublaslt 2:4; do
    args=(--backend "$be"); [[ "$be" == 2:* ]] && args=(--backend cusparselt --sparsity "$be")
    echo "== profile Qwen2.5-7B fp8 $be prefill 16x1024"
    timeout 120 "$ss" generate --random Qwen2.5-7B --dtype fp8 "${args[@]}" --prompt-len 1024 \
      --batch 16 --max-new-tokens 1 --repeats 3 --quiet --profile 2>&1 | grep -vE "^sequence"
    echo "== profile Qwen2.5-7B fp8 $be decode batch 256"
    timeout 120 "$ss" generate --random Qwen2.5-7B --dtype fp8 "${args[@]}" --prompt-len 16 \
      --batch 256 --max-new-tokens 8 --repeats 2 --quiet --profile 2>&1 | grep -vE "^sequence"
  done
fi
if has bench; then
  # the issue-11 target cases: prefill Qwen2.5-7B M=16384 and decode M=512, FP8, every backend
  for be in cublaslt cublaslt-fa 2:4 2:6 2:8 2:10; do
    args=(--backend "$be"); [[ "$be" == 2:* ]] && args=(--backend cusparselt --sparsity "$be")
    for dt in ${BENCH_DTYPES:-fp8}; do
      [ "$be" = cublaslt-fa ] && [ "$dt" != fp8 ] && continue
      timeout 200 "$ss" bench prefill --model Qwen2.5-7B --dtype "$dt" "${args[@]}" --M ${PREFILL_M:-16384} \
        --json-dir "$out/bench/prefill" 2>&1 | grep -vE "^ *$" | tail -3
      timeout 200 "$ss" bench decode --model Qwen2.5-7B --dtype "$dt" "${args[@]}" --M ${DECODE_M:-512} \
        --json-dir "$out/bench/decode" 2>&1 | grep -vE "^ *$" | tail -3
    done
  done
fi
if has kernel; then
  for model in ${KERNEL_MODELS:-Llama3.2-1B Llama3.2-3B Qwen2.5-7B Qwen2.5-14B}; do
    timeout ${KERNEL_TIMEOUT:-150} "$ss" bench kernel --model "$model" --dtype int8,fp8 \
      --sparsity 2:4,2:6,2:8,2:10 --M 512,2048,16384 --epilogue fused --out "results/kernel/$model" \
      >"$out/bench_kernel_$model.log" 2>&1
    echo "bench kernel $model rc=$?"; grep -E "sum" "$out/bench_kernel_$model.log" | head -24
  done
  has pipeline || tar czf "$top/results.tgz" results tuning
fi
if has pipeline; then
  # resuming a run: refuse to start from scratch (re-tuning) when the carried results/ is missing
  if [ -n "${REQUIRE_RESULTS:-}" ] && [ ! -f results/run.json ]; then
    echo "REQUIRE_RESULTS set but results/run.json is missing: not starting a new run"; exit 1
  fi
  timeout ${PIPELINE_TIMEOUT:-560} "$ss" prepare-bench ${PIPELINE_ARGS:-} >"$out/prepare-bench.out" 2>&1
  echo "prepare-bench rc=$?"
  tail -40 "$out/prepare-bench.out"
  # results/ and the tuning tables the run wrote (tasks 3-4) come back together
  [ -d results ] && tar czf "$top/results.tgz" results tuning
fi
if has gpu; then
  [ -n "${TARGETS:-}" ] && echo "note: ctest over a partial build (TARGETS) stops at unbuilt tests"
  (cd "$build" && timeout ${CTEST_TIMEOUT:-3000} ctest -L gpu --output-on-failure -j 1 --timeout 600 ${CTEST_R:+-R "$CTEST_R"}) >"$out/ctest_gpu.log" 2>&1
  echo "ctest -L gpu rc=$?"
  grep -E "tests passed|tests failed|\(Failed\)|\*\*\*|Not Run" "$out/ctest_gpu.log" | tail -30
fi
exit 0
