#!/usr/bin/env bash
# Market-basket benchmark (SPEC §4, §7; issue 3): builds release and runs
# bench/baskets.rs, which generates (or reuses) datasets/generated/bench-baskets-<N>/,
# runs the basket dataflow alone with -w 1 and -w 2 (one child process each:
# initial mining, 10 000 new baskets folded in, peak RSS), then the Python peers
# (scripts/basket_peers.py: pyfim fpgrowth, pyfim rules, mlxtend apriori) on the
# same purchases.csv, and prints the table, ratios, machine and commands.
#
#   scripts/bench-baskets.sh                     # 10 million baskets
#   scripts/bench-baskets.sh --baskets 1000000   # smaller
#   BENCH_PEERS=none scripts/bench-baskets.sh --baskets 3000000 --workers 2
#
# Arguments and their environment twins: see the head of bench/baskets.rs.
# Don't run it beside another heavy benchmark: 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-python.sh
cargo build --release --bin cdrflow
mkdir -p target/bench-out
log="target/bench-out/baskets-$(date -u +%Y%m%dT%H%M%SZ).txt"
cargo bench --bench baskets -- "$@" 2>&1 | tee "$log"
echo "report: $log"
