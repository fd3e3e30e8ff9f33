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
if "$bin" info --gpu-present >/dev/null 2>&1; then
  echo "GPU present: GPU stages will run here as they are added."
else
  echo "No GPU: skipped GPU stages: kernel benchmark (bench kernel), tuning (tune)."
fi
