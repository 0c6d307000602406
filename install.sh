#!/usr/bin/env bash
# Install graphcf and everything it needs into ./.venv (no network beyond PyPI).
# torch comes first, pinned, so pip takes the CPU wheel instead of gigabytes of CUDA packages;
# torch-scatter and torch-sparse have no wheels on PyPI and build from source against it
# (about 6 + 10 minutes on 2 cores the first time; pip caches the built wheels).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q --no-build-isolation "torch-scatter==2.1.2" "torch-sparse==0.6.18"
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/python -c "import torch, torch_geometric, torch_sparse, torch_scatter, graphcf; print('graphcf', graphcf.__version__, 'torch', torch.__version__, 'pyg', torch_geometric.__version__)"
