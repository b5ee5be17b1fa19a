#!/usr/bin/env bash
# Build the benchmark virtual environment (.venv-bench): DVC 3.x from PyPI next
# to an editable install of this project, plus pyinstrument for profiling.
# DVC is deliberately NOT a dependency of lensvault; it lives only here.
#
#   benchmarks/setup.sh            # create or update .venv-bench
#   PYTHON=python3.12 benchmarks/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${BENCH_VENV:-.venv-bench}"
STAMP="$VENV/.bench-installed"

if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt benchmarks/setup.sh ]]; then
    exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet 'dvc>=3,<4' 'mlflow>=3' 'pyinstrument>=4.6'  # the peers: DVC (core), MLflow (tracking)
"$VENV/bin/python" -m pip install --quiet -e .
touch "$STAMP"
echo "benchmark venv ready: $VENV ($("$VENV/bin/dvc" --version 2>/dev/null | head -1) dvc)"
