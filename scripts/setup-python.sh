#!/usr/bin/env bash
# Installs the Python packages that check and benchmark cdrflow's market-basket
# analysis (SPEC §4, §7):
#   - mlxtend + pandas: the reference rules (scripts/mlxtend_compare.py, tests/mlxtend.rs)
#     and two benchmark peers (scripts/basket_peers.py)
#   - pyfim (Christian Borgelt's fim, C): the fast benchmark peer. Ships as a source
#     distribution only, so pip compiles it: needs a C compiler (gcc) and Python headers.
# Idempotent: a package is installed only when its module is not importable.
# Pinned to versions that pip resolves and that work on Python 3.11 here.
# Use another interpreter with CDRFLOW_PYTHON=/path/to/python3.
set -euo pipefail

PY="${CDRFLOW_PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "setup-python: $PY not found (set CDRFLOW_PYTHON)" >&2
    exit 1
fi

# module name → pip requirement
declare -A PINS=(
    [pandas]='pandas==3.1.1'
    [mlxtend]='mlxtend==0.25.0'
    [fim]='pyfim==6.28'
)

missing=()
for module in pandas mlxtend fim; do
    if ! "$PY" -c "import $module" >/dev/null 2>&1; then
        missing+=("${PINS[$module]}")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup-python: installing ${missing[*]}" >&2
    if ! "$PY" -m pip install --quiet --disable-pip-version-check "${missing[@]}"; then
        echo "setup-python: pip install ${missing[*]} failed" \
            "(PyPI reachable? for pyfim: a C compiler and the Python headers)" >&2
        exit 1
    fi
fi

if ! "$PY" -c 'import pandas, mlxtend, fim' >/dev/null 2>&1; then
    echo "setup-python: installed, but 'import pandas, mlxtend, fim' still fails:" >&2
    "$PY" -c 'import pandas, mlxtend, fim' >&2 || true
    exit 1
fi
"$PY" -c 'import pandas, mlxtend, numpy; print("setup-python: mlxtend", mlxtend.__version__, "pandas", pandas.__version__, "numpy", numpy.__version__, "pyfim ok")'
