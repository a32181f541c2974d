#!/usr/bin/env bash
# Create .venv and install trainfree with its test tools. Safe to run again (it only adds
# what is missing). torch is installed first and pinned: an unpinned torch would pull a
# multi-GB CUDA build, while torch==2.13.0 is the CPU build this project is tested with.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "torch==${TRAINFREE_TORCH:-2.13.0}"
fi
"${PIP[@]}" install -e '.[dev,hf,ray]'
# llama.cpp for --backend llamacpp and export --format gguf: pip compiles llama-cpp-python from
# source the first time (4.4 minutes, 8.5 CPU-minutes on 2 cores; docs/llamacpp.md), then reuses its cached wheel
if ! .venv/bin/python -c "import llama_cpp, gguf" 2>/dev/null; then
  echo "installing trainfree[llamacpp] (llama-cpp-python builds llama.cpp from source: minutes)"
  "${PIP[@]}" install -e '.[llamacpp]'
fi
# the report test opens report.html in headless Chromium (Debian's package; root only, and
# only where it is missing: without it that test is skipped)
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
    || echo "chromium not installed: the browser test of report.html will be skipped" >&2
fi
.venv/bin/python -c "import torch, trainfree; print(f'trainfree {trainfree.__version__} ready (torch {torch.__version__})')"
