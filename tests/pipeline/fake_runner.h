// A fake case runner for the pipeline tests: a bash script that follows the benchmark child
// contract of docs/pipeline.md (`bench prefill|decode ... --json-dir DIR --case-marker FILE`, one
// case JSON per M written atomically, the marker written before each case, exit 0 / 2 / 3) and
// a fake `tune` that prints the tuner's summary line and writes its table files. What it does
// per case is set through the environment, with case ids "<phase>/<model>/<dtype>/<variant>/<M>":
//   FAKE_CRASH   kill -SEGV itself during the case        FAKE_HANG   sleep far past any limit
//   FAKE_FAIL    record the case failed (CudaError), exit 2 at the end
//   FAKE_STICKY  record the case failed (CudaError, sticky) and exit 3 at once
//   FAKE_EXIT_EARLY  "<phase>/<model>/<dtype>/<variant>": exit 1 before the first case
//   FAKE_ONCE_DIR    crash / hang only the first time (a flag file per case id there)
//   FAKE_SLEEP   seconds per case; FAKE_CC: compute capability (fp8 skipped below 89)
//   FAKE_HW_KEY  the hardware key written into cases and tuning folders
//   FAKE_BUILD   the build written into cases (none when unset, as cases of old builds)
//   FAKE_CALLS   file that gets one line per invocation: "bench <phase> <model> <dtype>
//                <variant> M=<list>" or "tune <stage> <dtype list>"
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace slidesparse::test {

inline constexpr const char* kFakeRunnerScript = R"FAKE(#!/bin/bash
# Fake benchmark child for tests/pipeline (see fake_runner.h).
cmd="$1"; shift
if [ "$cmd" = "tune" ]; then
  stage=""; tdir=""; dtypes=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --stage) stage="$2"; shift 2;;
      --tuning-dir) tdir="$2"; shift 2;;
      --dtype) dtypes="$2"; shift 2;;
      --fast-accum) shift;;
      *) shift 2;;
    esac
  done
  echo "tune $stage $dtypes" >> "${FAKE_CALLS:-/dev/null}"
  dir="$tdir/$FAKE_HW_KEY"; mkdir -p "$dir"
  if [ "$stage" = "coarse" ]; then files="gemm_cublaslt.json kernels.json"; else files="gemm_cusparselt.json kernels.json"; fi
  ran=0
  for f in $files; do
    if [ ! -f "$dir/$f" ]; then
      printf '{"format":"slidesparse-tuning","gemm":[{"m":64}],"kernels":[]}\n' > "$dir/$f.tmp" && mv "$dir/$f.tmp" "$dir/$f"
      ran=$((ran+3))
    fi
  done
  echo "[tune] 100% $ran/$ran jobs"
  echo "summary: $ran jobs run, $((6-ran)) done before (skipped), 0 failed, in 1s"
  exit 0
fi
[ "$cmd" = "bench" ] || { echo "fake runner: unknown command $cmd" >&2; exit 1; }
phase="$1"; shift
sparsity=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2";; --dtype) dtype="$2";; --backend) backend="$2";;
    --sparsity) sparsity="$2";; --M) mlist="$2";; --stage) stage="$2";; --task) task="$2";;
    --json-dir) jdir="$2";; --case-marker) marker="$2";;
    *) echo "fake runner: unknown option $1" >&2; exit 1;;
  esac
  shift 2
done
variant="$backend"; [ -n "$sparsity" ] && variant="$sparsity"
echo "bench $phase $model $dtype $variant M=$mlist" >> "${FAKE_CALLS:-/dev/null}"
group="$phase/$model/$dtype/$variant"
for g in $FAKE_EXIT_EARLY; do
  [ "$g" = "$group" ] && { echo "fake runner: cannot build $model" >&2; exit 1; }
done
mkdir -p "$jdir"
spar='null'; [ -n "$sparsity" ] && spar="\"$sparsity\""
phase_field=""; name_phase=""
if [ "$stage" = "simple" ]; then phase_field="\"phase\": \"$phase\","; name_phase="_$phase"; fi
in_list() { local item="$1"; shift; for x in $@; do [ "$x" = "$item" ] && return 0; done; return 1; }
once() {  # true when the misbehaviour should happen now
  [ -z "$FAKE_ONCE_DIR" ] && return 0
  local flag="$FAKE_ONCE_DIR/$(echo "$1" | tr '/:' '__')"
  [ -e "$flag" ] && return 1
  touch "$flag"; return 0
}
write_case() {  # M status error_json metrics_json skip_reason_json
  local f="$jdir/${model}${name_phase}_M$1.json"
  local build_field=""
  [ -n "${FAKE_BUILD:-}" ] && build_field="\"build\": \"$FAKE_BUILD\","
  cat > "$f.tmp.$$" <<EOF
{"schema": "slidesparse.case/1", "task": $task, "stage": "$stage", $phase_field "model": "$model",
 "dtype": "$dtype", "backend": "$backend", "sparsity": $spar, "M": $1, "status": "$2",
 "error": $3, "skip_reason": $5, "command": "fake bench $phase --model $model --M $1",
 "hardware_key": "$FAKE_HW_KEY", $build_field
 "gpu": {"name": "fake", "cc": "9.0", "driver": "1"},
 "started_at": "2026-12-02T19:00:00Z", "wall_s": 0.1, "metrics": $4}
EOF
  mv "$f.tmp.$$" "$f"
}
status_code=0
for m in ${mlist//,/ }; do
  echo "${model}${name_phase}_M$m.json" > "$marker"
  id="$group/$m"
  echo "fake case $id"
  [ -n "$FAKE_SLEEP" ] && sleep "$FAKE_SLEEP"
  if [ "$dtype" = "fp8" ] && [ -n "$FAKE_CC" ] && [ "$FAKE_CC" -lt 89 ]; then
    write_case "$m" skipped null null "\"fp8 needs compute capability >= 8.9; fake is cc 8.0\""
    continue
  fi
  if in_list "$id" $FAKE_CRASH && once "$id"; then echo "fake: crashing"; kill -SEGV $$; fi
  if in_list "$id" $FAKE_HANG && once "$id"; then echo "fake: hanging"; sleep 1000; fi
  if in_list "$id" $FAKE_STICKY; then
    write_case "$m" failed '{"type": "CudaError", "message": "illegal address (sticky)"}' null null
    exit 3
  fi
  if in_list "$id" $FAKE_FAIL; then
    write_case "$m" failed '{"type": "CudaError", "message": "fake failure"}' null null
    status_code=2
    continue
  fi
  write_case "$m" ok null "{\"prompt_len\": 16, \"batch\": 1, \"output_len\": 1, \"warmup\": 1, \"repeats\": 3, \"elapsed_s\": 0.5, \"tokens_per_s\": $((m * 10)).0, \"output_tokens_per_s\": 2.0, \"requests_per_s\": 2.0, \"step_ms_median\": 500.0, \"avg_power_w\": 300.0, \"energy_j\": 150.0, \"joules_per_token\": 0.1}" null
done
exit $status_code
)FAKE";

// Writes the script as <dir>/fake_runner.sh (executable) and returns its path.
inline std::filesystem::path write_fake_runner(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "fake_runner.sh";
  {
    std::ofstream out(path);
    out << kFakeRunnerScript;
  }
  ::chmod(path.c_str(), 0755);
  return path;
}

}  // namespace slidesparse::test
