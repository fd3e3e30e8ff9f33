#!/usr/bin/env bash
# The main job. On a GPU machine: the benchmark pipeline as it stands. Without a GPU: everything
# that runs on the CPU, then one line naming the GPU stages that were skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
build="${BUILD_DIR:-$root/build}"
bin="$build/slidesparse"
"$bin" --version
"$bin" info
"$bin" selftest
if ! "$bin" info --gpu-present >/dev/null 2>&1; then
  echo "No GPU: skipped GPU stages: the prepare-bench pipeline (tasks 3-7: coarse and fine tuning, simple benchmark, prefill and decode throughput), the kernel-level benchmark (bench kernel) and the report of their results."
  exit 0
fi

# GPU: the pipeline as it stands. The kernel-level benchmark first (the report's kernel section),
# then prepare-bench (tuning, simple, prefill, decode; resumable: cases already in $OUT_DIR for
# this GPU are skipped), which writes report.md / report.html at the end. MODELS, DTYPES,
# BACKENDS, TASKS, TIME_BUDGET (seconds; stop cleanly and resume on the next run) and OUT_DIR
# override the defaults (the seed's full matrix, INT8 and FP8).
models="${MODELS:-Llama3.2-1B,Llama3.2-3B,Qwen2.5-7B,Qwen2.5-14B}"
dtypes="${DTYPES:-int8,fp8}"
out="${OUT_DIR:-$root/results}"
for model in ${models//,/ }; do
  "$bin" bench kernel --model "$model" --dtype "$dtypes" --sparsity 2:4,2:6,2:8,2:10 \
    --M 512,2048,16384 --epilogue fused --out "$out/kernel/$model"
done
args=(--models "$models" --dtype "$dtypes" --results "$out")
[ -n "${BACKENDS:-}" ] && args+=(--backends "$BACKENDS")
[ -n "${TASKS:-}" ] && args+=(--tasks "$TASKS")
[ -n "${TIME_BUDGET:-}" ] && args+=(--time-budget "$TIME_BUDGET")
rc=0
"$bin" prepare-bench "${args[@]}" || rc=$?
echo "results and report under $out (prepare-bench exit $rc: 0 complete, 2 with failed cases, 75 stopped at the time budget)"
exit $rc
