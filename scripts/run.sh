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
  echo "No GPU: skipped GPU stages: tuning (tune), kernel bandwidth benchmark (bench quant), kernel-level layer benchmark (bench kernel)."
  exit 0
fi

# GPU pipeline. MODELS, DTYPES, SPARSITY, M_LIST (benchmarks), TUNE_M_LIST (tuning; default the
# tuner's full lists: coarse 64,256,...,65536, fine 64,128,...,65536) and OUT_DIR override the
# defaults.
models="${MODELS:-Qwen2.5-7B}"
dtypes="${DTYPES:-int8,fp8}"
sparsity="${SPARSITY:-2:4,2:6,2:8,2:10}"
m_list="${M_LIST:-64,512,2048,8192,16384,32768,65536}"
tune_m=()
[ -n "${TUNE_M_LIST:-}" ] && tune_m=(--M "$TUNE_M_LIST")
out="${OUT_DIR:-$root/results}"
# Tuning is resumable: entries already in the table for this GPU and these library versions are
# skipped, so with a committed table (tuning/: H100 and H200 for Qwen2.5-7B) this stage only
# times what is missing.
"$bin" tune --models ${models//,/ } --dtype "$dtypes" --sparsity "$sparsity" "${tune_m[@]}" \
  --epilogue fused
"$bin" bench quant --M 4096,16384 --K 2048,3584,8192,18944 --dtype "$dtypes" \
  --sparsity "$sparsity" --out "$out/quant"
for model in ${models//,/ }; do
  "$bin" bench kernel --model "$model" --dtype "$dtypes" --sparsity "$sparsity" --M "$m_list" \
    --epilogue fused --out "$out/kernel/$model"
done
echo "results under $out"
