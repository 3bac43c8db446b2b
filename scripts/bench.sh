#!/usr/bin/env bash
# Runs the throughput benchmark (bench/throughput.rs) with its DuckDB peer and
# tees the report to target/bench-out/throughput-<N>.txt.
#
#   scripts/bench.sh                 # 10 M CDRs (SPEC §7), -w 1 and -w 2, DuckDB both modes
#   BENCH_CDRS=1000000 scripts/bench.sh
#   BENCH_DUCKDB=read BENCH_WORKERS=2 scripts/bench.sh
#
# Knobs: BENCH_CDRS, BENCH_WORKERS, BENCH_SCALE, BENCH_SEED, BENCH_DUCKDB
# (all|read|none), BENCH_PYTHON; see bench/throughput.rs. The machine is shared:
# the report prints the load average around every run; re-run figures taken
# under load.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-bench.sh
mkdir -p target/bench-out
log="target/bench-out/throughput-${BENCH_CDRS:-10000000}.txt"
cargo bench --bench throughput 2>&1 | tee "$log"
echo "report: $log"
