#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test through ctest. Tests
# labelled `gpu` run on a GPU machine and are reported as skipped (not passed) without one. The
# summary at the end counts passed, failed and skipped tests apart and prints every skip reason
# (scripts/ctest_summary.py, from ctest's JUnit file). Extra arguments go to ctest (e.g. -L cpu).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
build="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
junit="$build/ctest-results.xml"
rm -f "$junit"
cd "$build"
status=0
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 1500 --output-junit "$junit" "$@" ||
  status=$?
python3 "$root/scripts/ctest_summary.py" "$junit" || [ "$status" -ne 0 ] || status=1
exit "$status"
