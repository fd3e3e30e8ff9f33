#!/usr/bin/env bash
# Installs what the build needs, only where it is missing: Debian packages (cmake, g++,
# nlohmann-json, CLI11, GoogleTest; chromium for the report's browser test) through apt-get, and
# cuSPARSELt 0.8.0 from PyPI into the project-local folder .deps/cusparselt. The CUDA 13 toolkit
# is expected at /usr/local/cuda.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
[ -f /usr/include/nlohmann/json.hpp ] || need_apt+=(nlohmann-json3-dev)
[ -f /usr/include/CLI/CLI.hpp ] || need_apt+=(libcli11-dev)
[ -f /usr/include/gtest/gtest.h ] || need_apt+=(libgtest-dev)
command -v ninja >/dev/null 2>&1 || need_apt+=(ninja-build)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install_deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Headless Chromium, for the report's browser test (tests/report). Optional: where apt-get cannot
# reach a mirror (the GPU machines) the run goes on and that test reports itself skipped.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "install_deps: apt-get install chromium (for the report's browser test)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } 2>/dev/null; then
    echo "install_deps: chromium not installed; the report's browser test will be skipped"
  fi
fi

if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "install_deps: using /usr/local/cuda (add /usr/local/cuda/bin to PATH to skip this note)"
  else
    echo "install_deps: error: the CUDA 13 toolkit (nvcc) is not installed at /usr/local/cuda" >&2
    exit 1
  fi
fi

# cuSPARSELt: an explicit CUSPARSELT_ROOT, the GPU machine's wheel, or a project-local install.
have_cusparselt() {
  [ -n "${CUSPARSELT_ROOT:-}" ] && [ -f "$CUSPARSELT_ROOT/include/cusparseLt.h" ] && return 0
  [ -f "$root/.deps/cusparselt/nvidia/cusparselt/include/cusparseLt.h" ] && return 0
  compgen -G "/opt/torch/.venv/lib/python3*/site-packages/nvidia/cusparselt/include/cusparseLt.h" >/dev/null && return 0
  return 1
}
if ! have_cusparselt; then
  echo "install_deps: pip install nvidia-cusparselt-cu13==0.8.0 into .deps/cusparselt"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$root/.deps/cusparselt" nvidia-cusparselt-cu13==0.8.0
fi
