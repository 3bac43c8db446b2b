#!/usr/bin/env bash
# Installs what the benchmarks need and the machine may lack (SPEC §7, bench/):
#   - GNU time (/usr/bin/time -v: wall, CPU and peak RSS of a child)
#   - perf (profiles for bench/RESULTS.md "Profile"; optional)
#   - DuckDB 2.0 for Python (scripts/duckdb_baseline.py)
# Idempotent: installs only what is missing. Needs root for apt-get.
set -euo pipefail

apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" || echo "setup-bench: could not install $* (continuing)" >&2
    else
        echo "setup-bench: please install $* (needs root and apt-get)" >&2
    fi
}

[ -x /usr/bin/time ] || apt_install time
command -v perf >/dev/null 2>&1 || apt_install linux-perf

PY="${BENCH_PYTHON:-python3}"
if ! "$PY" -c 'import duckdb' >/dev/null 2>&1; then
    "$PY" -m pip install --quiet 'duckdb==2.0.0'
fi
"$PY" -c 'import duckdb; print("setup-bench: duckdb", duckdb.__version__)'
[ -x /usr/bin/time ] && echo "setup-bench: /usr/bin/time ok"
command -v perf >/dev/null 2>&1 && echo "setup-bench: perf ok" || true

# Market-basket peers (scripts/basket_peers.py) and the mlxtend reference
# (scripts/mlxtend_compare.py): pandas, mlxtend, pyfim (compiled: needs gcc).
CDRFLOW_PYTHON="$PY" bash "$(dirname "$0")/setup-python.sh" \
    || echo "setup-bench: basket peers unavailable (continuing)" >&2
