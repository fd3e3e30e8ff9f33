#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test through ctest. Tests
# labelled `gpu` run on a GPU machine and are reported as skipped (not passed) without one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
build="${BUILD_DIR:-$root/build}"
cd "$build"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 1500
