#!/usr/bin/env bash
# Installs what the build needs, only where it is missing: Debian packages (cmake, g++,
# nlohmann-json, CLI11, GoogleTest; chromium for the report's browser test) through apt-get,
# cuSPARSELt 0.8.0 from PyPI into the project-local folder .deps/cusparselt, and FlashInfer's
# attention headers (with the CCCL libcudacxx they need) from the flashinfer-python wheel into
# .deps/flashinfer. The CUDA 13 toolkit is expected at /usr/local/cuda.
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

# FlashInfer: headers only, from the pinned wheel (no compiled kernels). Only what the paged
# prefill path needs: include/flashinfer/*.{cuh,h} and include/flashinfer/attention/*.{cuh,h}
# (no subfolders: Hopper/Blackwell/MLA/TRT-LLM kernels are not built), and the wheel's own CCCL
# libcudacxx, which must precede CUDA 13.0's older one (prefill needs cuda::fast_mod_div, which
# CCCL 3.0 lacks). cub/thrust/CUTLASS are not needed. About 17 MB on disk.
flashinfer_version=0.7.2.post1
flashinfer_dir="$root/.deps/flashinfer"
if [ "$(cat "$flashinfer_dir/VERSION" 2>/dev/null)" != "$flashinfer_version" ]; then
  echo "install_deps: flashinfer-python==$flashinfer_version headers into .deps/flashinfer"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$tmp" "flashinfer-python==$flashinfer_version"
  wheel="$(compgen -G "$tmp/flashinfer_python-$flashinfer_version-*.whl" | head -n1)"
  [ -n "$wheel" ] || { echo "install_deps: error: no flashinfer-python wheel downloaded" >&2; exit 1; }
  python3 - "$wheel" "$tmp/x" <<'PY'
import re, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
keep = re.compile(r"flashinfer/data/include/flashinfer/(attention/)?[^/]+\.(cuh|h)$"
                  r"|flashinfer/data/cccl/libcudacxx/include/.+[^/]$"
                  r"|flashinfer_python-[^/]+\.dist-info/licenses/LICENSE$")
with zipfile.ZipFile(wheel) as z:
    z.extractall(out, [n for n in z.namelist() if keep.fullmatch(n)])
PY
  rm -rf "$flashinfer_dir.new"
  mkdir -p "$flashinfer_dir.new/cccl"
  mv "$tmp/x/flashinfer/data/include" "$flashinfer_dir.new/include"
  mv "$tmp/x/flashinfer/data/cccl/libcudacxx" "$flashinfer_dir.new/cccl/libcudacxx"
  mv "$tmp"/x/flashinfer_python-*.dist-info/licenses/LICENSE "$flashinfer_dir.new/LICENSE"
  echo "$flashinfer_version" >"$flashinfer_dir.new/VERSION"
  rm -rf "$flashinfer_dir"
  mv "$flashinfer_dir.new" "$flashinfer_dir"
  echo "install_deps: .deps/flashinfer is $(du -sh "$flashinfer_dir" | cut -f1)"
fi
